/**
 * The typed face of the addon's hand-over handles (an upgrade; see
 * `crates/switchyard-core/src/handoff/`): the old process's `HandoffParent`, the
 * new process's `HandoffChild`, and systemd's readiness notification. Errors
 * come out as `NativeCallError` like every other addon call.
 */
import { native, type NativeEngine, type NativeModule } from './addon.js';
import { call, callAsync } from './call.js';

type NativeParent = InstanceType<NativeModule['NativeHandoffParent']>;
type NativeChild = InstanceType<NativeModule['NativeHandoffChild']>;

/** An engine as the hand-over sees it (`Engine` in `engine.ts`; not imported, so neither module imports the other). */
interface Engine {
  readonly native: NativeEngine;
}

/** What went over to the new process. */
export interface Handed {
  /** Established plain TCP connections. */
  connections: number;
  /** Bytes they had in flight (read, not yet delivered), delivered by the new process. */
  bytes: number;
}

/** The old process's end of an upgrade's socket pair. */
export class HandoffParent {
  readonly #native: NativeParent;

  constructor() {
    this.#native = call(() => new (native().NativeHandoffParent)());
  }

  /** The descriptor to give the new process (a `stdio` slot of `spawn`), until `spawned()`. */
  get childFd(): number | null {
    return this.#native.childFd() ?? null;
  }

  /** The new process has its copy: close ours (its exit then fails the waits at once). */
  spawned(): void {
    this.#native.spawned();
  }

  /** Wait for the new process's hello; send the engine's listening sockets and the admin API's. Resolves with its version. */
  offer(engine: Engine, admin: { fd: number; address: string } | null, timeoutMs: number): Promise<string> {
    return callAsync(() => this.#native.offer(engine.native, admin?.fd ?? null, admin?.address ?? null, timeoutMs));
  }

  /** Wait until the new process accepts. */
  waitReady(timeoutMs: number): Promise<void> {
    return callAsync(() => this.#native.waitReady(timeoutMs));
  }

  /** Park the engine's plain TCP connections and send them over, for up to `graceMs`. */
  async handConnections(engine: Engine, graceMs: number): Promise<Handed> {
    return JSON.parse(await callAsync(() => this.#native.handConnections(engine.native, graceMs))) as Handed;
  }
}

/** The new process's end of an upgrade's socket pair. */
export class HandoffChild {
  readonly native: NativeChild;

  private constructor(n: NativeChild) {
    this.native = n;
  }

  /** Take inherited descriptor `fd` (throws unless it is a hand-over socket). */
  static open(fd: number): HandoffChild {
    return new HandoffChild(call(() => native().NativeHandoffChild.open(fd)));
  }

  /** Say hello; receive the old process's sockets. Resolves with the admin API's socket descriptor (ours now), or null. */
  async receive(version: string, timeoutMs: number): Promise<number | null> {
    return (await callAsync(() => this.native.receive(version, timeoutMs))) ?? null;
  }

  /** We accept now: the old process may stop. */
  ready(): void {
    call(() => this.native.ready());
  }

  /** Adopt the connections the old process sends, until it is done. */
  async adopt(engine: Engine): Promise<Handed> {
    return JSON.parse(await callAsync(() => this.native.adopt(engine.native))) as Handed;
  }
}

/** Tell systemd about a state change (`READY=1`, `MAINPID=…`); false when not run under `Type=notify`. */
export function sdNotify(state: string): boolean {
  return call(() => native().sdNotify(state));
}
