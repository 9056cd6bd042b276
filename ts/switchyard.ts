/**
 * The library API: start a balancer from a configuration, inspect it, update
 * it, close it. Configuration is validated here (TypeScript decides the
 * tables); the resolved tables cross to the Rust engine, which executes them.
 */
import { validateConfig } from './config/validate.js';
import { loadConfigFile } from './config/load.js';
import type { ResolvedConfig, SwitchyardConfig } from './config/types.js';
import { engineConfig, enginePool } from './config/engine.js';
import { ClosedError, ConfigError, NotFoundError, fromNative } from './errors.js';
import { silent, type Logger } from './log.js';
import { Engine } from './binding/engine.js';
import type { BackendTlsConfig, EngineConfig } from './binding/types.generated.js';
import type { Stats } from './stats.js';
import type { Trace, TraceQuery } from './traces.js';
import { planChange, type PlanChange, type PlanOptions, type PlanReport } from './plan.js';
import { EventEmitter } from 'node:events';
import type { Algorithm, BackendConfig, BackendState } from './config/types.js';
import { BackendEvents, EventHistory, type BackendEvent } from './events.js';
import * as mutate from './mutate.js';
import type { BackendCheckState } from './health/monitor.js';
import { Services } from './services.js';
import { Membership, type MembershipCause, type PoolMembership } from './membership.js';
import type { ConfigSourceStatus } from './etcd/config-source.js';
import { parseHostPort } from './dns/names.js';
import { parseAddress } from './config/checker.js';
import type { Handed, HandoffChild, HandoffParent } from './binding/handoff.js';
import type { Upgrader } from './admin/target.js';
import { PolicyRunner } from './policy/runner.js';
import { realClock, type Clock } from './policy/clock.js';
import type { Policy, PolicyDecision, PolicyStatus } from './policy/types.js';
import type { DecisionCount } from './policy/decisions.js';
import { HookRegistry } from './hooks/registry.js';
import type { HookFn } from './hooks/types.js';
import { HOOK_LIMITS } from './binding/catalog.generated.js';

/** Options of `Switchyard.start`. */
export interface StartOptions {
  /** Receives lifecycle events. Default: silent. */
  logger?: Logger;
  /** Names the configuration in error messages (a file path, say). Default `"config"`. */
  source?: string;
  /** The new process of an upgrade: take the listening sockets (and the admin API's) this hand-over received. */
  handoff?: { child: HandoffChild; adminFd: number | null };
  /** What the admin API's `POST /api/upgrade` runs (the `switchyard` command gives one; see `ts/upgrade/`). */
  upgrade?: Upgrader;
  /** Control loops to attach once the listeners are bound (see `use`). */
  policies?: Policy[];
  /** The clock policies run on. Default: real time (the test kit passes a `ManualClock`). */
  clock?: Clock;
  /** Where the configuration comes from when it is not a file (an etcd key): shown by `GET /api/config`. */
  configSource?: () => ConfigSourceStatus | undefined;
  /** Hook functions by name, registered before the first request (see `hook`). */
  hooks?: Record<string, HookFn>;
  /** Hook calls waiting for an answer at once, all hooks together; beyond, a call gets its fallback at once (counted `full`). Default 1024. */
  hookQueue?: number;
}

/** What an upgrade handed to the new process (`handOver`). */
export interface HandOverReport extends Handed {
  /** The version the new process announced. */
  version: string;
}

