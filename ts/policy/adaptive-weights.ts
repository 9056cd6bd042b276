/**
 * Adaptive weights: each tick, a pool's backends get weights in inverse proportion to their
 * measured latency — the fastest gets `maxWeight`, one twice as slow half of it — bounded below
 * by `minWeight` (a slow backend still gets some traffic, so its recovery is seen) and smoothed
 * twice: latencies are averaged over ticks (EWMA), and a weight moves only when the new value
 * differs from the one in force by more than `deadband`.
 *
 * Latency is the mean (or p99) per backend from `ctx.read()`: real per-request samples on
 * listeners with `access_log`, else the mean connect time (an estimate; see `signals.ts`).
 * A backend with fewer than `minSamples` samples in a tick keeps its smoothed value; one that
 * is not `ready` or is a backup is left alone.
 */
import type { Policy } from './types.js';

/** Options of `adaptiveWeights`. Durations are milliseconds. */
export interface AdaptiveWeightsOptions {
  /** Default `adaptive-weights:<pool>`. */
  name?: string;
  pool: string;
  /** Default 10000. */
  intervalMs?: number;
  /** Bounds of the weights set. Defaults 10 and 100. */
  minWeight?: number;
  maxWeight?: number;
  /** Weight of a new reading in the latency average, in (0, 1]. Default 0.5. */
  smoothing?: number;
  /** Samples a backend needs in a tick for that tick to count. Default 10. */
  minSamples?: number;
  /** Which figure: `mean` (default) or `p99`. */
  latency?: 'mean' | 'p99';
  /** Latencies below this count as this (ms), so sub-millisecond noise moves nothing. Default 1. */
  floorMs?: number;
  /** Relative change below which a weight is left as it is. Default 0.1. */
  deadband?: number;
}

/** A policy setting a pool's weights from measured latency (see the module doc). */
export function adaptiveWeights(options: AdaptiveWeightsOptions): Policy {
  const name = options.name ?? `adaptive-weights:${options.pool}`;
  const min = options.minWeight ?? 10;
  const max = options.maxWeight ?? 100;
  const alpha = options.smoothing ?? 0.5;
  if (!(min >= 0 && max >= min && max <= 1000)) throw new RangeError(`${name}: expected 0 <= minWeight <= maxWeight <= 1000, got ${min} and ${max}`);
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`${name}: smoothing must be in (0, 1], got ${alpha}`);
  const minSamples = options.minSamples ?? 10;
  const floor = options.floorMs ?? 1;
  const deadband = options.deadband ?? 0.1;
  const pick = options.latency ?? 'mean';
  /** Smoothed latency per backend address. */
  const smoothed = new Map<string, number>();

  return {
    name,
    kind: 'adaptive_weights',
    intervalMs: options.intervalMs ?? 10_000,
    async tick(ctx) {
      const pool = ctx.config().pools.find((p) => p.name === options.pool);
      if (!pool) return;
      const managed = new Set(pool.backends.filter((b) => b.state === 'ready' && !b.backup).map((b) => b.address));
      for (const r of ctx.read()) {
        if (r.pool !== options.pool || !managed.has(r.address)) continue;
        const v = pick === 'mean' ? r.latency.meanMs : r.latency.p99Ms;
        if (v === null || r.latency.samples < minSamples) continue;
        const x = Math.max(floor, v);
        const was = smoothed.get(r.address);
        smoothed.set(r.address, was === undefined ? x : alpha * x + (1 - alpha) * was);
      }
      for (const a of smoothed.keys()) if (!managed.has(a)) smoothed.delete(a);
      if (smoothed.size === 0) return;
      const fastest = Math.min(...smoothed.values());
      for (const [address, ms] of smoothed) {
        const target = Math.min(max, Math.max(min, Math.round((max * fastest) / ms)));
        const current = pool.backends.find((b) => b.address === address)!.weight;
        if (current > 0 && Math.abs(target - current) / current <= deadband) continue;
        await ctx.setWeight(options.pool, address, target, `${pick} latency ${ms.toFixed(1)} ms (smoothed) vs fastest ${fastest.toFixed(1)} ms`);
      }
    },
    status() {
      return { state: smoothed.size ? 'adjusting' : 'measuring', detail: { pool: options.pool, latency: pick, smoothed_ms: Object.fromEntries(smoothed) } };
    },
  };
}
