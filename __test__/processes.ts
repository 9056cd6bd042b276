/** Peers in their own processes: backends a test can kill for real, and a load generator. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const FIXTURES = join(import.meta.dirname, 'fixtures');
/** How long a backend may take to print its port. */
const START_MS = 10_000;

/** Every child started here and not yet exited, so `stopAll` can stop them whatever the test did. */
const live = new Map<ChildProcess, Promise<void>>();

/** Record `child` so `stopAll` stops it; resolves when it exits. */
export function track(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  live.set(child, exited);
  void exited.then(() => live.delete(child));
  return exited;
}

/** Process groups started here (a child spawned `detached`, leading its own group), by leader. */
const groups = new Set<ChildProcess>();

/** Record `child`, spawned `detached`, so `stopAll` stops its whole process group (what it started too); resolves when it exits. */
export function trackGroup(child: ChildProcess): Promise<void> {
  groups.add(child);
  return track(child);
}

/** Is any process of group `pgid` still running? */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL every child still running (and every process of a tracked group) and wait until each has exited (call in `afterEach`). */
export async function stopAll(): Promise<void> {
  const pgids = [...groups].map((c) => c.pid).filter((p): p is number => p !== undefined);
  groups.clear();
  for (const pgid of pgids) {
    if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
  }
  await Promise.all(
    [...live].map(([child, exited]) => {
      child.kill('SIGKILL');
      return exited;
    }),
  );
  // Grandchildren are not ours to wait for: poll until the kernel has reaped the groups.
  const deadline = Date.now() + 10_000;
  while (pgids.some(groupAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

export interface ProcessBackend {
  port: number;
  address: string;
  child: ChildProcess;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

/** Start `fixtures/tagged-server.mjs` answering `id` (on `port`, default a free one); `fixture`:
 * another server that takes the same arguments and prints `listening PORT` (`http-echo-server.mjs`). */
export function spawnBackend(id: string, port = 0, fixture = 'tagged-server.mjs'): Promise<ProcessBackend> {
  const child = spawn(process.execPath, [join(FIXTURES, fixture), id, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = track(child);
  return new Promise((resolve, reject) => {
    let out = '';
    // A backend that never reports its port is killed, not left behind.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`backend ${id} did not listen within ${START_MS} ms`));
    }, START_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`backend ${id} exited with ${code} before listening`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        const p = Number(m[1]);
        resolve({
          port: p,
          address: `127.0.0.1:${p}`,
          child,
          kill: async () => {
            child.kill('SIGKILL');
            await exited;
          },
        });
      }
    });
  });
}

/** What `fixtures/load-client.mjs` reports. */
export interface LoadSummary {
  served: number;
  failed: number;
  errors: Record<string, number>;
  ids: Record<string, number>;
  /** Completion times (epoch ms) of served connections. */
  times: number[];
}

/** Run the load generator against `port` in another process. */
export function runLoad(port: number, concurrency: number, ms: number): Promise<LoadSummary> {
  const child = spawn(process.execPath, [join(FIXTURES, 'load-client.mjs'), String(port), String(concurrency), String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
  track(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadSummary) : reject(new Error(`load client exited with ${code}`))));
  });
}