/** Options of `close`. */
export interface CloseOptions {
  /** How long in-flight connections may keep running before they are closed. Default 10000. */
  drainMs?: number;
  /**
   * Close the plain TCP connections still open at random instants over the drain window
   * instead of all at its end, so their clients do not reconnect in one burst (HAProxy's
   * `close-spread-time`). Default false.
   */
  spread?: boolean;
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

/** Period of the keep-alive timer (it does nothing; it only has to exist). */
const KEEP_ALIVE_MS = 60_000;

/** Events a `Switchyard` emits. */
export interface SwitchyardEvents {
  /** A backend changed state (see `BackendEvent.kind`). */
  backend: [BackendEvent];
}

/** A listener of `backend` events. */
export type BackendListener = (event: BackendEvent) => void;

/**
 * A running load balancer. Emits `backend` events (`lb.on('backend', e => …)`).
 * The API and the configuration in force live here; what runs beside the data
 * plane (health checks, slow start, certificate watching, the admin server) is
 * in `services.ts`.
 */
export class Switchyard {
  // Composition, not `extends EventEmitter`: the public types then need no Node typings.
  #events = new EventEmitter<SwitchyardEvents>();
  #engine: Engine;
  /** Each pool's backend TLS as last sent, CA bytes included: a pool-only change reuses it instead of reading the file. */
  #backendTls = new Map<string, BackendTlsConfig | null>();
  #config: ResolvedConfig;
  #log: Logger;
  #keepAlive: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #handedOver = false;
  #history = new EventHistory();
  /** Backend events, repeating ones folded, on their way to the history, the log and listeners. */
  #backendEvents = new BackendEvents((e) => this.#publish(e));
  /** The configuration as last declared (started with, reloaded, or given to `update`), before
   * runtime changes: what a reload compares the new file with (see `mutate.keepRuntime`). */
  #declared: ResolvedConfig;
  /** Backend host names, SRV records and etcd prefixes, kept current; who changed each pool when (`membership.ts`). */
  #members: Membership;
  #services: Services;
  #policies: PolicyRunner;
  #configSource: (() => ConfigSourceStatus | undefined) | undefined;
  /** Hook functions by name; the engine is given their dispatcher with the first one (`hook`). */
  #hooks: HookRegistry;
  #hookHandler = false;
  #hookQueue: number = HOOK_LIMITS.in_flight;

