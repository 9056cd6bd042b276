/**
 * The active check scheduler: one chain of probes per checked backend, a
 * rise/fall state machine per backend, and batched delivery of state changes.
 *
 * Per backend, the next probe is scheduled only when the previous one has
 * settled, so two probes of one backend are never in flight at once. Timers are
 * unref'd: the monitor never keeps the process alive by itself.
 *
 * A probe that could not run for a local reason (this process out of file
 * descriptors) gives no verdict: it counts neither as a success nor as a failure,
 * and a rate-limited `health.local_error` warning says why checks are stalled.
 */
import type { ResolvedConfig } from '../config/types.js';
import { Repeats, silent, type Logger } from '../log.js';
import { isLocalError, probe as realProbe, type CheckResult } from './probes.js';
import type { ResolvedHealthCheck } from './types.js';

/** A backend crossed its rise or fall threshold. */
export interface HealthChange {
  pool: string;
  address: string;
  up: boolean;
  /** The reason of the result that decided it, e.g. "HTTP 503". */
  reason: string;
  result: CheckResult;
}

/** What the monitor knows about one checked backend. */
export interface BackendCheckState {
  pool: string;
  address: string;
  /** `unknown` until `rise` successes or `fall` failures in a row (the data plane treats it as usable). */
  status: 'up' | 'down' | 'unknown';
  last: CheckResult | null;
  /** Consecutive successes (0 after a failure). */
  successes: number;
  /** Consecutive failures (0 after a success). */
  failures: number;
  /** Epoch ms of the last status change (or of the start of checking). */
  since: number;
}

/** Options of `HealthMonitor`. */
export interface HealthMonitorOptions {
  /** Receives the state changes of one event-loop turn together, in one call. */
  onChange: (batch: HealthChange[]) => void;
  /** Gets `backend.up` / `backend.down` (see `logTransitions`), `health.local_error` and
   * `health.listener_error`. Default: silent. */
  logger?: Logger;
  /** Log each transition as `backend.up` / `backend.down`. Default true; off where the
   * transitions are logged elsewhere (the balancer logs every backend event in one place). */
  logTransitions?: boolean;
  /** At most one `health.local_error` line per error code per this many ms (then one with
   * `repeated`). Default 1000. */
  localErrorWindowMs?: number;
  /** A uniform number in [0, 1), for start offsets and jitter. Default `Math.random`. */
  random?: () => number;
  /** The check itself; tests may replace it. Default: `probe` from `./probes.js`. */
  probe?: typeof realProbe;
}

interface Entry {
  check: ResolvedHealthCheck;
  /** The check serialised, to notice a changed configuration. */
  key: string;
  state: BackendCheckState;
  timer: NodeJS.Timeout | null;
  /** Aborts the probe in flight, if any. */
  running: AbortController | null;
  /** Bumped when the check changes: a result of the previous check is dropped. */
  generation: number;
  removed: boolean;
}

/** Schedules active checks for every backend of a resolved configuration that has one. */
export class HealthMonitor {
  readonly #onChange: (batch: HealthChange[]) => void;
  readonly #log: Logger;
  readonly #logTransitions: boolean;
  readonly #localErrors: Repeats<{ address: string; reason: string }>;
  readonly #random: () => number;
  readonly #probe: typeof realProbe;
  readonly #entries = new Map<string, Entry>();
  #pending: HealthChange[] = [];
  #flush: NodeJS.Immediate | null = null;

  constructor(opts: HealthMonitorOptions) {
    this.#onChange = opts.onChange;
    this.#log = opts.logger ?? silent;
    this.#logTransitions = opts.logTransitions ?? true;
    this.#localErrors = new Repeats(opts.localErrorWindowMs ?? 1000, (last, repeated) => this.#logLocal(last, repeated));
    this.#random = opts.random ?? Math.random;
    this.#probe = opts.probe ?? realProbe;
  }

