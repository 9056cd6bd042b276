/**
 * Upgrade, old side: start the new process with one end of a hand-over socket
 * pair, hand it this balancer's listening sockets (the admin API's too), wait
 * until it accepts, stop accepting here, and send it the established plain TCP
 * connections. A new process that cannot be started, exits, or is not ready in
 * time changes nothing: this balancer keeps serving (and the new process, if
 * still running, is stopped).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { HandoffParent } from '../binding/handoff.js';
import type { Logger } from '../log.js';
import type { Switchyard } from '../switchyard.js';
import { HANDOFF_ENV } from './inherit.js';

/** How the new process is started and how long each step may take. */
export interface ReplaceOptions {
  /** The command (`[file, ...args]`); default: this process again (node, its flags, the script, its arguments). */
  command?: string[];
  /** From start to accepting. Default 30000 ms. */
  readyTimeoutMs?: number;
  /** How long established connections are waited for to come over. Default 5000 ms. */
  graceMs?: number;
  log: Logger;
}

/** What an upgrade did. */
export interface ReplaceReport {
  /** The new process. */
  pid: number;
  /** The version it announced. */
  version: string;
  /** Plain TCP connections handed over, and their bytes in flight. */
  connections: number;
  bytes: number;
  /** From start to the last connection handed over. */
  ms: number;
}

/** Why an upgrade failed (this balancer keeps serving). */
export class UpgradeFailed extends Error {
  readonly code = 'upgrade_failed';
}

/** This process's own command line: what a new process of the same install runs. */
export function ownCommand(): string[] {
  return [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
}

/** The command with another executable (`--binary PATH`): the path, then this process's arguments. */
export function commandWith(binary: string): string[] {
  return [binary, ...process.argv.slice(2)];
}

/** Replace this process's balancer `lb` by a new process (see the module comment). */
export async function replaceProcess(lb: Switchyard, opts: ReplaceOptions): Promise<ReplaceReport> {
  const started = Date.now();
  const [file, ...args] = opts.command ?? ownCommand();
  if (!file) throw new UpgradeFailed('no command to start');
  const parent = new HandoffParent();
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      stdio: ['ignore', 'inherit', 'inherit', parent.childFd ?? 'ignore'],
      env: { ...process.env, [HANDOFF_ENV]: '3' },
    });
  } catch (err) {
    throw new UpgradeFailed(`cannot start ${file}: ${(err as Error).message}`);
  } finally {
    // The child has its copy (or none): ours closes, so its exit reads as end of file.
    parent.spawned();
  }
  const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new UpgradeFailed(`cannot start ${file}: ${err.message}`))));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new UpgradeFailed(`the new process (${file}) exited ${signal ? `on ${signal}` : `with status ${code}`} before it took over`))),
  );
  // Both only ever reject; unobserved once the hand-over is done.
  spawnError.catch(() => {});
  exited.catch(() => {});
  // `new_pid`: a log line's `pid` is the process that writes it.
  opts.log('upgrade.started', { new_pid: child.pid ?? null, command: [file, ...args].join(' ') });
  try {
    if (child.pid === undefined) await spawnError;
    const handed = await Promise.race([lb.handOver(parent, { readyTimeoutMs: opts.readyTimeoutMs ?? 30_000, graceMs: opts.graceMs ?? 5_000 }), spawnError]);
    const report = { pid: child.pid!, version: handed.version, connections: handed.connections, bytes: handed.bytes, ms: Date.now() - started };
    // The new process outlives this one.
    child.unref();
    opts.log('upgrade.completed', { new_pid: report.pid, version: report.version, connections: report.connections, bytes: report.bytes, ms: report.ms });
    return report;
  } catch (err) {
    stop(child);
    // An exit explains a broken hand-over better than the socket's end of file does.
    const why = await Promise.race([exited.catch((e: Error) => e), new Promise<null>((r) => setTimeout(() => r(null), 200))]);
    const message = (why ?? (err as Error)).message;
    opts.log('upgrade.failed', { new_pid: child.pid ?? null, error: message }, 'error');
    throw new UpgradeFailed(message);
  }
}

/** Stop a new process that did not take over (it holds no connection of ours). */
function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill('SIGKILL');
}
