// The per-connection access log: listeners with `access_log: true` log one `access` line per
// client connection (who, where to, bytes each way, how it ended); others log none.
import { describe, expect, it } from 'vitest';
import { Switchyard } from '../ts/index.js';
import { connect, drain, echo, refusedPort, send, waitFor } from './helpers.js';

type Line = Record<string, unknown> & { event: string };

describe('access log', () => {
  it('logs one line per connection of the listeners that ask for it, with bytes and outcome', async () => {
    const backend = await echo();
    const dead = `127.0.0.1:${await refusedPort()}`;
    const lines: Line[] = [];
    const lb = await Switchyard.start(
      {
        workers: 2,
        listeners: {
          logged: { address: '127.0.0.1:0', pool: 'live', access_log: true },
          nowhere: { address: '127.0.0.1:0', pool: 'dead', access_log: true },
          quiet: { address: '127.0.0.1:0', pool: 'live' },
        },
        pools: {
          live: { backends: [{ address: backend.address }] },
          dead: { retries: 0, passive: { consecutive_failures: 0 }, backends: [{ address: dead }] },
        },
      },
      { logger: (event, fields = {}) => lines.push({ event, ...fields }) },
    );
    try {
      // 1000 bytes up, echoed back, then the client ends its side.
      const s = await connect(lb.address('logged').port);
      const client = `${s.localAddress}:${s.localPort}`;
      const sent = await send(s, 1000, { end: true });
      const got = await drain(s);
      expect(got.sha256).toBe(sent);
      // Nothing can serve this one.
      const n = await connect(lb.address('nowhere').port);
      const nClient = `${n.localAddress}:${n.localPort}`;
      await drain(n);
      // An unlogged listener.
      const q = await connect(lb.address('quiet').port);
      await send(q, 10, { end: true });
      await drain(q);
      const access = () => lines.filter((l) => l.event === 'access');
      await waitFor(() => access().length >= 2, 'two access lines');
      const ok = access().find((l) => l.listener === 'logged')!;
      expect(ok).toMatchObject({ client, pool: 'live', backend: backend.address, bytes_in: 1000, bytes_out: 1000, ended: 'completed' });
      expect(ok.duration_ms).toBeGreaterThanOrEqual(0);
      expect(Date.parse(ok.accepted_at as string)).toBeLessThanOrEqual(Date.now());
      const failed = access().find((l) => l.listener === 'nowhere')!;
      expect(failed).toMatchObject({ client: nClient, pool: 'dead', backend: '', bytes_out: 0, ended: 'no_backend' });
      // The quiet listener served its client (it is in the stats) but logged nothing.
      await waitFor(() => lb.stats().listeners.find((l) => l.name === 'quiet')!.accepted === 1, 'the quiet listener to count its client');
    } finally {
      await lb.close({ drainMs: 0 });
      await backend.close();
    }
    expect(lines.filter((l) => l.event === 'access' && l.listener === 'quiet')).toEqual([]);
    expect(lines.filter((l) => l.event === 'access')).toHaveLength(2);
  });
});
