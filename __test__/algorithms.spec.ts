// Balancing algorithms through real connections: load-aware choices, backups,
// runtime switches, and hash determinism across processes.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Algorithm, SwitchyardConfig } from '../ts/index.js';
import { connect, peer, readLine, refusedPort, startLb, tagged, waitFor, type Peer } from './helpers.js';
import type net from 'node:net';

const run = promisify(execFile);

function poolConfig(backends: { address: string; backup?: boolean }[], algorithm: Algorithm = 'round_robin', passive = 3): SwitchyardConfig {
  return {
    workers: 2,
    listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
    pools: { main: { algorithm, connect_timeout: '1s', passive: { consecutive_failures: passive }, backends } },
  };
}

/** Open `n` connections and return them with the id of the backend each reached. */
async function openTagged(port: number, n: number): Promise<{ sockets: net.Socket[]; ids: string[] }> {
  const sockets: net.Socket[] = [];
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = await connect(port);
    sockets.push(s);
    ids.push(await readLine(s)); // sequential: each choice sees the previous connection counted
  }
  return { sockets, ids };
}

const count = (ids: string[], id: string) => ids.filter((x) => x === id).length;

describe('load-aware algorithms', () => {
  let a: Peer, b: Peer, c: Peer;
  beforeAll(async () => {
    [a, b, c] = await Promise.all(['a', 'b', 'c'].map(tagged)) as [Peer, Peer, Peer];
  });
  afterAll(() => Promise.all([a, b, c].map((p) => p.close())));

  it.each(['least_connections', 'power_of_two'] as const)('%s prefers idle backends under held-open connections', async (algorithm) => {
    // 30 connections held on A alone; then B and C join and the algorithm switches.
    const { lb, port } = await startLb(poolConfig([{ address: a.address }]));
    try {
      const held = await openTagged(port, 30);
      expect(count(held.ids, 'a')).toBe(30);
      await lb.update(poolConfig([a, b, c].map((p) => ({ address: p.address })), algorithm));
      // A's count survived the swap; the data plane still sees 30 there.
      expect(lb.stats().pools[0]!.backends[0]!.active).toBe(30);
      const fresh = await openTagged(port, 20);
      if (algorithm === 'least_connections') {
        expect(count(fresh.ids, 'a')).toBe(0);
        expect(Math.abs(count(fresh.ids, 'b') - count(fresh.ids, 'c'))).toBeLessThanOrEqual(1);
      } else {
        // A wins only when both random draws land on it (1 in 9).
        expect(count(fresh.ids, 'a')).toBeLessThanOrEqual(8);
      }
      [...held.sockets, ...fresh.sockets].forEach((s) => s.destroy());
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('backups serve only while every primary is down, and traffic returns to a primary', async () => {
    const primaryPort = await refusedPort();
    const backup = await tagged('backup');
    // Passive ejection off: here the primary's return is seen on the next connection.
    const { lb, port } = await startLb(poolConfig([{ address: `127.0.0.1:${primaryPort}` }, { address: backup.address, backup: true }], 'round_robin', 0));
    let primary: Peer | undefined;
    try {
      const first = await openTagged(port, 3);
      expect(first.ids).toEqual(['backup', 'backup', 'backup']);
      first.sockets.forEach((s) => s.destroy());
      // The primary comes back on its port.
      primary = await tagged('primary', primaryPort);
      const back = await openTagged(port, 3);
      expect(back.ids).toEqual(['primary', 'primary', 'primary']);
      back.sockets.forEach((s) => s.destroy());
    } finally {
      await lb.close({ drainMs: 0 });
      await backup.close();
      await primary?.close();
    }
  });

  it('switching algorithm at runtime keeps established connections alive', async () => {
    const echo = await peer((s) => s.pipe(s));
    const { lb, port } = await startLb(poolConfig([{ address: echo.address }]));
    try {
      const sockets = await Promise.all(Array.from({ length: 10 }, () => connect(port)));
      const all: Algorithm[] = ['weighted_round_robin', 'least_connections', 'random', 'power_of_two', 'ip_hash', 'consistent_hash', 'maglev', 'round_robin'];
      for (const algorithm of all) {
        await lb.update(poolConfig([{ address: echo.address }], algorithm));
        expect(lb.stats().pools[0]!.algorithm).toBe(algorithm);
        for (const s of sockets) {
          const reply = new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
          s.write(algorithm);
          expect(await reply).toBe(algorithm);
        }
      }
      sockets.forEach((s) => s.destroy());
      await waitFor(() => lb.stats().connections_active === 0, 'connections to close');
    } finally {
      await lb.close({ drainMs: 0 });
      await echo.close();
    }
  });
});

describe('hash determinism', () => {
  it('two separate processes map 10k keys identically', async () => {
    const script = `
      import { planChange, validateConfig } from ${JSON.stringify(join(import.meta.dirname, '..', 'dist', 'index.js'))};
      const config = validateConfig({
        listeners: { l: { address: '127.0.0.1:0', pool: 'p' } },
        pools: { p: { algorithm: process.argv[1], backends: [1, 2, 3, 4, 5].map((i) => ({ address: '10.1.0.' + i + ':443' })) } },
      }, 'det');
      const r = planChange(config, 'p', { add: ['10.1.0.9:443'] }, { samples: 10000, assignments: true });
      process.stdout.write(JSON.stringify(r.assignments));
    `;
    for (const algorithm of ['consistent_hash', 'maglev', 'ip_hash']) {
      const [one, two] = await Promise.all(
        [1, 2].map(() => run(process.execPath, ['--input-type=module', '-e', script, algorithm], { maxBuffer: 64 << 20 })),
      );
      const parsed = JSON.parse(one!.stdout) as unknown[];
      expect(parsed).toHaveLength(10_000);
      expect(two!.stdout).toBe(one!.stdout);
    }
  });

  it('plan reports about a quarter moving for the ring and most for ip_hash', async () => {
    const { lb } = await startLb(poolConfig(['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'].map((address) => ({ address })), 'consistent_hash'));
    try {
      const ring = lb.plan('main', { add: ['10.0.0.4:80'] });
      expect(ring.moved).toBeGreaterThan(0.18);
      expect(ring.moved).toBeLessThan(0.28);
      await lb.update(poolConfig(lb.config.pools[0]!.backends.map((b) => ({ address: b.address })), 'ip_hash'));
      const modulo = lb.plan('main', { add: ['10.0.0.4:80'] });
      expect(modulo.algorithm_before).toBe('ip_hash');
      expect(modulo.moved).toBeGreaterThan(0.5);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});
