// A `switchyard start` process driven as an operator would: its JSON log lines, the CLI run
// to completion, a listener's port from its log, and wrk running beside it until stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './helpers.js';
import { track, trackGroup } from './processes.js';

export const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');

export interface Line {
  event: string;
  [field: string]: unknown;
}

/** A `switchyard start` process with its JSON log lines. */
export interface Balancer {
  child: ChildProcess;
  lines(): Line[];
  /** Everything it printed so far. */
  output(): string;
  /** Wait for the first `event` line that `match` accepts. */
  logged(event: string, match?: (l: Line) => boolean): Promise<Line>;
  exited(): boolean;
}

/**
 * Start `switchyard start ARGS`. With `group`, in a process group of its own, which `stopAll`
 * kills whole: the processes it starts itself (an upgrade's new process) go with it.
 */
export function startBalancer(args: string[], env: Record<string, string> = {}, group = false): Balancer {
  const child = spawn(process.execPath, [CLI, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, detached: group });
  let exited = false;
  void (group ? trackGroup(child) : track(child)).then(() => (exited = true));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  return {
    child,
    lines,
    output: () => out,
    exited: () => exited,
    logged: (event, match = () => true) =>
      waitFor(() => {
        if (exited) throw new Error(`the balancer exited; its output:\n${out}`);
        return lines().find((l) => l.event === event && match(l));
      }, `a ${event} log line`),
  };
}

/** Run the CLI to completion (tracked, so a hung run is killed after the test). */
export function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

/** The port a listener logged at start. */
export async function listenerPort(b: Balancer, name: string): Promise<number> {
  const l = await b.logged('listener.started', (x) => x.listener === name);
  return Number(String(l.address).split(':').pop());
}


/** Write `config` to `path` as JSON. */
export const json = (path: string, config: object) => writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);

/** wrk's summary: requests done, socket errors, non-2xx/3xx answers. */
export interface WrkResult {
  requests: number;
  errors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
  text: string;
}

export function parseWrk(text: string): WrkResult {
  const requests = /(\d+) requests in /.exec(text);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (!requests) throw new Error(`no wrk summary in:\n${text}`);
  return {
    requests: Number(requests[1]),
    // wrk prints these lines only when a count is not zero.
    errors: errors ? { connect: +errors[1]!, read: +errors[2]!, write: +errors[3]!, timeout: +errors[4]! } : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    text,
  };
}

/** A wrk run that lasts until `stop()` (SIGINT: wrk then prints its summary). */
export function runWrk(url: string): { stop(): Promise<WrkResult> } {
  const child = spawn('wrk', ['-t1', '-c16', '-d60s', '--latency', '--timeout', '5s', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = track(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      return parseWrk(out);
    },
  };
}
