/**
 * What runs beside the data plane in the Node process while a balancer is up:
 * active health checks (verdicts to the data plane, then events), slow start
 * after a recovery, drain deadlines, certificate file watching, pulling the data
 * plane's event queue, and the admin server. `Switchyard` is the API; it owns the engine and
 * the configuration and hands this module the few things it needs (`Host`).
 */
import type { ResolvedConfig } from './config/types.js';
import type { WeightOverrides } from './config/engine.js';
import { fromNative } from './errors.js';
import type { BackendEvent } from './events.js';
import type { Logger } from './log.js';
import type { Engine } from './binding/engine.js';
import { CertWatcher, tlsFiles } from './tls-watch.js';
import { HealthMonitor, type BackendCheckState, type HealthChange } from './health/monitor.js';
import { SharedHealth, type FleetVerdict } from './etcd/shared-health.js';
import { SlowStart } from './slow-start.js';
import { Drains } from './drains.js';
import { startAdmin, type AdminOptions, type AdminServer } from './admin/server.js';
import type { AdminTarget } from './admin/target.js';
import type { AccessRecord } from './binding/types.generated.js';

/** How often data-plane events (passive ejections) are pulled. */
const EVENT_PULL_MS = 250;

/** What the services need from the balancer they run beside. */
export interface Host {
  engine: Pick<Engine, 'setHealth' | 'events' | 'accessLog' | 'closeBackendConnections'>;
  log: Logger;
  /** The configuration in force (it changes with every update). */
  config(): ResolvedConfig;
  /** Record and publish a backend event. */
  emit(event: Omit<BackendEvent, 'time'>): void;
  /** Push pool `name` again with the current slow-start weights; nothing else is rebuilt. */
  pushPool(name: string): void;
  /** Push the whole configuration again, re-reading the certificate files. */
  pushAll(): void;
}

/** The services of one running balancer. Everything stops with `stop()`. */
export class Services {
  readonly #host: Host;
  #stopped = false;
  readonly #pull: NodeJS.Timeout;
  readonly #certs = new CertWatcher(() => this.#reloadCertificates());
  readonly #slowStart = new SlowStart((pools) => this.#push(pools));
  readonly #monitor: HealthMonitor;
  readonly #drains: Drains;
  /** The fleet's shared health view (`etcd.shared_health`); fixed at start. */
  readonly #shared: SharedHealth | undefined;
  #admin: AdminServer | undefined;
  /** Receivers of every access-record batch (the policy runner's latency samples). */
  readonly #accessTaps = new Set<(records: readonly AccessRecord[]) => void>();

