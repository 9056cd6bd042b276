/**
 * A `switchyard start` process as an operator runs it (optionally inside a network namespace:
 * `ip netns exec NS node dist/cli.js ...`), with its JSON log lines collected. Every process is
 * tracked by `processes.ts`, so `stopAll()` in `afterEach`/`afterAll` stops it whatever the test did.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { track } from './processes.js';
import { waitFor } from './helpers.js';

/** dist/cli.js: what `npm run build:ts` produced (the specs that run the command need it). */
export const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');

/** A running `switchyard` command. */
export interface CliProcess {
  child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  out(): string;
  /** The JSON log lines of `event` so far. */
  events(event: string): Record<string, unknown>[];
  /** The port listener `name` bound (from its `listener.started` line; waits for it). */
  port(name: string): Promise<number>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  exited: Promise<void>;
}

/** Start `switchyard ARGS...`; with `netns`, inside that network namespace. */
export function startCli(args: string[], opts: { netns?: string; env?: Record<string, string> } = {}): CliProcess {
  const argv = [process.execPath, CLI, ...args];
  const [cmd, ...rest] = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
  const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = track(child);
  const events = (event: string) =>
    out
      .split('\n')
      .filter((l) => l.includes(`"event":"${event}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    child,
    out: () => out,
    events,
    async port(name) {
      const line = await waitFor(() => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`switchyard exited (${child.exitCode ?? child.signalCode}) before listener ${name} started:\n${out}`);
        return events('listener.started').find((e) => e.listener === name);
      }, `listener ${name} to start`);
      return Number(String(line.address).split(':').pop());
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    exited,
  };
}
