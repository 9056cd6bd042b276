// Health in the data plane, driven through the library: passive ejection on
// real traffic, draining, and the bounded event path.
import { describe, expect, it } from 'vitest';
import type { BackendEvent } from '../ts/index.js';
import { closedByPeer, connect, drain, echo, readLine, refusedPort, send, startLb, tagged, waitFor } from './helpers.js';

const MB = 1024 * 1024;

describe('passive detection', () => {
  it('ejects a refusing backend on real traffic; retries hide it from every client', async () => {
    const live = await tagged('live');
    const dead = `127.0.0.1:${await refusedPort()}`;
    const { lb, port } = await startLb({
      workers: 2,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
      pools: { main: { retries: 2, passive: { consecutive_failures: 2, ejection_time: '30s' }, backends: [{ address: dead }, { address: live.address }] } },
    });
    const events: BackendEvent[] = [];
    lb.on('backend', (e) => events.push(e));
    try {
      for (let i = 0; i < 30; i++) {
        const s = await connect(port);
        expect(await readLine(s)).toBe('live'); // no client ever fails
        s.destroy();
      }
      const st = lb.stats().pools[0]!.backends[0]!;
      expect(st.ejected).toBe(true);
      expect(st.available).toBe(false);
      expect(st.connect_errors).toBe(2);
      const ejected = await waitFor(() => events.find((e) => e.kind === 'ejected'), 'the ejected event');
      expect(ejected.address).toBe(dead);
      expect(ejected.reason).toContain('connect failed');
    } finally {
      await lb.close({ drainMs: 0 });
      await live.close();
    }
  });

  it('never ejects more than max_ejection_percent of the pool', async () => {
    const dead = [await refusedPort(), await refusedPort()].map((p) => `127.0.0.1:${p}`);
    const { lb, port } = await startLb({
      workers: 2,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
      pools: { main: { retries: 1, passive: { consecutive_failures: 1, max_ejection_percent: 50 }, backends: dead.map((address) => ({ address })) } },
    });
    try {
      for (let i = 0; i < 6; i++) await closedByPeer(await connect(port));
      const ejected = lb.stats().pools[0]!.backends.filter((b) => b.ejected);
      expect(ejected).toHaveLength(1);
      await waitFor(() => lb.events().some((e) => e.kind === 'ejection_skipped'), 'an ejection_skipped event');
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});

describe('draining', () => {
  it('drain: in-flight transfers complete, no new connection lands there, the deadline closes stragglers', async () => {
    const a = await echo();
    const b = await tagged('b');
    const { lb, port } = await startLb({
      workers: 2,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
      pools: { main: { drain_timeout: '3s', backends: [{ address: a.address }, { address: b.address }] } },
    });
    try {
      // Two connections land on A (round robin: A, B, A, B): one transfers, one idles.
      // Each is connected through before the next, so the order is deterministic.
      const through = async (n: number) => {
        const s = await connect(port);
        await waitFor(() => lb.stats().pools[0]!.backends.reduce((t, x) => t + x.total, 0) === n, `connection ${n} to reach a backend`);
        return s;
      };
      const s1 = await through(1);
      const s2 = await through(2);
      const s3 = await through(3);
      const s4 = await through(4);
      expect(await readLine(s2)).toBe('b');
      expect(await readLine(s4)).toBe('b');
      const straggler = closedByPeer(s3);
      await lb.drain('main', a.address);
      expect(lb.stats().pools[0]!.backends[0]!.state).toBe('drain');
      // The running transfer on A completes intact while A drains.
      const got = drain(s1);
      // Small enough to finish well inside the drain deadline on a loaded machine.
      const sent = await send(s1, 2 * MB, { end: true });
      expect((await got).sha256).toBe(sent);
      // New connections all go to B.
      for (let i = 0; i < 6; i++) {
        const s = await connect(port);
        expect(await readLine(s)).toBe('b');
        s.destroy();
      }
      // The idle one on A is closed at the drain deadline.
      await straggler;
      await waitFor(() => lb.events().some((e) => e.kind === 'drain_closed'), 'the drain_closed event');
      // The client may see the close a moment before the worker thread drops the count.
      await waitFor(() => lb.stats().pools[0]!.backends[0]!.active === 0, "A's active count to reach 0");
      await lb.ready('main', a.address);
      const after = await Promise.all([connect(port), connect(port)]);
      // Round robin sends one of the two to A again.
      await waitFor(() => lb.stats().pools[0]!.backends[0]!.total >= 3, 'A to take a connection after ready');
      after.forEach((s) => s.destroy());
      [s2, s4].forEach((s) => s.destroy());
    } finally {
      await lb.close({ drainMs: 0 });
      await a.close();
      await b.close();
    }
  });
});

describe('backend operations', () => {
  it('add, weight, algorithm and remove apply atomically and are reported', async () => {
    const a = await tagged('a');
    const b = await tagged('b');
    const { lb, port } = await startLb({
      workers: 2,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
      pools: { main: { backends: [{ address: a.address }] } },
    });
    try {
      await lb.addBackend('main', { address: b.address, weight: 3 });
      await expect(lb.addBackend('main', { address: b.address })).rejects.toMatchObject({ code: 'SWITCHYARD_ERR_CONFLICT' });
      await expect(lb.setWeight('main', '127.0.0.1:1', 2)).rejects.toMatchObject({ code: 'SWITCHYARD_ERR_NOT_FOUND' });
      await expect(lb.setWeight('main', a.address, -1)).rejects.toMatchObject({ code: 'SWITCHYARD_ERR_CONFIG' });
      await lb.setAlgorithm('main', 'weighted_round_robin');
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        const s = await connect(port);
        ids.push(await readLine(s));
        s.destroy();
      }
      expect(ids.filter((x) => x === 'b')).toHaveLength(6);
      await lb.removeBackend('main', a.address);
      await expect(lb.removeBackend('main', b.address)).rejects.toMatchObject({ code: 'SWITCHYARD_ERR_CONFLICT' });
      expect(lb.events().map((e) => e.kind)).toEqual(['added', 'algorithm', 'removed']);
    } finally {
      await lb.close({ drainMs: 0 });
      await a.close();
      await b.close();
    }
  });
});
