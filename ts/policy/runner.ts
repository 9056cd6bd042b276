/**
 * Runs a balancer's policies: schedules their ticks on the clock, hands them backend events,
 * builds each one's context, and records every decision (log line `policy.decision`, the
 * bounded decision log, the per-action counts behind `/metrics`). `Switchyard` owns one and
 * gives it a narrow `PolicyHost`, so this module never imports the library class.
 */
import type { AccessRecord } from '../binding/types.generated.js';
import type { BackendState, ResolvedConfig } from '../config/types.js';
import { NotFoundError, SwitchyardError } from '../errors.js';
import type { BackendEvent } from '../events.js';
import type { Logger } from '../log.js';
import type { Stats } from '../stats.js';
import type { Clock, Scheduled } from './clock.js';
import { DecisionLog, type DecisionCount } from './decisions.js';
import { SignalReader } from './signals.js';
import type { Policy, PolicyContext, PolicyDecision, PolicyStatus } from './types.js';

/** What the runner needs from the balancer. */
export interface PolicyHost {
  log: Logger;
  config(): ResolvedConfig;
  stats(): Stats;
  setWeight(pool: string, address: string, weight: number): Promise<void>;
  setBackendState(pool: string, address: string, state: BackendState): Promise<void>;
  /** Pull the data plane's queued access records now (they reach `tapAccess` listeners). */
  flushAccess(): void;
  /** Receive every batch of access records; returns the unsubscribe function. */
  tapAccess(listener: (records: readonly AccessRecord[]) => void): () => void;
}

interface Attached {
  policy: Policy;
  ctx: PolicyContext;
  reader: SignalReader;
  timer: Scheduled | undefined;
}

export class PolicyRunner {
  readonly #host: PolicyHost;
  readonly #clock: Clock;
  readonly #log = new DecisionLog();
  readonly #attached = new Map<string, Attached>();
  /** Set once the first policy is attached (the host's access records are tapped only when someone reads them). */
  #untap: (() => void) | undefined;
  #stopped = false;

  constructor(host: PolicyHost, clock: Clock) {
    this.#host = host;
    this.#clock = clock;
  }

  /** The clock the policies run on. */
  get clock(): Clock {
    return this.#clock;
  }

