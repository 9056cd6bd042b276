// Running out of descriptors is this process's problem, never a backend's. By default the
// engine-wide connection limit derived from `ulimit -n` keeps it from happening (clients wait in
// the backlog); above an explicit higher limit, failed accepts and failed backend connects are
// counted as local errors, no backend is charged a connect error or ejected, and service resumes
// when descriptors free up.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import readline from 'node:readline';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Stats } from '../ts/index.js';
import { connect, peer, readLine, waitFor } from './helpers.js';

const CHILD = join(import.meta.dirname, 'fixtures', 'lb-child.mjs');

interface Child {
  proc: ChildProcess;
  port: number;
  stats(): Promise<{ stats: Stats; events: { kind: string; address: string; reason: string }[] }>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

/** Start a balancer child under `ulimit -n limit`. */
async function startChild(config: unknown, limit: number): Promise<Child> {
  const proc = spawn('bash', ['-c', `ulimit -n ${limit} && exec "$0" "$1" "$2"`, process.execPath, CHILD, JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(proc);
  const lines = readline.createInterface({ input: proc.stdout! });
  const waiting: ((line: string) => void)[] = [];
  const first = new Promise<string>((resolve, reject) => {
    waiting.push(resolve);
    proc.once('exit', (code) => reject(new Error(`balancer child exited with ${code}`)));
  });
  lines.on('line', (line) => waiting.shift()?.(line));
  const { port } = JSON.parse(await first) as { port: number };
  return {
    proc,
    port,
    stats: () =>
      new Promise((resolve) => {
        waiting.push((line) => resolve(JSON.parse(line)));
        proc.stdin!.write('stats\n');
      }),
  };
}

describe('descriptor exhaustion', () => {
  it('is prevented by the connection limit derived from ulimit -n: clients beyond it wait and are all served', async () => {
    let open = 0;
    let most = 0;
    const backend = await peer((s) => {
      most = Math.max(most, ++open);
      s.on('close', () => open--);
      s.write('a\n');
      s.on('end', () => s.end());
    });
    const config = {
      workers: 1,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
      pools: { main: { connect_timeout: '2s', backends: [{ address: backend.address }] } },
    };
    const child = await startChild(config, 200);
    const clients: net.Socket[] = [];
    try {
      // (200 − 64 − 200/16) / 2.5 = 49 connections (12 pipes); 150 clients connect (the kernel's backlog takes the rest).
      const { stats: limits } = await child.stats();
      expect([limits.max_connections, limits.max_pipes]).toEqual([49, 12]);
      let served = 0;
      for (let i = 0; i < 150; i++) {
        const s = await connect(child.port);
        s.on('error', () => {});
        clients.push(s);
        // Each client leaves once served, making room for one that waits.
        void readLine(s).then((line) => {
          if (line === 'a') served++;
          s.destroy();
        });
      }
      await waitFor(() => served === 150 || null, 'every client to be served');
      expect(most).toBeLessThanOrEqual(49);
      const { stats } = await child.stats();
      expect([stats.listeners[0]!.accept_errors, stats.listeners[0]!.local_errors]).toEqual([0, 0]);
    } finally {
      for (const s of clients) s.destroy();
      child.proc.stdin!.end();
      await backend.close();
    }
  });

  it('above an explicit max_connections is counted as local errors, charges no backend, and service resumes', async () => {
    const backend = await peer((s) => {
      s.write('a\n');
      s.on('end', () => s.end());
    });
    // A limit above what the descriptors allow: the descriptors run out first.
    const config = {
      workers: 1,
      max_connections: 1000,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
      pools: { main: { connect_timeout: '2s', backends: [{ address: backend.address }] } },
    };
    const child = await startChild(config, 200);
    const clients: net.Socket[] = [];
    try {
      // Each served client holds two descriptors in the child: 200 cannot hold 150.
      for (let i = 0; i < 150; i++) {
        const s = await connect(child.port);
        s.on('error', () => {});
        clients.push(s);
      }
      const exhausted = await waitFor(async () => {
        const { stats } = await child.stats();
        const l = stats.listeners[0]!;
        return l.accept_errors + l.local_errors > 0 ? stats : null;
      }, 'accept or connect to fail for want of descriptors');
      const b = exhausted.pools[0]!.backends[0]!;
      expect(b.connect_errors).toBe(0);
      expect(b.ejected).toBe(false);
      expect(b.available).toBe(true);
      // Free the descriptors: new clients are served again.
      for (const s of clients.splice(0)) s.destroy();
      await waitFor(async () => (await child.stats()).stats.connections_active === 0, 'the child to close its connections');
      // Recovery is clean: the next 60 clients, right away, are all served.
      for (let i = 0; i < 60; i++) {
        const s = await connect(child.port);
        expect(await readLine(s)).toBe('a');
        s.destroy();
      }
      const { stats, events } = await child.stats();
      expect(stats.pools[0]!.backends[0]!.connect_errors).toBe(0);
      expect(events.filter((e) => e.kind === 'ejected' || e.kind === 'ejection_skipped')).toEqual([]);
      // Failed accepts are reported (at most one event a second, with a count), not backed off silently.
      if (stats.listeners[0]!.accept_errors > 0) {
        const reported = await waitFor(async () => (await child.stats()).events.find((e) => e.kind === 'accept_error'), 'an accept_error event');
        expect(reported.address).toBe('front');
        expect(reported.reason).toMatch(/accept failed: .*(Too many open files|os error 24)/);
      }
    } finally {
      for (const s of clients) s.destroy();
      child.proc.stdin!.end();
      await backend.close();
    }
  });
});
