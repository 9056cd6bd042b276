/**
 * Slow start: a backend that comes back (its active check turns up) gets its
 * effective weight ramped from 10% to 100% over the pool's `slow_start`, so a
 * cold cache or JIT is not hit with a full share at once. The control plane
 * decides the weights and pushes them as ordinary table updates.
 *
 * Applies to the algorithms the data plane's catalog marks `ramps_weights`:
 * weighted and not keyed. Keyed algorithms (ip_hash, consistent_hash, maglev)
 * are left alone: changing a weight there moves keys, and ramping would move
 * them several times; the recovered backend takes back its keys at once.
 *
 * Each step replaces only the pools being ramped (`push(pools)`), never the
 * whole configuration.
 */
import type { ResolvedConfig } from './config/types.js';
import type { WeightOverrides } from './config/engine.js';
import { ALGORITHM_INFO } from './binding/catalog.generated.js';

const RAMPED: readonly string[] = ALGORITHM_INFO.filter((a) => a.ramps_weights).map((a) => a.name);
/** Weight updates per ramp. */
const STEPS = 20;

interface Ramp {
  start: number;
  duration: number;
}

/** The ramps in progress and the timer that pushes their steps. */
export class SlowStart {
  #ramps = new Map<string, Ramp>();
  #timer: NodeJS.Timeout | undefined;

  /** `push` re-applies the named pools (with `overrides()`) to the data plane. */
  constructor(private readonly push: (pools: string[]) => void) {}

  /** Start ramping `pool/address` if its pool asks for it. Returns whether a ramp started. */
  begin(config: ResolvedConfig, pool: string, address: string): boolean {
    const p = config.pools.find((x) => x.name === pool);
    if (!p || p.slow_start_ms <= 0 || !RAMPED.includes(p.algorithm)) return false;
    this.#ramps.set(`${pool}/${address}`, { start: Date.now(), duration: p.slow_start_ms });
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#tick(), Math.max(50, Math.floor(p.slow_start_ms / STEPS)));
      this.#timer.unref();
    }
    this.push([pool]);
    return true;
  }

  /** Effective weights of the backends being ramped, now. */
  overrides(config: ResolvedConfig): WeightOverrides {
    const now = Date.now();
    const out = new Map<string, number>();
    for (const [key, r] of this.#ramps) {
      const [pool, address] = [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
      const b = config.pools.find((p) => p.name === pool)?.backends.find((x) => x.address === address);
      const progress = Math.min(1, (now - r.start) / r.duration);
      if (!b || progress >= 1) continue;
      out.set(key, Math.max(1, Math.round(b.weight * (0.1 + 0.9 * progress))));
    }
    return out;
  }

  /** Backends being ramped, with their progress 0..1. */
  progress(): { key: string; progress: number }[] {
    const now = Date.now();
    return [...this.#ramps].map(([key, r]) => ({ key, progress: Math.min(1, (now - r.start) / r.duration) }));
  }

  #tick(): void {
    const now = Date.now();
    // Every pool with a ramp, including one that just ended (its last step is the full weight).
    const pools = new Set([...this.#ramps.keys()].map((key) => key.slice(0, key.indexOf('/'))));
    for (const [key, r] of this.#ramps) if (now - r.start >= r.duration) this.#ramps.delete(key);
    this.push([...pools]);
    if (this.#ramps.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