  /** Attach and start `policy`. A second policy of the same name is a `SWITCHYARD_ERR_CONFLICT`. */
  async use(policy: Policy): Promise<void> {
    if (this.#stopped) throw new SwitchyardError('SWITCHYARD_ERR_CLOSED', 'the balancer is closed');
    if (typeof policy?.name !== 'string' || policy.name === '') throw new TypeError('a policy needs a non-empty string `name`');
    if (this.#attached.has(policy.name)) throw new SwitchyardError('SWITCHYARD_ERR_CONFLICT', `a policy named "${policy.name}" is already attached`);
    if (policy.intervalMs !== undefined && !(Number.isFinite(policy.intervalMs) && policy.intervalMs > 0)) {
      throw new RangeError(`policy "${policy.name}": intervalMs must be a positive number of milliseconds, got ${policy.intervalMs}`);
    }
    this.#untap ??= this.#host.tapAccess((records) => {
      for (const a of this.#attached.values()) a.reader.offer(records);
    });
    const reader = new SignalReader(() => this.#host.stats());
    const a: Attached = { policy, reader, ctx: this.#context(policy.name, reader), timer: undefined };
    this.#attached.set(policy.name, a);
    try {
      await policy.start?.(a.ctx);
    } catch (err) {
      this.#attached.delete(policy.name);
      throw err;
    }
    if (policy.tick && policy.intervalMs !== undefined) a.timer = this.#clock.every(policy.intervalMs, () => this.#tick(a));
    this.#host.log('policy.attached', { policy: policy.name, kind: policy.kind ?? 'custom', interval_ms: policy.intervalMs ?? null });
  }

  /** Stop and detach the policy `name`. */
  remove(name: string): void {
    const a = this.#attached.get(name);
    if (!a) throw new NotFoundError('SWITCHYARD_ERR_NOT_FOUND', `no policy named "${name}"`);
    this.#detach(a);
    this.#host.log('policy.removed', { policy: name });
  }

  /** Each attached policy, its state and decision count. */
  statuses(): PolicyStatus[] {
    return [...this.#attached.values()].map(({ policy }) => {
      const s = policy.status?.() ?? { state: 'running' };
      return {
        name: policy.name,
        kind: policy.kind ?? 'custom',
        interval_ms: policy.tick && policy.intervalMs !== undefined ? policy.intervalMs : null,
        state: s.state,
        detail: s.detail ?? {},
        decisions: this.#log.total(policy.name),
      };
    });
  }

  /** Recent decisions, oldest first (see `DecisionLog.list`). */
  decisions(filter: { policy?: string; limit?: number } = {}): PolicyDecision[] {
    return this.#log.list(filter);
  }

  /** Decisions per policy and action since start (`/metrics`). */
  counts(): DecisionCount[] {
    return this.#log.counts();
  }

  /** A backend event: each policy that listens gets it (after the emitter returns; errors are logged). */
  backendEvent(event: BackendEvent): void {
    for (const a of this.#attached.values()) {
      const on = a.policy.onBackend;
      if (!on) continue;
      void Promise.resolve()
        .then(() => (this.#attached.get(a.policy.name) === a ? on.call(a.policy, event, a.ctx) : undefined))
        .catch((err: unknown) => this.#failed(a.policy.name, 'event', err));
    }
  }

  /** Stop every policy; nothing reaches the balancer afterwards. */
  stop(): void {
    this.#stopped = true;
    for (const a of [...this.#attached.values()]) this.#detach(a);
    this.#untap?.();
  }

  #detach(a: Attached): void {
    a.timer?.cancel();
    this.#attached.delete(a.policy.name);
    try {
      a.policy.stop?.();
    } catch (err) {
      this.#failed(a.policy.name, 'stop', err);
    }
  }

  async #tick(a: Attached): Promise<void> {
    if (this.#stopped || this.#attached.get(a.policy.name) !== a) return;
    try {
      await a.policy.tick!(a.ctx);
    } catch (err) {
      this.#failed(a.policy.name, 'tick', err);
    }
  }

  #failed(policy: string, during: string, err: unknown): void {
    this.#host.log('policy.tick_failed', { policy, during, error: err instanceof Error ? err.message : String(err) });
  }

  #record(d: Omit<PolicyDecision, 'time'>): void {
    const decision: PolicyDecision = { time: new Date(this.#clock.now()).toISOString(), ...d };
    this.#log.push(decision);
    const { policy, action, pool, address, reason } = decision;
    this.#host.log('policy.decision', { policy, action, pool, address, ...('from' in d ? { from: d.from, to: d.to } : {}), reason });
  }

  #backend(pool: string, address: string) {
    const p = this.#host.config().pools.find((x) => x.name === pool);
    if (!p) throw new NotFoundError('SWITCHYARD_ERR_NOT_FOUND', `no pool named "${pool}"`);
    const b = p.backends.find((x) => x.address === address);
    if (!b) throw new NotFoundError('SWITCHYARD_ERR_NOT_FOUND', `pool "${pool}" has no backend ${address}`);
    return b;
  }

  #context(name: string, reader: SignalReader): PolicyContext {
    const host = this.#host;
    const live = () => {
      if (this.#stopped || !this.#attached.has(name)) throw new SwitchyardError('SWITCHYARD_ERR_CLOSED', `policy "${name}" is no longer attached`);
    };
    const setState = async (pool: string, address: string, state: BackendState, reason: string) => {
      live();
      const from = this.#backend(pool, address).state;
      if (from === state) return;
      await host.setBackendState(pool, address, state);
      this.#record({ policy: name, action: state, pool, address, from, to: state, reason });
    };
    return {
      name,
      now: () => this.#clock.now(),
      config: () => host.config(),
      read: () => {
        host.flushAccess();
        return reader.read();
      },
      setWeight: async (pool, address, weight, reason) => {
        live();
        const from = this.#backend(pool, address).weight;
        if (from === weight) return;
        await host.setWeight(pool, address, weight);
        this.#record({ policy: name, action: 'set_weight', pool, address, from, to: weight, reason });
      },
      drain: (pool, address, reason) => setState(pool, address, 'drain', reason),
      ready: (pool, address, reason) => setState(pool, address, 'ready', reason),
      note: (action, pool, address, reason) => {
        live();
        this.#record({ policy: name, action, pool, address, reason });
      },
    };
  }
}
