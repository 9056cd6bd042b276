// Bytes are sacred: streams arrive complete and in order, half-close is honoured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, drain, echo, peer, send, startLb, simpleConfig, waitFor, type Peer } from './helpers.js';

const MB = 1024 * 1024;

describe.each(['never', 'always', 'auto'] as const)('forwarding with splice: %s', (splice) => {
  let backend: Peer;
  beforeAll(async () => {
    backend = await echo();
  });
  afterAll(() => backend.close());

  it('moves 100 MB each way byte-identical', async () => {
    const { lb, port } = await startLb(simpleConfig([backend.address], { splice }));
    try {
      const s = await connect(port);
      const received = drain(s);
      const sent = await send(s, 100 * MB, { end: true });
      const got = await received;
      expect(got.length).toBe(100 * MB);
      expect(got.sha256).toBe(sent);
      const b = await waitFor(() => {
        const st = lb.stats().pools[0]!.backends[0]!;
        return st.bytes_out === 100 * MB && st.active === 0 ? st : undefined;
      }, 'byte counters to settle');
      expect(b.bytes_in).toBe(100 * MB);
      // Each mode really took its path: never copies only, always and auto splice this bulk stream.
      const leases = lb.stats().splice_leases_total;
      if (splice === 'never') expect(leases).toBe(0);
      else expect(leases).toBeGreaterThanOrEqual(2);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('passes a client FIN on and still delivers the whole response', async () => {
    // The backend answers only after it has read everything (it sees our FIN).
    const summariser = await peer((s) => {
      let n = 0;
      s.on('data', (d: Buffer) => (n += d.length));
      s.on('end', () => {
        s.write(`received ${n} bytes\n`);
        s.end(Buffer.alloc(3 * MB, 7)); // a large tail, so it cannot fit in one read
      });
    });
    const { lb, port } = await startLb(simpleConfig([summariser.address], { splice }));
    try {
      const s = await connect(port);
      const reply = drain(s);
      await send(s, 5 * MB, { end: true });
      const got = await reply;
      expect(got.text.startsWith(`received ${5 * MB} bytes\n`)).toBe(true);
      expect(got.length).toBe(`received ${5 * MB} bytes\n`.length + 3 * MB);
    } finally {
      await lb.close({ drainMs: 0 });
      await summariser.close();
    }
  });

  it('passes a backend FIN on while the client keeps sending', async () => {
    let backendGot = 0;
    let backendDone!: () => void;
    const done = new Promise<void>((r) => (backendDone = r));
    const early = await peer((s) => {
      s.end('bye\n'); // half-close at once, keep reading
      s.on('data', (d: Buffer) => (backendGot += d.length));
      s.on('end', () => backendDone());
    });
    const { lb, port } = await startLb(simpleConfig([early.address], { splice }));
    try {
      const s = await connect(port);
      const reply = drain(s);
      expect((await reply).text).toBe('bye\n'); // our read side ended...
      await send(s, 4 * MB, { end: true }); // ...and our writes still flow
      await done;
      expect(backendGot).toBe(4 * MB);
    } finally {
      await lb.close({ drainMs: 0 });
      await early.close();
    }
  });
});
