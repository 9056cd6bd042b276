/**
 * What a control loop measures: per backend, what happened since the previous reading —
 * requests, errors, and latency.
 *
 * Counts are deltas of the data plane's per-backend counters (`stats()`): `total` (requests on
 * HTTP listeners, connections on TCP ones), `responses_5xx`, `connect_errors`, `connect_timeouts`.
 * The data plane keeps no per-backend latency histogram (only per-route ones), so latency comes
 * from one of two places, named in `latency.source`:
 * - `access_log`: listeners with `access_log: true` queue one record per request (HTTP: time to
 *   the response head) or connection (TCP: its duration), each naming its backend. These are real
 *   per-backend samples: `p99Ms` is a true percentile of them (subject to `access_log_sample`).
 * - `connect_time`: otherwise, the mean time to connect to the backend (`connect_time_us_sum` /
 *   `connects`). An estimate only: it sees a slow network or an overloaded accept queue, not a
 *   slow response, and keep-alive connections make it rare. `p99Ms` is then that mean.
 */
import type { AccessRecord } from '../binding/types.generated.js';
import type { BackendStats, Stats } from '../stats.js';

/** Where a latency figure comes from (see the module doc). */
export type LatencySource = 'access_log' | 'connect_time' | 'none';

/** One backend's latency over a reading. */
export interface Latency {
  source: LatencySource;
  /** Samples behind the figures (access records, or connects). */
  samples: number;
  meanMs: number | null;
  p99Ms: number | null;
}

/** One backend over a reading (or several, merged with `mergeSignals`). */
export interface BackendSignal {
  pool: string;
  address: string;
  /** Now, at the end of the reading. */
  weight: number;
  state: BackendStats['state'];
  /** Eligible for new traffic now (ready, not checked down, not ejected). */
  available: boolean;
  health: BackendStats['health'];
  /** Requests (HTTP) or connections (TCP) sent to it, plus failed connect attempts. */
  attempts: number;
  /** 5xx answers, failed connects and connect timeouts. */
  errors: number;
  responses5xx: number;
  connectErrors: number;
  /** `errors / attempts`; 0 without attempts. */
  errorRate: number;
  latency: Latency;
  /** Raw latency samples (ms), kept so readings can be merged into a window. Capped at `MAX_SAMPLES`. */
  samplesMs: number[];
  /** Sum and count of connect times (µs), for the `connect_time` estimate of a merged window. */
  connectUs: number;
  connects: number;
}

/** Latency samples kept per backend per reading (the newest win). */
export const MAX_SAMPLES = 4096;

/** The `q` quantile (0..1) of `values` by nearest rank; null when empty. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

function latencyOf(samplesMs: number[], connectUs: number, connects: number): Latency {
  if (samplesMs.length > 0) {
    const mean = samplesMs.reduce((s, v) => s + v, 0) / samplesMs.length;
    return { source: 'access_log', samples: samplesMs.length, meanMs: mean, p99Ms: quantile(samplesMs, 0.99) };
  }
  if (connects > 0) {
    const mean = connectUs / connects / 1000;
    return { source: 'connect_time', samples: connects, meanMs: mean, p99Ms: mean };
  }
  return { source: 'none', samples: 0, meanMs: null, p99Ms: null };
}

/** Several readings of one backend as one window: counts summed, samples pooled, the state of the last. */
export function mergeSignals(readings: readonly BackendSignal[]): BackendSignal | undefined {
  const last = readings.at(-1);
  if (!last) return undefined;
  let attempts = 0, errors = 0, responses5xx = 0, connectErrors = 0, connectUs = 0, connects = 0;
  let samplesMs: number[] = [];
  for (const r of readings) {
    attempts += r.attempts;
    errors += r.errors;
    responses5xx += r.responses5xx;
    connectErrors += r.connectErrors;
    connectUs += r.connectUs;
    connects += r.connects;
    samplesMs = samplesMs.concat(r.samplesMs);
  }
  samplesMs = samplesMs.slice(-MAX_SAMPLES);
  return {
    ...last,
    attempts,
    errors,
    responses5xx,
    connectErrors,
    errorRate: attempts > 0 ? errors / attempts : 0,
    latency: latencyOf(samplesMs, connectUs, connects),
    samplesMs,
    connectUs,
    connects,
  };
}

