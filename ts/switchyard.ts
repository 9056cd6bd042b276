/**
 * The library API: start a balancer from a configuration, inspect it, update
 * it, close it. Configuration is validated here (TypeScript decides the
 * tables); the resolved tables cross to the Rust engine, which executes them.
 */
import { validateConfig } from './config/validate.js';
import { loadConfigFile } from './config/load.js';
import type { ResolvedConfig, SwitchyardConfig } from './config/types.js';
import { engineConfigJson } from './config/engine.js';
import { ClosedError, SwitchyardError, fromNative } from './errors.js';
import { silent, type Logger } from './log.js';
import { native, type NativeEngine } from './native.js';
import type { Stats } from './stats.js';
import { planChange, type PlanChange, type PlanOptions, type PlanReport } from './plan.js';

/** Options of `Switchyard.start`. */
export interface StartOptions {
  /** Receives lifecycle events. Default: silent. */
  logger?: Logger;
  /** Names the configuration in error messages (a file path, say). Default `"config"`. */
  source?: string;
}

/** Options of `close`. */
export interface CloseOptions {
  /** How long in-flight connections may keep running before they are closed. Default 10000. */
  drainMs?: number;
}

/** A listener's bound address. */
export interface BoundAddress {
  host: string;
  port: number;
  /** `host:port` (IPv6 in brackets), ready for `net.connect` or curl. */
  address: string;
}

function splitAddress(address: string): BoundAddress {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(address.slice(i + 1)), address };
}

/** A running load balancer. */
export class Switchyard {
  #engine: NativeEngine;
  #config: ResolvedConfig;
  #log: Logger;
  #keepAlive: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  private constructor(engine: NativeEngine, config: ResolvedConfig, log: Logger) {
    this.#engine = engine;
    this.#config = config;
    this.#log = log;
    // The engine's sockets live in Rust, where Node cannot see them; this ref'd
    // timer keeps the process alive while the balancer runs, like a net.Server.
    this.#keepAlive = setInterval(() => {}, 1 << 30);
  }

  /** Validate `config` and start listening. Every listener is bound when this resolves. */
  static async start(config: SwitchyardConfig, options: StartOptions = {}): Promise<Switchyard> {
    const resolved = validateConfig(config, options.source ?? 'config');
    return Switchyard.#startResolved(resolved, options.logger ?? silent, options.source);
  }

  /** Load a YAML, JSON, JS or TS configuration file and start it. */
  static async fromFile(path: string, options: Omit<StartOptions, 'source'> = {}): Promise<Switchyard> {
    const resolved = await loadConfigFile(path);
    return Switchyard.#startResolved(resolved, options.logger ?? silent, path);
  }

  static #startResolved(config: ResolvedConfig, log: Logger, source = 'config'): Switchyard {
    let engine: NativeEngine;
    try {
      engine = native().NativeEngine.start(engineConfigJson(config));
    } catch (err) {
      throw fromNative(err, source);
    }
    const lb = new Switchyard(engine, config, log);
    for (const [name, address] of Object.entries(lb.addresses())) {
      const l = config.listeners.find((x) => x.name === name);
      log('listener.started', { listener: name, address: address.address, pool: l?.pool });
    }
    log('started', { workers: config.workers, listeners: config.listeners.length, pools: config.pools.length });
    return lb;
  }

  /** The configuration in force (validated, defaults filled in). */
  get config(): ResolvedConfig {
    return this.#config;
  }

  /** The bound address of listener `name` (the real port when the config said 0). */
  address(name: string): BoundAddress {
    const a = this.addresses()[name];
    if (!a) throw new SwitchyardError('SWITCHYARD_ERR_NOT_FOUND', `no listener named "${name}"`);
    return a;
  }

  /** Bound addresses of every listener. */
  addresses(): Record<string, BoundAddress> {
    this.#assertOpen();
    const raw = JSON.parse(this.#engine.addresses()) as Record<string, string>;
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, splitAddress(v)]));
  }

  /**
   * Validate `config` and apply it atomically: all of it or nothing. Established
   * connections are never dropped; new connections see the new tables.
   */
  async update(config: SwitchyardConfig, options: { source?: string } = {}): Promise<void> {
    this.#assertOpen();
    const resolved = validateConfig(config, options.source ?? 'config');
    this.#apply(resolved, options.source);
  }

  /** Re-read a configuration file and apply it (an invalid file changes nothing). */
  async reload(path: string): Promise<void> {
    this.#assertOpen();
    this.#apply(await loadConfigFile(path), path);
  }

  #apply(resolved: ResolvedConfig, source = 'config'): void {
    try {
      this.#engine.update(engineConfigJson(resolved));
    } catch (err) {
      throw fromNative(err, source);
    }
    const before = this.#config;
    this.#config = resolved;
    this.#log('config.updated', {
      listeners: resolved.listeners.map((l) => l.name),
      pools: resolved.pools.map((p) => `${p.name}(${p.backends.length})`),
      previous_pools: before.pools.map((p) => `${p.name}(${p.backends.length})`),
    });
  }

  /**
   * What would move if `change` were applied to pool `pool`: each backend's
   * share before and after, and the fraction of client keys whose backend
   * changes. Changes nothing.
   */
  plan(pool: string, change: PlanChange, options: PlanOptions = {}): PlanReport {
    return planChange(this.#config, pool, change, options);
  }

  /** Every counter of the data plane at this instant. */
  stats(): Stats {
    this.#assertOpen();
    return JSON.parse(this.#engine.stats()) as Stats;
  }

  /**
   * Stop accepting at once, let in-flight connections finish for up to
   * `drainMs`, then close what is left. Resolves when the ports are released
   * and the data plane has stopped. Safe to call twice.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= (async () => {
      const drainMs = options.drainMs ?? 10_000;
      this.#log('draining', { drain_ms: drainMs });
      try {
        await this.#engine.close(Math.max(0, Math.floor(drainMs)));
      } finally {
        clearInterval(this.#keepAlive);
        this.#keepAlive = undefined;
      }
      this.#log('stopped');
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#closing) throw new ClosedError('SWITCHYARD_ERR_CLOSED', 'the balancer is closed');
  }
}
