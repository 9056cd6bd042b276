// Round robin, retries on refused backends, and what a client sees when all are down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedByPeer, connect, readLine, refusedPort, startLb, simpleConfig, tagged, waitFor, type Peer } from './helpers.js';

describe('balancing', () => {
  let backends: Peer[];
  beforeAll(async () => {
    backends = await Promise.all(['a', 'b', 'c'].map(tagged));
  });
  afterAll(() => Promise.all(backends.map((b) => b.close())));

  it('serves 500 concurrent connections, spread round robin', async () => {
    const { lb, port } = await startLb(simpleConfig(backends.map((b) => b.address)));
    try {
      const sockets = await Promise.all(Array.from({ length: 500 }, () => connect(port)));
      const ids = await Promise.all(sockets.map(readLine));
      const counts = { a: 0, b: 0, c: 0 } as Record<string, number>;
      for (const id of ids) counts[id] = (counts[id] ?? 0) + 1;
      expect(ids).toHaveLength(500);
      expect(Object.keys(counts).sort()).toEqual(['a', 'b', 'c']);
      const v = Object.values(counts);
      expect(Math.max(...v) - Math.min(...v)).toBeLessThanOrEqual(1);
      // While they are all open, the data plane counts them.
      expect(lb.stats().connections_active).toBe(500);
      sockets.forEach((s) => s.destroy());
      await waitFor(() => lb.stats().connections_active === 0, 'connections to close');
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('retries a refused backend on another one; the client never notices', async () => {
    const dead = `127.0.0.1:${await refusedPort()}`;
    const { lb, port } = await startLb(simpleConfig([dead, backends[0]!.address], { retries: 2 }));
    try {
      for (let i = 0; i < 20; i++) {
        const s = await connect(port);
        expect(await readLine(s)).toBe('a');
        s.destroy();
      }
      const st = lb.stats().pools[0]!.backends;
      // Passive detection ejects the refused backend after 3 failures in a row,
      // so later connections stop paying for the failed attempt.
      expect(st[0]!.connect_errors).toBe(3);
      expect(st[0]!.ejected).toBe(true);
      expect(st[0]!.total).toBe(0);
      expect(st[1]!.total).toBe(20);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('closes the client promptly and counts it when every backend is down', async () => {
    const dead = [`127.0.0.1:${await refusedPort()}`, `127.0.0.1:${await refusedPort()}`];
    const { lb, port } = await startLb(simpleConfig(dead));
    try {
      const s = await connect(port);
      const started = Date.now();
      await closedByPeer(s);
      // Refused connects fail in well under the 1 s connect timeout.
      expect(Date.now() - started).toBeLessThan(5_000);
      const l = lb.stats().listeners[0]!;
      expect(l.no_backend).toBe(1);
      expect(lb.stats().pools[0]!.backends.map((b) => b.connect_errors)).toEqual([1, 1]);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});