/** The counters a reading subtracts. */
interface Counters {
  total: number;
  r5xx: number;
  connectErrors: number;
  connectTimeouts: number;
  connectUs: number;
  connects: number;
}

const key = (pool: string, address: string): string => `${pool} ${address}`;

/** The latency a record carries: time to the response head for HTTP, the connection's duration otherwise. */
function recordMs(r: AccessRecord): number {
  return r.http ? r.http.head_ms : r.duration_ms;
}

/**
 * Reads backend signals as deltas since its previous `read()`. Each control loop owns one, so
 * loops on different schedules never steal each other's deltas. Access records reach it through
 * `offer` (the policy runner fans them out to every reader); the first reading is against zero
 * counters at the moment the reader was made (the baseline is taken then).
 */
export class SignalReader {
  #last = new Map<string, Counters>();
  #samples = new Map<string, number[]>();

  constructor(private readonly stats: () => Stats) {
    this.#snapshot(stats());
  }

  /** Keep the latency of access records (up to `MAX_SAMPLES` per backend until the next read). */
  offer(records: readonly AccessRecord[]): void {
    for (const r of records) {
      if (!r.backend || !r.pool || r.ended === 'no_backend') continue;
      const k = key(r.pool, r.backend);
      let list = this.#samples.get(k);
      if (!list) this.#samples.set(k, (list = []));
      list.push(recordMs(r));
      if (list.length > MAX_SAMPLES) list.shift();
    }
  }

  /** Every backend of every pool, since the previous reading. */
  read(): BackendSignal[] {
    const now = this.stats();
    const out: BackendSignal[] = [];
    for (const p of now.pools) {
      for (const b of p.backends) {
        const k = key(p.name, b.address);
        const c = counters(b);
        const was = this.#last.get(k) ?? { total: 0, r5xx: 0, connectErrors: 0, connectTimeouts: 0, connectUs: 0, connects: 0 };
        // A counter that went down belongs to a backend removed and added again: count from zero.
        const d = (f: keyof Counters) => (c[f] >= was[f] ? c[f] - was[f] : c[f]);
        const samplesMs = this.#samples.get(k) ?? [];
        const connectErrors = d('connectErrors') + d('connectTimeouts');
        const attempts = d('total') + connectErrors;
        const errors = d('r5xx') + connectErrors;
        out.push({
          pool: p.name,
          address: b.address,
          weight: b.weight,
          state: b.state,
          available: b.available,
          health: b.health,
          attempts,
          errors,
          responses5xx: d('r5xx'),
          connectErrors,
          errorRate: attempts > 0 ? errors / attempts : 0,
          latency: latencyOf(samplesMs, d('connectUs'), d('connects')),
          samplesMs,
          connectUs: d('connectUs'),
          connects: d('connects'),
        });
      }
    }
    this.#samples.clear();
    this.#snapshot(now);
    return out;
  }

  #snapshot(stats: Stats): void {
    this.#last.clear();
    for (const p of stats.pools) for (const b of p.backends) this.#last.set(key(p.name, b.address), counters(b));
  }
}

function counters(b: BackendStats): Counters {
  return {
    total: b.total,
    r5xx: b.responses_5xx,
    connectErrors: b.connect_errors,
    connectTimeouts: b.connect_timeouts,
    connectUs: b.connect_time_us_sum,
    connects: b.connects,
  };
}

/**
 * The last `size` readings per backend, merged on demand: an error rate "over a window" for a
 * loop that reads every tick (`size` = window / interval, at least 1).
 */
export class SignalWindow {
  #readings = new Map<string, BackendSignal[]>();

  constructor(readonly size: number) {}

  /** Add one reading of every backend. */
  push(readings: readonly BackendSignal[]): void {
    for (const r of readings) {
      const k = key(r.pool, r.address);
      const list = this.#readings.get(k) ?? [];
      list.push(r);
      if (list.length > this.size) list.shift();
      this.#readings.set(k, list);
    }
  }

  /** Forget a backend's readings (it was drained or restored: its next window starts fresh). */
  reset(pool: string, address: string): void {
    this.#readings.delete(key(pool, address));
  }

  /** A backend's window, merged; undefined before its first reading. */
  get(pool: string, address: string): BackendSignal | undefined {
    return mergeSignals(this.#readings.get(key(pool, address)) ?? []);
  }
}
