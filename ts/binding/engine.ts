/**
 * The typed face of the addon: every call to the data plane goes through here,
 * with the shapes generated from the Rust definitions
 * (`types.generated.ts`). JSON is the transport; these types are the contract,
 * so a field renamed in Rust fails `tsc` here instead of drifting. Errors come
 * out as `NativeCallError` (the data plane's `{ code, message, issues }`).
 */
import { native, type NativeEngine, type NativeHandoffChild } from './addon.js';
import type { AccessBatch, EngineConfig, EventBatch, HealthUpdate, HookReply, PlanReport, PlanRequest, PoolConfig, StatsReport, Trace, TraceFilter } from './types.generated.js';
import { call } from './call.js';

/** A running data plane. */
export class Engine {
  readonly #native: NativeEngine;

  private constructor(engine: NativeEngine) {
    this.#native = engine;
  }

  /** Start the data plane: every listener is bound when this returns. */
  static start(config: EngineConfig): Engine {
    return new Engine(call(() => native().NativeEngine.start(JSON.stringify(config))));
  }

  /** Start in the new process of an upgrade: listeners take the sockets `handoff` received first. */
  static startInheriting(config: EngineConfig, handoff: { readonly native: NativeHandoffChild }): Engine {
    return new Engine(call(() => native().NativeEngine.startInheriting(JSON.stringify(config), handoff.native)));
  }

  /** The addon's engine, for the hand-over calls (`handoff.ts`). */
  get native(): NativeEngine {
    return this.#native;
  }

  /** Stop accepting, keeping the listening sockets open (an upgrade: the new process accepts now). */
  async stopAccepting(): Promise<void> {
    await this.#native.stopAccepting();
  }

  /** Swap in a whole configuration, all or nothing (unchanged pools and TLS configs are kept). */
  update(config: EngineConfig): void {
    call(() => this.#native.update(JSON.stringify(config)));
  }

  /** Replace one existing pool; nothing else is rebuilt. */
  updatePool(pool: PoolConfig): void {
    call(() => this.#native.updatePool(JSON.stringify(pool)));
  }

  /** Bound address (`ip:port`) of each listener. */
  addresses(): Record<string, string> {
    return JSON.parse(this.#native.addresses()) as Record<string, string>;
  }

  /** Every counter at this instant. */
  stats(): StatsReport {
    return JSON.parse(call(() => this.#native.stats())) as StatsReport;
  }

  /** Apply active-check verdicts; returns how many changed a backend's state. */
  setHealth(batch: HealthUpdate[]): number {
    return call(() => this.#native.setHealth(JSON.stringify(batch)));
  }

  /** Close every established connection to one backend; false if there is none. */
  closeBackendConnections(pool: string, address: string): boolean {
    return this.#native.closeBackendConnections(pool, address);
  }

  /**
   * Register the function opt-in hooks are asked through: called with one JSON `HookCall` per
   * call, it answers with `hookReply`. At most `maxInFlight` calls (default 1024) wait at once;
   * beyond, a call gets its hook's fallback at once.
   */
  setHookHandler(handler: (callJson: string) => void, maxInFlight?: number): void {
    call(() => this.#native.setHookHandler(handler, maxInFlight));
  }

  /** No hook handler: every hook call gets its fallback. */
  clearHookHandler(): void {
    this.#native.clearHookHandler();
  }

  /** Answer hook call `id`; false when it no longer waits (its budget passed). */
  hookReply(id: number, reply: HookReply): boolean {
    return this.#native.hookReply(id, JSON.stringify(reply));
  }

  /** Take the queued data-plane events. */
  events(): EventBatch {
    return JSON.parse(call(() => this.#native.events())) as EventBatch;
  }

  /** Take the queued access-log records (listeners with `access_log: true`). */
  accessLog(): AccessBatch {
    return JSON.parse(call(() => this.#native.accessLog())) as AccessBatch;
  }

  /** The kept decision traces that pass `filter`, oldest first (reading does not remove them). */
  traces(filter: TraceFilter = {}): Trace[] {
    return JSON.parse(call(() => this.#native.traces(JSON.stringify(filter)))) as Trace[];
  }

  /** Trace a share `rate` (0..1) of a listener's connections or requests from now on. */
  setTraceSample(listener: string, rate: number): void {
    call(() => this.#native.setTraceSample(listener, rate));
  }

  /** Stop accepting, drain for up to `drainMs`, close the rest; with `spread`, plain TCP connections end at random instants over the window. */
  async close(drainMs: number, spread = false): Promise<void> {
    await this.#native.close(drainMs, spread);
  }
}

/** "What moves if I change this?", computed by the data plane's own selectors. */
export function plan(request: PlanRequest): PlanReport {
  return JSON.parse(call(() => native().plan(JSON.stringify(request)))) as PlanReport;
}