  /** `config`: in force (names resolved); `declared`: as written (names unresolved). */
  private constructor(engine: Engine, config: ResolvedConfig, log: Logger, sent: EngineConfig, declared: ResolvedConfig, members: Membership, clock: Clock) {
    this.#engine = engine;
    this.#config = config;
    this.#declared = declared;
    this.#members = members;
    members.record(undefined, config, 'config');
    this.#log = log;
    this.#hooks = new HookRegistry(
      (id, reply) => this.#engine.hookReply(id, reply),
      (hook, problem) => log('hook.failed', { hook, problem }, 'warn'),
    );
    // The engine's sockets live in Rust, where Node cannot see them; this ref'd
    // timer keeps the process alive while the balancer runs, like a net.Server.
    this.#keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
    this.#remember(sent);
    // Before the services: their first events (backends drained in the config) reach the runner.
    this.#policies = new PolicyRunner(
      {
        log,
        config: () => this.#config,
        stats: () => this.stats(),
        setWeight: (pool, address, weight) => this.setWeight(pool, address, weight),
        setBackendState: (pool, address, state) => this.setBackendState(pool, address, state),
        flushAccess: () => this.#services.flushAccessLog(),
        tapAccess: (listener) => this.#services.tapAccess(listener),
      },
      clock,
    );
    this.#services = new Services({
      engine,
      log,
      config: () => this.#config,
      emit: (e) => this.#emit(e),
      pushPool: (name) => this.#pushPool(this.#config, name),
      pushAll: () => this.#pushAll(this.#config),
    });
    members.start({
      log,
      config: () => this.#config,
      declared: () => this.#declared,
      replacePool: (next, pool, by) => this.#applyPool(next, pool, by),
      emit: (e) => this.#emit(e),
    });
  }

  /** Validate `config` and start listening. Every listener is bound when this resolves. */
  static async start(config: SwitchyardConfig, options: StartOptions = {}): Promise<Switchyard> {
    const resolved = validateConfig(config, options.source ?? 'config');
    const lb = await Switchyard.#startResolved(resolved, options, options.source);
    lb.#configSource = options.configSource;
    return lb;
  }

  /** Where the configuration comes from when it is not a file (see `StartOptions.configSource`). */
  configSource(): ConfigSourceStatus | undefined {
    return this.#configSource?.();
  }

  /** Load a YAML, JSON, JS or TS configuration file and start it. */
  static async fromFile(path: string, options: Omit<StartOptions, 'source'> = {}): Promise<Switchyard> {
    const resolved = await loadConfigFile(path);
    return Switchyard.#startResolved(resolved, options, path, path);
  }

  static async #startResolved(declared: ResolvedConfig, options: Omit<StartOptions, 'source'>, source = 'config', configPath?: string): Promise<Switchyard> {
    const log = options.logger ?? silent;
    const members = new Membership();
    // Host names and etcd prefixes become addresses before anything binds; one that fails is a ConfigError.
    const config = await members.resolve(declared, source);
    let engine: Engine;
    let tables: EngineConfig;
    try {
      tables = engineConfig(config); // reads the certificate files
      engine = options.handoff ? Engine.startInheriting(tables, options.handoff.child) : Engine.start(tables);
    } catch (err) {
      throw fromNative(err, source);
    }
    const lb = new Switchyard(engine, config, log, tables, declared, members, options.clock ?? realClock);
    for (const [name, address] of Object.entries(lb.addresses())) {
      const l = config.listeners.find((x) => x.name === name);
      log('listener.started', { listener: name, address: address.address, pool: l?.pool });
    }
    log('started', { workers: config.workers, listeners: config.listeners.length, pools: config.pools.length });
    for (const l of config.listeners) {
      for (const c of l.tls?.certificates ?? []) {
        if (c.expired) log('tls.certificate_expired', { listener: l.name, cert: c.cert, not_after: c.not_after });
      }
    }
    try {
      if (options.hookQueue !== undefined) {
        const q = options.hookQueue;
        if (!Number.isInteger(q) || q < 1 || q > 65_536) throw new TypeError(`hookQueue: expected an integer 1..65536, got ${String(q)}`);
        lb.#hookQueue = q;
      }
      for (const [name, fn] of Object.entries(options.hooks ?? {})) lb.hook(name, fn);
      for (const p of options.policies ?? []) await lb.use(p);
      if (config.admin) {
        const adminFd = options.handoff?.adminFd ?? undefined;
        await lb.#services.startAdmin(lb, config.admin, {
          ...(configPath ? { configPath } : {}),
          ...(adminFd === undefined || adminFd === null ? {} : { fd: adminFd }),
          ...(options.upgrade ? { upgrade: options.upgrade } : {}),
        });
      }
    } catch (err) {
      await lb.close({ drainMs: 0 });
      throw err;
    }
    return lb;
  }

  /** The configuration in force (validated, defaults filled in). */
  get config(): ResolvedConfig {
    return this.#config;
  }

  /** True once `handOver` gave this balancer's sockets to a new process (which serves now). */
  get handedOver(): boolean {
    return this.#handedOver;
  }

  /** True from the moment `close()` is called: no new connections are accepted, the rest drain. */
  get draining(): boolean {
    return this.#closing !== undefined;
  }

  /** The bound address of listener `name` (the real port when the config said 0). */
  address(name: string): BoundAddress {
    const a = this.addresses()[name];
    if (!a) throw new NotFoundError('SWITCHYARD_ERR_NOT_FOUND', `no listener named "${name}"`);
    return a;
  }

  /** Bound addresses of every listener. */
  addresses(): Record<string, BoundAddress> {
    this.#assertOpen();
    const raw = this.#engine.addresses();
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, splitAddress(v)]));
  }

  /**
   * Validate `config` and apply it atomically: all of it or nothing. Established
   * connections are never dropped; new connections see the new tables. A backend's
   * state or weight set at runtime (`drain`, `setWeight`, the admin API) is kept
   * unless `config` changes that same field of that backend (as `reload`).
   */
  async update(config: SwitchyardConfig, options: { source?: string } = {}): Promise<void> {
    this.#assertOpen();
    const resolved = validateConfig(config, options.source ?? 'config');
    await this.#apply(resolved, options.source);
  }

  /**
   * Re-read a configuration file and apply it (an invalid file changes nothing). A backend's
   * state or weight set at runtime survives unless the file changes that same field of that
   * backend (HAProxy's server-state rule); each value changed or kept is emitted as an event
   * (`weight 1→5 (file)`, `state drain→ready (file)`, `state drain kept (runtime)`).
   */
  async reload(path: string): Promise<void> {
    this.#assertOpen();
    await this.#apply(await loadConfigFile(path), path, 'file');
  }

  /** Set a backend's operator state. `drain`: no new connections; the rest are closed after the
   * pool's `drain_timeout` unless it is set back to `ready` first. `maint`: no new connections. */
  async setBackendState(pool: string, address: string, state: BackendState): Promise<void> {
    this.#assertOpen();
    // The drain deadline follows the state in force (services.ts), whichever path set it.
    this.#applyPool(mutate.setState(this.#config, pool, address, state), pool);
    this.#emit({ pool, address: mutate.canonical(address), kind: state, reason: 'operator' });
  }

  /** Stop sending new connections to a backend; existing ones finish (see `setBackendState`). */
  drain(pool: string, address: string): Promise<void> {
    return this.setBackendState(pool, address, 'drain');
  }

  /** Return a drained or maintained backend to service. */
  ready(pool: string, address: string): Promise<void> {
    return this.setBackendState(pool, address, 'ready');
  }

  /** Add a backend to a pool (validated like a config file entry). */
  async addBackend(pool: string, backend: BackendConfig): Promise<void> {
    this.#assertOpen();
    // A name's addresses follow its DNS records, which only a configuration declares (and reloads).
    const address: unknown = (backend as { address?: unknown } | null)?.address;
    if (typeof address === 'string' && typeof parseAddress(address, 1) === 'string' && parseHostPort(address, 0)) {
      throw new ConfigError(`pools.${pool}.backends`, [{ path: 'address', message: `expected an IP address, got ${JSON.stringify(address)} (host names are resolved only for backends written in the configuration)` }]);
    }
    const next = mutate.addBackend(this.#config, pool, backend);
    this.#applyPool(next, pool);
    const added = next.pools.find((p) => p.name === pool)!.backends.at(-1)!;
    this.#emit({ pool, address: added.address, kind: 'added', reason: `weight ${added.weight}${added.backup ? ', backup' : ''}` });
  }

  /** Remove a backend; its established connections keep running. */
  async removeBackend(pool: string, address: string): Promise<void> {
    this.#assertOpen();
    this.#applyPool(mutate.removeBackend(this.#config, pool, address), pool);
    this.#emit({ pool, address, kind: 'removed', reason: 'operator' });
  }

  /** Change a backend's weight (0 = no new connections). */
  async setWeight(pool: string, address: string, weight: number): Promise<void> {
    this.#assertOpen();
    this.#applyPool(mutate.setWeight(this.#config, pool, address, weight), pool);
    this.#emit({ pool, address, kind: 'weight', reason: `weight ${weight}` });
  }

  /** Switch a pool's algorithm; established connections are untouched. */
  async setAlgorithm(pool: string, algorithm: Algorithm): Promise<void> {
    this.#assertOpen();
    this.#applyPool(mutate.setAlgorithm(this.#config, pool, algorithm), pool);
    this.#emit({ pool, address: '', kind: 'algorithm', reason: algorithm });
  }

  /** The active health checks: per checked backend, its status and last result. */
  health(): BackendCheckState[] {
    return this.#services.health();
  }

  /** The admin server's address, when `admin` is configured. */
  adminAddress(): BoundAddress | undefined {
    return this.#services.adminAddress();
  }

  /** Call `listener` on every backend state change. */
  on(event: 'backend', listener: BackendListener): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Call `listener` on the next backend state change only. */
  once(event: 'backend', listener: BackendListener): this {
    this.#events.once(event, listener);
    return this;
  }

  /** Stop calling `listener`. */
  off(event: 'backend', listener: BackendListener): this {
    this.#events.off(event, listener);
    return this;
  }

  /** Recent backend state changes, oldest first. */
  events(): BackendEvent[] {
    return this.#history.list();
  }

  /**
   * Attach a control loop (`ts/policy/`): it runs on the balancer's clock and acts through this
   * API; each change it makes is logged (`policy.decision`) with its reason, kept in
   * `policyDecisions()` and counted in `/metrics`. Weights it sets are runtime state, like
   * `setWeight`'s: a reload keeps them unless the file changes that backend's weight.
   */
  async use(policy: Policy): Promise<void> {
    this.#assertOpen();
    await this.#policies.use(policy);
  }

  /** Stop and detach the policy named `name` (what it set stays set). */
  removePolicy(name: string): void {
    this.#policies.remove(name);
  }

  /** The attached policies: state, details, decision counts. */
  policies(): PolicyStatus[] {
    return this.#policies.statuses();
  }

  /** Recent policy decisions (the last 500 at most), oldest first; `policy` filters, `limit` keeps the newest. */
  policyDecisions(filter: { policy?: string; limit?: number } = {}): PolicyDecision[] {
    return this.#policies.decisions(filter);
  }

  /** Decisions per policy and action since start (`switchyard_policy_decisions_total`). */
  policyDecisionCounts(): DecisionCount[] {
    return this.#policies.counts();
  }

  /**
   * Decision traces of sampled connections and requests (a listener's `trace_sample`, or
   * `setTraceSample`), oldest first: the rule, every backend of the pool with its verdict and
   * reason, the attempts, the winner. The data plane keeps the last 512; reading removes none.
   */
  traces(query: TraceQuery = {}): Trace[] {
    this.#assertOpen();
    return this.#engine.traces(query);
  }

  /**
   * Trace a share `rate` (0..1) of listener `listener`'s connections (HTTP: requests) from now
   * on, without a reload. Runtime state: a reload keeps it unless the file changes that
   * listener's `trace_sample`. Throws `NotFoundError` for an unknown listener, `ConfigError`
   * for a rate outside 0..1 or a udp listener.
   */
  setTraceSample(listener: string, rate: number): void {
    this.#assertOpen();
    try {
      this.#engine.setTraceSample(listener, rate);
    } catch (err) {
      throw fromNative(err, 'setTraceSample');
    }
    this.#log('trace.sample', { listener, rate });
  }

  #emit(e: Omit<BackendEvent, 'time'>): void {
    this.#backendEvents.push(e);
  }

  /** The one place a backend event is recorded, logged (once) and handed to listeners. */
  #publish(event: BackendEvent): void {
    this.#history.push(event);
    const { pool, address, reason, repeated } = event;
    this.#log(`backend.${event.kind}`, { pool, address, reason, ...(repeated ? { repeated } : {}) });
    this.#events.emit('backend', event);
    this.#policies.backendEvent(event);
  }

  /** Send the whole configuration (re-reading certificate files); the data plane rebuilds only what changed. */
  #pushAll(config: ResolvedConfig): void {
    const tables = engineConfig(config, this.#services.weights(config));
    this.#engine.update(tables);
    this.#remember(tables);
  }

  /** Keep what the data plane now holds that a pool-only change must not read again. */
  #remember(tables: EngineConfig): void {
    this.#backendTls = new Map(tables.pools.map((p) => [p.name, p.backend_tls]));
  }

  /** Send one pool of `config`: only its tables are rebuilt; no file is read. */
  #pushPool(config: ResolvedConfig, name: string): void {
    const p = config.pools.find((x) => x.name === name);
    if (!p) throw new NotFoundError('SWITCHYARD_ERR_NOT_FOUND', `no pool named "${name}"`);
    const table = enginePool(p, this.#services.weights(config), this.#backendTls.get(name));
    this.#engine.updatePool(table);
    this.#backendTls.set(name, table.backend_tls);
  }

  /** Apply a configuration that differs from the one in force in pool `pool` only. */
  #applyPool(resolved: ResolvedConfig, pool: string, by: MembershipCause = 'api'): void {
    try {
      this.#pushPool(resolved, pool);
    } catch (err) {
      throw fromNative(err);
    }
    this.#accept(resolved, by);
  }

  /** Apply a declared configuration, keeping runtime states and weights it does not change.
   * Its host names are resolved first (new ones queried; one that fails changes nothing). */
  async #apply(declared: ResolvedConfig, source = 'config', by: 'file' | 'config' = 'config'): Promise<void> {
    const previous = this.#members.expand(this.#declared);
    const next = await this.#members.resolve(declared, source);
    this.#assertOpen();
    const { config: resolved, changes } = mutate.keepRuntime(previous, this.#config, next);
    try {
      this.#pushAll(resolved);
    } catch (err) {
      throw fromNative(err, source);
    }
    this.#declared = declared;
    this.#accept(resolved, by === 'file' ? 'file' : 'config');
    this.#members.sync(declared);
    for (const c of changes) this.#emit(mutate.describeChange(c, by));
  }

  /** `resolved` is in force in the data plane: keep it and follow it. */
  #accept(resolved: ResolvedConfig, by: MembershipCause): void {
    const before = this.#config;
    this.#config = resolved;
    this.#members.record(before, resolved, by);
    this.#services.applied(before, resolved);
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

  /** Where each pool's backends come from (file, dns, etcd) and when, and by what, their set last changed. */
  membership(): Map<string, PoolMembership> {
    return this.#members.views();
  }

  /**
   * Register hook function `fn` under `name` (replacing one registered before): routes whose
   * `hook.name` is `name` ask it before choosing a backend, and use their `fallback` when it
   * does not answer within the budget, throws, or answers something invalid. Requests of
   * routes without a hook never reach JavaScript.
   */
  hook(name: string, fn: HookFn): void {
    this.#assertOpen();
    this.#hooks.set(name, fn);
    if (!this.#hookHandler) {
      this.#engine.setHookHandler(this.#hooks.dispatch, this.#hookQueue);
      this.#hookHandler = true;
    }
  }

  /** Unregister the hook function of `name` (its routes then use their fallback, counted `unregistered`); false if none. */
  removeHook(name: string): boolean {
    return this.#hooks.delete(name);
  }

  /** The names hook functions are registered under. */
  hookNames(): string[] {
    return this.#hooks.names();
  }

  /** Every counter of the data plane at this instant. */
  stats(): Stats {
    this.#assertOpen();
    return this.#engine.stats();
  }

  /**
   * Upgrade, old side: hand this balancer's listening sockets (the admin API's too) to the
   * new process at the other end of `parent`, wait until it accepts, stop accepting here,
   * then send it the established plain TCP connections (for up to `graceMs`). Until the new
   * process is ready nothing changes here, so a failure leaves this balancer serving as
   * before. Afterwards this balancer only drains: `close()` it.
   */
  async handOver(parent: HandoffParent, options: { readyTimeoutMs: number; graceMs: number }): Promise<HandOverReport> {
    this.#assertOpen();
    const admin = this.#services.adminServer();
    const fd = admin?.fd() ?? null;
    const version = await parent.offer(this.#engine, admin && fd !== null ? { fd, address: admin.address.address } : null, options.readyTimeoutMs);
    await parent.waitReady(options.readyTimeoutMs);
    // No connection attempt is refused: both processes accepted until here, and what waits
    // in the shared queues goes to the new one.
    await this.#engine.stopAccepting();
    admin?.stopListening();
    this.#handedOver = true;
    this.#log('upgrade.accepting_stopped', { version });
    const handed = await parent.handConnections(this.#engine, options.graceMs);
    return { version, ...handed };
  }

  /**
   * Upgrade, new side: adopt the established connections the old process at the other end
   * of `child` sends, until it is done (call once this balancer accepts and `child.ready()`).
   */
  async adopt(child: HandoffChild): Promise<Handed> {
    this.#assertOpen();
    return child.adopt(this.#engine);
  }

  /**
   * Stop accepting at once, let in-flight connections finish for up to
   * `drainMs`, then close what is left. Resolves when the ports are released
   * and the data plane has stopped. Safe to call twice.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= (async () => {
      const drainMs = options.drainMs ?? 10_000;
      this.#log('draining', { drain_ms: drainMs, ...(options.spread ? { spread: true } : {}) });
      this.#policies.stop();
      this.#members.stop();
      await this.#services.stop();
      try {
        await this.#engine.close(Math.max(0, Math.floor(drainMs)), options.spread ?? false);
      } finally {
        // The admin server outlives the drain, so `/readyz` can answer 503 (`draining`) meanwhile.
        await this.#services.closeAdmin();
        this.#services.flushAccessLog();
        clearInterval(this.#keepAlive);
        this.#keepAlive = undefined;
        this.#backendEvents.flush();
      }
      this.#log('stopped');
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#closing) throw new ClosedError('SWITCHYARD_ERR_CLOSED', 'the balancer is closed');
  }
}