  /**
   * Check exactly the backends of `config` that have a `health_check`: start new
   * ones (status `unknown`, first probe at a random offset in [0, interval)), stop
   * removed ones, restart changed checks. A backend that stays keeps its status and counters.
   */
  sync(config: ResolvedConfig): void {
    const wanted = new Map<string, [string, string, ResolvedHealthCheck]>();
    for (const pool of config.pools) {
      for (const b of pool.backends) if (b.health_check) wanted.set(`${pool.name} ${b.address}`, [pool.name, b.address, b.health_check]);
    }
    for (const [id, entry] of this.#entries) if (!wanted.has(id)) this.#remove(id, entry);
    for (const [id, [pool, address, check]] of wanted) {
      const key = JSON.stringify(check);
      const entry = this.#entries.get(id);
      if (!entry) {
        const state: BackendCheckState = { pool, address, status: 'unknown', last: null, successes: 0, failures: 0, since: Date.now() };
        const fresh: Entry = { check, key, state, timer: null, running: null, generation: 0, removed: false };
        this.#entries.set(id, fresh);
        this.#schedule(fresh, this.#firstDelay(check));
      } else if (entry.key !== key) {
        entry.check = check;
        entry.key = key;
        entry.generation++;
        // A probe in flight is cancelled; its settlement schedules the new check.
        if (entry.running) entry.running.abort();
        else this.#schedule(entry, this.#firstDelay(check));
      }
    }
  }

  /** A snapshot of every checked backend. */
  states(): BackendCheckState[] {
    return [...this.#entries.values()].map(({ state }) => ({ ...state, last: state.last && { ...state.last } }));
  }

  /** Stop every check: timers cleared, probes in flight cancelled, nothing reported afterwards. */
  stop(): void {
    for (const [id, entry] of this.#entries) this.#remove(id, entry);
    if (this.#flush) clearImmediate(this.#flush);
    this.#flush = null;
    this.#pending = [];
    this.#localErrors.flush();
  }

  /** Spread first checks over a whole interval, so many backends are not probed in the same millisecond. */
  #firstDelay(check: ResolvedHealthCheck): number {
    return this.#random() * check.interval_ms;
  }

  #remove(id: string, entry: Entry): void {
    entry.removed = true;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.running?.abort();
    this.#entries.delete(id);
  }

  #schedule(entry: Entry, delayMs: number): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => this.#run(entry), delayMs);
    entry.timer.unref();
  }

  #run(entry: Entry): void {
    entry.timer = null;
    const generation = entry.generation;
    const running = new AbortController();
    entry.running = running;
    const { address } = entry.state;
    this.#probe(address, entry.check, running.signal)
      .catch((err: unknown): CheckResult => ({
        ok: false,
        reason: `check failed: ${(err as Error)?.message ?? err}`,
        duration_ms: 0,
        at: Date.now(),
        ...(isLocalError(err) ? { local: true as const } : {}),
      }))
      .then((result) => {
        entry.running = null;
        if (entry.removed) return;
        if (generation !== entry.generation) return this.#schedule(entry, this.#firstDelay(entry.check));
        if (result.local) this.#localError(address, result);
        else this.#record(entry, result);
        const { check, state } = entry;
        const base = state.status === 'down' ? check.down_interval_ms : check.interval_ms;
        this.#schedule(entry, base + this.#random() * check.jitter_ms);
      });
  }

  /** A check that could not run here: no verdict; warn, at most once per code per window. */
  #localError(address: string, result: CheckResult): void {
    const code = /\b(EMFILE|ENFILE)\b/.exec(result.reason)?.[1] ?? 'local';
    const item = { address, reason: result.reason };
    if (this.#localErrors.admit(code, item)) this.#logLocal(item);
  }

  #logLocal(item: { address: string; reason: string }, repeated?: number): void {
    const fields = { address: item.address, reason: item.reason, verdict: 'skipped: a local error says nothing about the backend' };
    this.#log('health.local_error', repeated ? { ...fields, repeated } : fields, 'warn');
  }

  /** Count the result and move the status when a threshold is crossed. */
  #record(entry: Entry, result: CheckResult): void {
    const { state, check } = entry;
    state.last = result;
    if (result.ok) {
      state.successes++;
      state.failures = 0;
    } else {
      state.failures++;
      state.successes = 0;
    }
    let up: boolean;
    if (result.ok && state.status !== 'up' && state.successes >= check.rise) up = true;
    else if (!result.ok && state.status !== 'down' && state.failures >= check.fall) up = false;
    else return;
    state.status = up ? 'up' : 'down';
    state.since = Date.now();
    const { pool, address } = state;
    if (this.#logTransitions) this.#log(up ? 'backend.up' : 'backend.down', { pool, address, reason: result.reason });
    this.#pending.push({ pool, address, up, reason: result.reason, result });
    // setImmediate, not a microtask: probes settling in the same loop turn (each in its own
    // I/O callback) all land before the check phase, so they leave as one batch.
    this.#flush ??= setImmediate(() => this.#deliver());
  }

  #deliver(): void {
    const batch = this.#pending;
    this.#pending = [];
    this.#flush = null;
    if (batch.length === 0) return;
    try {
      this.#onChange(batch);
    } catch (err) {
      // A throwing listener must not kill the scheduler (or the process, from an immediate).
      this.#log('health.listener_error', { error: (err as Error)?.message ?? String(err) });
    }
  }
}
