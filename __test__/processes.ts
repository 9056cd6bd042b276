/** Peers in their own processes: backends a test can kill for real, and a load generator. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const FIXTURES = join(import.meta.dirname, 'fixtures');

export interface ProcessBackend {
  port: number;
  address: string;
  child: ChildProcess;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

/** Start `fixtures/tagged-server.mjs` answering `id` (on `port`, default a free one). */
export function spawnBackend(id: string, port = 0): Promise<ProcessBackend> {
  const child = spawn(process.execPath, [join(FIXTURES, 'tagged-server.mjs'), id, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`backend ${id} exited with ${code} before listening`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) {
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
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadSummary) : reject(new Error(`load client exited with ${code}`))));
  });
}
