/**
 * Drain deadlines: a backend in `drain` gets no new connections, and the ones it
 * still has are closed when its pool's `drain_timeout` passes. One code path for
 * every way a backend gets there (the API, the library, the config file at start
 * or on a reload): after each configuration change `sync` looks at the states in
 * force, so no caller has to remember to start or cancel a timer.
 */
import type { ResolvedConfig } from './config/types.js';
import type { BackendEvent } from './events.js';

/** What the deadlines act on. */
export interface DrainHost {
  /** The configuration in force when a deadline fires (the backend may have left `drain`). */
  config(): ResolvedConfig;
  /** Close the backend's remaining connections. */
  closeConnections(pool: string, address: string): void;
  emit(event: Omit<BackendEvent, 'time'>): void;
}

/** One deadline per draining backend, keyed `pool address`. */
export class Drains {
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly host: DrainHost) {}

  /** Start a deadline for every backend of `config` in `drain` that has none; cancel those of
   * backends no longer in `drain` (or gone). A drain already running keeps its deadline. */
  sync(config: ResolvedConfig): void {
    const draining = new Set<string>();
    for (const p of config.pools) {
      for (const b of p.backends) {
        if (b.state !== 'drain') continue;
        const key = `${p.name} ${b.address}`;
        draining.add(key);
        if (!this.#timers.has(key)) this.#start(key, p.name, b.address, p.drain_timeout_ms);
      }
    }
    for (const [key, timer] of this.#timers) {
      if (draining.has(key)) continue;
      clearTimeout(timer);
      this.#timers.delete(key);
    }
  }

  /** Cancel every deadline. */
  stop(): void {
    this.#timers.forEach((t) => clearTimeout(t));
    this.#timers.clear();
  }

  #start(key: string, pool: string, address: string, timeoutMs: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      const still = this.host.config().pools.find((x) => x.name === pool)?.backends.find((x) => x.address === address);
      if (still?.state !== 'drain') return;
      this.host.closeConnections(pool, address);
      this.host.emit({ pool, address, kind: 'drain_closed', reason: `drain_timeout (${timeoutMs} ms) passed` });
    }, timeoutMs);
    // The balancer keeps the process alive, not a pending deadline.
    timer.unref();
    this.#timers.set(key, timer);
  }
}
