// Weights as an nginx/HAProxy operator expects them: the default round robin and least
// connections follow weights; survivors of a failure split its share by weight, and the
// shares reported in stats are what traffic gets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Switchyard, SwitchyardConfig } from '../ts/index.js';
import { connect, readLine, refusedPort, startLb, tagged, waitFor, type Peer } from './helpers.js';

type Algorithm = 'round_robin' | 'least_connections';
interface B {
  address: string;
  weight?: number;
  state?: 'ready' | 'drain' | 'maint';
}

function config(algorithm: Algorithm, backends: B[], extra: Record<string, unknown> = {}): SwitchyardConfig {
  return {
    workers: 2,
    listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
    pools: { main: { algorithm, connect_timeout: '1s', backends, ...extra } },
  } as SwitchyardConfig;
}

/** `n` requests one after another, each closed (and seen closed by the balancer) before the next. */
async function sequential(lb: Switchyard, port: number, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const s = await connect(port);
    const id = await readLine(s);
    counts[id] = (counts[id] ?? 0) + 1;
    s.destroy();
    await waitFor(() => lb.stats().connections_active === 0, 'the connection to close');
  }
  return counts;
}

describe('weights', () => {
  let peers: Peer[];
  beforeAll(async () => {
    peers = await Promise.all(['a', 'b', 'c'].map((id) => tagged(id)));
  });
  afterAll(() => Promise.all(peers.map((p) => p.close())));

  for (const algorithm of ['round_robin', 'least_connections'] as const) {
    it(`${algorithm}: 3/1/1 gives 60/20/20 over 100 sequential requests`, async () => {
      const [a, b, c] = peers.map((p) => p.address);
      const { lb, port } = await startLb(config(algorithm, [{ address: a!, weight: 3 }, { address: b! }, { address: c! }]));
      try {
        const counts = await sequential(lb, port, 100);
        expect(Math.abs((counts.a ?? 0) - 60), JSON.stringify(counts)).toBeLessThanOrEqual(3);
        expect(Math.abs((counts.b ?? 0) - 20), JSON.stringify(counts)).toBeLessThanOrEqual(3);
        expect(Math.abs((counts.c ?? 0) - 20), JSON.stringify(counts)).toBeLessThanOrEqual(3);
      } finally {
        await lb.close({ drainMs: 0 });
      }
    });

    it(`${algorithm}: with one of three out, the others split by weight and the shares say so`, async () => {
      const [a, b, c] = peers.map((p) => p.address);
      // b is in maintenance; a (weight 2) and c (weight 1) remain: 2/3 and 1/3.
      const { lb, port } = await startLb(config(algorithm, [{ address: a!, weight: 2 }, { address: b!, state: 'maint' }, { address: c! }]));
      try {
        const shares = Object.fromEntries(lb.stats().pools[0]!.backends.map((x) => [x.address, x.share]));
        expect(shares[a!]).toBeCloseTo(2 / 3, 3);
        expect(shares[b!]).toBe(0);
        expect(shares[c!]).toBeCloseTo(1 / 3, 3);
        const counts = await sequential(lb, port, 90);
        expect(counts.b ?? 0).toBe(0);
        expect(Math.abs((counts.a ?? 0) - 60), JSON.stringify(counts)).toBeLessThanOrEqual(3);
        expect(Math.abs((counts.c ?? 0) - 30), JSON.stringify(counts)).toBeLessThanOrEqual(3);
      } finally {
        await lb.close({ drainMs: 0 });
      }
    });
  }

  it('round_robin: a backend checked down hands its share to all survivors, not to its neighbour', async () => {
    const [a, c] = [peers[0]!.address, peers[2]!.address];
    const dead = `127.0.0.1:${await refusedPort()}`;
    const { lb, port } = await startLb(
      config('round_robin', [{ address: a }, { address: dead }, { address: c }], {
        health_check: { type: 'tcp', interval: '200ms', timeout: '200ms', fall: 1, rise: 1 },
      }),
    );
    try {
      await waitFor(() => lb.stats().pools[0]!.backends[1]!.health === 'down', 'the dead backend to be checked down');
      const counts = await sequential(lb, port, 300);
      // Scanning on from the skipped slot would give a 100 / c 200 (or the reverse).
      expect(Math.abs((counts.a ?? 0) - 150), JSON.stringify(counts)).toBeLessThanOrEqual(3);
      expect(Math.abs((counts.c ?? 0) - 150), JSON.stringify(counts)).toBeLessThanOrEqual(3);
      const shares = lb.stats().pools[0]!.backends.map((x) => x.share);
      expect(shares[0]).toBeCloseTo(0.5, 3);
      expect(shares[1]).toBe(0);
      expect(shares[2]).toBeCloseTo(0.5, 3);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});
