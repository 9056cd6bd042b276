/**
 * Automatic drain on error rate: a backend whose error rate (5xx answers, failed connects and
 * connect timeouts over attempts) over `windowMs` exceeds `maxErrorRate`, with at least
 * `minRequests` attempts, is drained; after `cooldownMs` it is set `ready` again unless its
 * active check says it is down (then it is retried every tick). Its next window starts empty.
 *
 * Never more than `maxDrainedFraction` of a pool is out of service (drained, in maintenance,
 * checked down or ejected, counted with the backend about to be drained): a failing backend
 * past that cap is left in service and a `drain_capped` decision says so (once per episode).
 * Only backends this policy drained are restored, and only while they are still drained.
 */
import { SignalWindow } from './signals.js';
import type { Policy } from './types.js';

/** Options of `autoDrain`. Durations are milliseconds. */
export interface AutoDrainOptions {
  /** Default `auto-drain` (or `auto-drain:<pool>`). */
  name?: string;
  /** Only this pool; default every pool. */
  pool?: string;
  /** Default 5000. */
  intervalMs?: number;
  /** The error rate is measured over this much time (whole ticks). Default 30000. */
  windowMs?: number;
  /** Drain above this error rate (0..1). Default 0.5. */
  maxErrorRate?: number;
  /** Attempts in the window before a backend is judged. Default 20. */
  minRequests?: number;
  /** How long a drained backend stays out. Default 60000. */
  cooldownMs?: number;
  /** The largest share of a pool out of service at once (0..1). Default 0.5. */
  maxDrainedFraction?: number;
}

/** A policy that drains failing backends and restores them after a cooldown (see the module doc). */
export function autoDrain(options: AutoDrainOptions = {}): Policy {
  const name = options.name ?? (options.pool ? `auto-drain:${options.pool}` : 'auto-drain');
  const intervalMs = options.intervalMs ?? 5000;
  const maxRate = options.maxErrorRate ?? 0.5;
  const minRequests = options.minRequests ?? 20;
  const cooldownMs = options.cooldownMs ?? 60_000;
  const fraction = options.maxDrainedFraction ?? 0.5;
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`${name}: maxDrainedFraction must be in [0, 1], got ${fraction}`);
  const window = new SignalWindow(Math.max(1, Math.ceil((options.windowMs ?? 30_000) / intervalMs)));
  /** Backends this policy drained: when. */
  const drained = new Map<string, { pool: string; address: string; at: number }>();
  /** Backends over the bound but capped (one `drain_capped` decision per episode). */
  const capped = new Set<string>();
  const key = (pool: string, address: string) => `${pool} ${address}`;

  return {
    name,
    kind: 'auto_drain',
    intervalMs,
    async tick(ctx) {
      const readings = ctx.read().filter((r) => !options.pool || r.pool === options.pool);
      window.push(readings);
      const config = ctx.config();
      // Restore first: a backend back in service counts as in service for the cap below.
      for (const [k, d] of drained) {
        const b = config.pools.find((p) => p.name === d.pool)?.backends.find((x) => x.address === d.address);
        if (!b || b.state !== 'drain') {
          drained.delete(k); // removed, or someone else changed its state: not ours any more
          continue;
        }
        if (ctx.now() - d.at < cooldownMs) continue;
        if (readings.find((r) => r.pool === d.pool && r.address === d.address)?.health === 'down') continue;
        drained.delete(k);
        window.reset(d.pool, d.address);
        await ctx.ready(d.pool, d.address, `cooldown of ${cooldownMs} ms over; back in service`);
      }
      const fresh = ctx.config();
      for (const r of readings) {
        const k = key(r.pool, r.address);
        if (drained.has(k) || r.state !== 'ready') continue;
        const w = window.get(r.pool, r.address);
        if (!w || w.attempts < minRequests || w.errorRate <= maxRate) {
          capped.delete(k);
          continue;
        }
        const why = `error rate ${w.errorRate.toFixed(3)} > ${maxRate} over ${window.size * intervalMs} ms (${w.errors}/${w.attempts} attempts)`;
        const pool = fresh.pools.find((p) => p.name === r.pool)!;
        const others = readings.filter((x) => x.pool === r.pool && x.address !== r.address);
        const out = others.filter((x) => !x.available || drained.has(key(x.pool, x.address))).length;
        const allowed = Math.floor(fraction * pool.backends.length);
        if (out + 1 > allowed) {
          if (!capped.has(k)) ctx.note('drain_capped', r.pool, r.address, `${why}; not drained: ${out} of ${pool.backends.length} already out, at most ${allowed} (${fraction})`);
          capped.add(k);
          continue;
        }
        capped.delete(k);
        drained.set(k, { pool: r.pool, address: r.address, at: ctx.now() });
        await ctx.drain(r.pool, r.address, why);
      }
    },
    status() {
      return {
        state: drained.size ? 'draining' : 'watching',
        detail: { drained: [...drained.values()].map((d) => ({ pool: d.pool, address: d.address, since_ms: d.at })), capped: [...capped] },
      };
    },
  };
}