  constructor(host: Host) {
    this.#host = host;
    const config = host.config();
    // Unref'd: keeping the process alive is the balancer's job, not the event pull's.
    this.#pull = setInterval(() => this.#pullEvents(), EVENT_PULL_MS);
    this.#pull.unref();
    this.#certs.sync(tlsFiles(config));
    // Transitions are logged once, where every backend event is (`emit`); the monitor logs only its own trouble.
    this.#monitor = new HealthMonitor({ onChange: (batch) => this.#onHealth(batch), logger: host.log, logTransitions: false });
    const shared = config.etcd?.shared_health;
    if (shared) {
      this.#shared = new SharedHealth(config.etcd!.endpoints, shared, host.log, (verdicts) => this.#onFleetHealth(verdicts));
      void this.#shared.start();
    }
    this.#monitor.sync(config);
    this.#drains = new Drains({
      config: () => host.config(),
      closeConnections: (pool, address) => host.engine.closeBackendConnections(pool, address),
      emit: (e) => host.emit(e),
    });
    this.#drains.sync(config);
    for (const p of config.pools) {
      for (const b of p.backends) {
        if (b.state === 'drain') host.emit({ pool: p.name, address: b.address, kind: 'drain', reason: `state drain (config); open connections close after ${p.drain_timeout_ms} ms` });
      }
    }
  }

  /** Start the admin server for `target` (the balancer itself). */
  async startAdmin(target: AdminTarget, admin: { address: string; token: string | null }, opts: Omit<AdminOptions, 'logger'> = {}): Promise<void> {
    this.#admin = await startAdmin(target, admin, { logger: this.#host.log, ...opts });
  }

  /** The admin server's address, when one runs. */
  adminAddress(): AdminServer['address'] | undefined {
    return this.#admin?.address;
  }

  /** The admin server, when one runs (an upgrade hands its socket over and stops it listening). */
  adminServer(): AdminServer | undefined {
    return this.#admin;
  }

  /** The active health checks: per checked backend, its status and last result. */
  health(): BackendCheckState[] {
    return this.#monitor.states();
  }

  /** Weights slow start holds below their configured value in `config`, now. */
  weights(config: ResolvedConfig): WeightOverrides {
    return this.#slowStart.overrides(config);
  }

  /** A new configuration is in force: follow its certificate files, checks and drains. */
  applied(before: ResolvedConfig, after: ResolvedConfig): void {
    this.#certs.sync(tlsFiles(after));
    this.#monitor.sync(after);
    this.#drains.sync(after);
    // A backend whose check was removed is usable again (its last verdict no longer applies).
    const unchecked = after.pools.flatMap((p) =>
      p.backends
        .filter((b) => !b.health_check && before.pools.find((x) => x.name === p.name)?.backends.find((x) => x.address === b.address)?.health_check)
        .map((b) => ({ pool: p.name, address: b.address, up: true })),
    );
    if (unchecked.length) this.#host.engine.setHealth(unchecked);
  }

  /** Stop every service but the admin server (see `closeAdmin`); nothing reaches the data plane afterwards. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#pull);
    this.#monitor.stop();
    await this.#shared?.stop();
    this.#slowStart.stop();
    this.#drains.stop();
    this.#certs.stop();
  }

  /**
   * Write out the access-log records the data plane queued (listeners with `access_log`):
   * one `access` line per client connection. Pulled with the events, and once more after
   * the drain so the last connections are logged too.
   */
  flushAccessLog(): void {
    const { records, dropped } = this.#host.engine.accessLog();
    if (records.length) for (const tap of this.#accessTaps) tap(records);
    for (const r of records) {
      const { time_ms, ...fields } = r;
      this.#host.log('access', { ...fields, accepted_at: new Date(time_ms).toISOString() }, 'info');
    }
    if (dropped > 0) this.#host.log('access.dropped', { dropped, reason: 'the access log queue was full' }, 'warn');
  }

  /** Also hand every batch of access records to `listener` (after `flushAccessLog` pulls it); returns the unsubscribe function. */
  tapAccess(listener: (records: readonly AccessRecord[]) => void): () => void {
    this.#accessTaps.add(listener);
    return () => this.#accessTaps.delete(listener);
  }

  /** Close the admin server. `Switchyard.close` calls it after the drain, so `/readyz` answers 503 until then. */
  async closeAdmin(): Promise<void> {
    await this.#admin?.close();
  }

  /** Active-check transitions: to the data plane in one batch, then events; slow start on recovery. */
  #onHealth(batch: HealthChange[]): void {
    if (this.#stopped) return;
    const { engine, emit } = this.#host;
    // With a shared view the data plane gets the fleet's verdict (#onFleetHealth), not this node's alone.
    if (this.#shared) this.#shared.local(batch);
    else engine.setHealth(batch.map(({ pool, address, up }) => ({ pool, address, up })));
    for (const c of batch) {
      emit({ pool: c.pool, address: c.address, kind: c.up ? 'up' : 'down', reason: c.reason });
      if (c.up && this.#slowStart.begin(this.#host.config(), c.pool, c.address)) {
        emit({ pool: c.pool, address: c.address, kind: 'slow_start', reason: `weight ramps 10% → 100%` });
      }
    }
  }

  /** The fleet's verdicts (shared health): to the data plane; one that overrides this node's own check is an event. */
  #onFleetHealth(verdicts: FleetVerdict[]): void {
    if (this.#stopped) return;
    this.#host.engine.setHealth(verdicts.map(({ pool, address, up }) => ({ pool, address, up })));
    for (const v of verdicts) if (v.reason.startsWith('fleet:')) this.#host.emit({ pool: v.pool, address: v.address, kind: v.up ? 'up' : 'down', reason: v.reason });
  }

  /** A slow-start step: only the ramped pools are replaced (a pool removed meanwhile is skipped). */
  #push(pools: string[]): void {
    if (this.#stopped) return;
    const present = new Set(this.#host.config().pools.map((p) => p.name));
    for (const pool of pools.filter((p) => present.has(p))) {
      try {
        this.#host.pushPool(pool);
      } catch (err) {
        this.#host.log('update_failed', { pool, error: fromNative(err).message });
      }
    }
  }

  /** A certificate file changed: push the same configuration again, re-reading the PEMs. */
  #reloadCertificates(): void {
    if (this.#stopped) return;
    try {
      this.#host.pushAll();
      this.#host.log('tls.reloaded', { files: tlsFiles(this.#host.config()) });
    } catch (err) {
      this.#host.log('tls.reload_failed', { error: fromNative(err).message, kept: 'the previous certificates stay in force' });
    }
  }

  /** Pull the data plane's queued events (bounded there; drops are counted and reported). */
  #pullEvents(): void {
    if (this.#stopped) return;
    const batch = this.#host.engine.events();
    for (const e of batch.events) {
      const reason = e.kind === 'ejected' ? `${e.reason}; ejected for ${e.duration_ms} ms` : e.reason;
      this.#host.emit({ pool: e.pool, address: e.address, kind: e.kind, reason });
    }
    if (batch.dropped > 0) this.#host.emit({ pool: '', address: '', kind: 'events_dropped', reason: `${batch.dropped} data-plane events dropped (queue full)` });
    this.flushAccessLog();
  }
}
