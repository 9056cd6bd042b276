// update() and close() while traffic flows; idle timeouts.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { closedByPeer, connect, drain, echo, readLine, send, simpleConfig, startLb, tagged, waitFor } from './helpers.js';

const MB = 1024 * 1024;

/** A transfer that takes a while: 24 MB in small, yielding chunks. */
async function longTransfer(port: number): Promise<{ sent: string; got: { sha256: string; length: number } }> {
  const s = await connect(port);
  const got = drain(s);
  const sent = await send(s, 24 * MB, { chunk: 16 * 1024, end: true, pauseEvery: 8 });
  return { sent, got: await got };
}

describe('lifecycle', () => {
  it('update() adds and removes backends while long transfers run; none is cut', async () => {
    const a = await echo();
    const b = await tagged('b');
    const { lb, port } = await startLb(simpleConfig([a.address]));
    try {
      const transfers = Array.from({ length: 4 }, () => longTransfer(port));
      await waitFor(() => lb.stats().connections_active === 4, 'transfers to start');
      // Replace A by B mid-transfer, then add A back, then remove it again.
      await lb.update(simpleConfig([b.address]));
      const s = await connect(port);
      expect(await readLine(s)).toBe('b');
      s.destroy();
      await lb.update(simpleConfig([a.address, b.address]));
      await lb.update(simpleConfig([b.address]));
      for (const t of await Promise.all(transfers)) {
        expect(t.got.length).toBe(24 * MB);
        expect(t.got.sha256).toBe(t.sent);
      }
      expect(lb.stats().pools[0]!.backends.map((x) => x.address)).toEqual([b.address]);
    } finally {
      await lb.close({ drainMs: 0 });
      await a.close();
      await b.close();
    }
  });

  it('an invalid update changes nothing', async () => {
    const a = await tagged('a');
    const { lb, port } = await startLb(simpleConfig([a.address]));
    try {
      await expect(lb.update(simpleConfig([]))).rejects.toMatchObject({ code: 'SWITCHYARD_ERR_CONFIG' });
      const s = await connect(port);
      expect(await readLine(s)).toBe('a');
      s.destroy();
    } finally {
      await lb.close({ drainMs: 0 });
      await a.close();
    }
  });

  it('close({ drainMs }) lets in-flight transfers finish, then releases the port', async () => {
    const a = await echo();
    const { lb, port } = await startLb(simpleConfig([a.address]));
    const transfer = longTransfer(port);
    await waitFor(() => lb.stats().connections_active === 1, 'the transfer to start');
    const closing = lb.close({ drainMs: 60_000 });
    // New connections are refused as soon as close() starts...
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const c = net.connect(port, '127.0.0.1');
          c.once('connect', () => (c.destroy(), resolve(false)));
          c.once('error', () => resolve(true));
        }),
      'the listener to stop accepting',
    );
    // ...while the running transfer completes intact.
    const t = await transfer;
    expect(t.got.length).toBe(24 * MB);
    expect(t.got.sha256).toBe(t.sent);
    await closing;
    // The port is free again.
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(port, '127.0.0.1', resolve);
    });
    again.close();
    await a.close();
  });

  it('close({ drainMs }) cuts connections still open at the deadline', async () => {
    const a = await echo();
    const { lb, port } = await startLb(simpleConfig([a.address]));
    const s = await connect(port);
    s.write('ping');
    await waitFor(() => lb.stats().connections_active === 1, 'the connection to be counted');
    const cut = closedByPeer(s);
    const t0 = Date.now();
    await lb.close({ drainMs: 300 });
    await cut;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await a.close();
  });

  it('closes idle connections after idle_timeout and counts them', async () => {
    const a = await echo();
    const { lb, port } = await startLb(simpleConfig([a.address], { idle_timeout: '300ms' }));
    try {
      const idle = await connect(port);
      const busy = await connect(port);
      const idleClosed = closedByPeer(idle);
      // Keep one connection busy with a byte every 100 ms until the idle one is cut.
      let busyEnded = false;
      busy.on('end', () => (busyEnded = true));
      busy.resume();
      const ticker = setInterval(() => busy.write('x'), 100);
      await idleClosed;
      clearInterval(ticker);
      expect(busyEnded).toBe(false);
      expect(lb.stats().listeners[0]!.idle_timeouts).toBe(1);
      busy.destroy();
    } finally {
      await lb.close({ drainMs: 0 });
      await a.close();
    }
  });
});
