/**
 * Upgrade, new side: a process started by `replace.ts` finds the hand-over
 * socket in its environment, receives the old process's listening sockets,
 * starts on them, says ready, and adopts the established connections.
 */
import { HandoffChild, sdNotify, type Handed } from '../binding/handoff.js';

/** The environment variable that names the inherited hand-over descriptor. */
export const HANDOFF_ENV = 'SWITCHYARD_HANDOFF_FD';

/** What the new process received. */
export interface Inheritance {
  child: HandoffChild;
  /** The admin API's listening socket, if the old process had one. */
  adminFd: number | null;
}

/**
 * If started by an upgrade: take the hand-over socket (the variable is removed, so a
 * later upgrade's process does not see it) and receive the old process's sockets.
 * Resolves null otherwise.
 */
export async function inherit(version: string, timeoutMs = 30_000): Promise<Inheritance | null> {
  const raw = process.env[HANDOFF_ENV];
  if (raw === undefined) return null;
  delete process.env[HANDOFF_ENV];
  const fd = Number(raw);
  if (!Number.isInteger(fd) || fd < 0) throw new Error(`${HANDOFF_ENV}: expected a descriptor number, got "${raw}"`);
  const child = HandoffChild.open(fd);
  const adminFd = await child.receive(version, timeoutMs);
  return { child, adminFd };
}

/**
 * The new process accepts: tell the old one (it stops accepting and sends its
 * connections) and systemd (this process is the service's main process now).
 */
export function takeOver(i: Inheritance): void {
  i.child.ready();
  sdNotify(`MAINPID=${process.pid}\nREADY=1`);
}

export type { Handed };
