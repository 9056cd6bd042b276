// Health checks and failover end to end: real processes killed and restarted,
// load from another process, the balancer's own event loop paused.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackendEvent, SwitchyardConfig } from '../ts/index.js';
import { Switchyard } from '../ts/index.js';
import { connect, closedByPeer, echo, peer, readLine, refusedPort, waitFor } from './helpers.js';
import { runLoad, spawnBackend, stopAll, type ProcessBackend } from './processes.js';

// Every backend and load process a test started, even one whose start failed half-way.
afterEach(stopAll);

function backends(...ids: string[]): Promise<ProcessBackend[]> {
  return Promise.all(ids.map((id) => spawnBackend(id)));
}

function config(addresses: string[], pool: Record<string, unknown> = {}): SwitchyardConfig {
  return {
    workers: 2,
    listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
    pools: { main: { retries: 2, backends: addresses.map((address) => ({ address })), ...pool } },
  } as SwitchyardConfig;
}

/** Connect through and read the backend's id. */
async function hit(port: number): Promise<string> {
  const s = await connect(port);
  try {
    return await readLine(s);
  } finally {
    s.destroy();
  }
}

describe('active checks drive the data plane', () => {
  it('a killed backend goes down within fall × interval + timeout, gets no new connections, and returns after rise', async () => {
    const [a, b] = await backends('a', 'b');
    const check = { type: 'tcp', interval: '200ms', timeout: '100ms', jitter: '20ms', rise: 2, fall: 3 };
    // Passive ejection off, so what is measured is the active check.
    const lb = await Switchyard.start(config([a!.address, b!.address], { health_check: check, passive: { consecutive_failures: 0 } }));
    const events: BackendEvent[] = [];
    lb.on('backend', (e) => events.push(e));
    try {
      const port = lb.address('front').port;
      await waitFor(() => lb.health().every((h) => h.status === 'up'), 'both backends to be checked up');
      const killedAt = Date.now();
      await b!.kill();
      const down = await waitFor(() => events.find((e) => e.kind === 'down' && e.address === b!.address), 'b to be marked down', 10_000);
      // fall × (interval + jitter) + timeout = 3 × 220 + 100 ms; allow generous slack for a loaded box.
      expect(Date.parse(down.time) - killedAt).toBeLessThan(3 * 220 + 100 + 2000);
      expect(down.reason).toContain('refused');
      expect(lb.stats().pools[0]!.backends[1]!.health).toBe('down');
      const errorsBefore = lb.stats().pools[0]!.backends[1]!.connect_errors;
      for (let i = 0; i < 10; i++) expect(await hit(port)).toBe('a');
      // Not even tried: the data plane skips it without a failed connect.
      expect(lb.stats().pools[0]!.backends[1]!.connect_errors).toBe(errorsBefore);
      // Restart it on the same port: up again after `rise` successes.
      await spawnBackend('b', b!.port);
      await waitFor(() => events.find((e) => e.kind === 'up' && e.address === b!.address && Date.parse(e.time) > Date.parse(down.time)), 'b to come back');
      const ids = new Set<string>();
      for (let i = 0; i < 6; i++) ids.add(await hit(port));
      expect([...ids].sort()).toEqual(['a', 'b']);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('passive detection ejects a refusing backend before the active check notices; no client fails', async () => {
    const [a] = await backends('a');
    const dead = `127.0.0.1:${await refusedPort()}`;
    // The active check is slow (10s), so anything that happens sooner is passive.
    const lb = await Switchyard.start(config([a!.address, dead], { health_check: { interval: '10s', timeout: '1s' } }));
    try {
      const port = lb.address('front').port;
      for (let i = 0; i < 20; i++) expect(await hit(port)).toBe('a');
      const d = lb.stats().pools[0]!.backends[1]!;
      expect(d.ejected).toBe(true);
      expect(d.health).not.toBe('down');
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('under load, killing one of three backends fails zero client connections', async () => {
    const [a, b, c] = await backends('a', 'b', 'c');
    const lb = await Switchyard.start(
      config([a!.address, b!.address, c!.address], { health_check: { interval: '300ms', timeout: '200ms', fall: 2 } }),
    );
    try {
      const port = lb.address('front').port;
      await waitFor(() => lb.health().every((h) => h.status === 'up'), 'all three to be up');
      const load = runLoad(port, 16, 4000);
      await new Promise((r) => setTimeout(r, 1500)); // let load build up before the kill (timing of the kill, not a sync point)
      await b!.kill();
      const summary = await load;
      expect(summary.failed, JSON.stringify({ errors: summary.errors, stats: lb.stats(), events: lb.events() })).toBe(0);
      expect(summary.served).toBeGreaterThan(4 * 200); // several hundred connections a second
      expect(summary.ids.b).toBeGreaterThan(0);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});

describe('degraded pools', () => {
  it('panic_threshold fails open when checks mark every primary down; without it clients are refused', async () => {
    const [a, b] = await backends('a', 'b');
    const deadCheckPort = await refusedPort();
    // The checks probe a port nobody listens on: both backends go down although they work.
    const check = { type: 'tcp', interval: '100ms', timeout: '100ms', fall: 1, port: deadCheckPort };
    const open = await Switchyard.start(config([a!.address, b!.address], { health_check: check, panic_threshold: 50 }));
    const shut = await Switchyard.start(config([a!.address, b!.address], { health_check: check }));
    try {
      await waitFor(() => open.health().every((h) => h.status === 'down') && shut.health().every((h) => h.status === 'down'), 'every backend to be down');
      expect(['a', 'b']).toContain(await hit(open.address('front').port));
      const s = await connect(shut.address('front').port);
      await closedByPeer(s);
      s.destroy();
      expect(shut.stats().listeners[0]!.no_backend).toBe(1);
    } finally {
      await open.close({ drainMs: 0 });
      await shut.close({ drainMs: 0 });
    }
  });

  it('on_down: close closes established connections of a backend marked down; keep leaves them', async () => {
    const backend = await echo();
    const checkTarget = await peer(() => {});
    const checkPort = checkTarget.port;
    const make = (on_down: string) =>
      Switchyard.start(config([backend.address], { on_down, health_check: { interval: '100ms', timeout: '100ms', fall: 1, rise: 1, port: checkPort } }));
    const closeLb = await make('close');
    const keepLb = await make('keep');
    try {
      await waitFor(() => closeLb.health()[0]?.status === 'up' && keepLb.health()[0]?.status === 'up', 'both to be up');
      const doomed = await connect(closeLb.address('front').port);
      const kept = await connect(keepLb.address('front').port);
      const doomedClosed = closedByPeer(doomed);
      await checkTarget.close(); // the check now fails: both backends go down
      await doomedClosed;
      await waitFor(() => keepLb.health()[0]?.status === 'down', 'keep pool to see it down');
      const echoed = new Promise<string>((r) => kept.once('data', (d: Buffer) => r(d.toString())));
      kept.write('still here');
      expect(await echoed).toBe('still here');
      kept.destroy();
    } finally {
      await closeLb.close({ drainMs: 0 });
      await keepLb.close({ drainMs: 0 });
      await backend.close();
    }
  });
});

describe('slow start', () => {
  it("a recovered backend's share grows over the window", async () => {
    const [a, b] = await backends('a', 'b');
    const gate = await peer(() => {}); // b's check target: closing it marks b down, reopening brings it back
    const gatePort = gate.port;
    const lb = await Switchyard.start({
      workers: 2,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
      pools: {
        main: {
          algorithm: 'weighted_round_robin',
          slow_start: '3s',
          passive: { consecutive_failures: 0 },
          backends: [
            { address: a!.address, weight: 10, health_check: { interval: '100ms', timeout: '100ms' } },
            { address: b!.address, weight: 10, health_check: { interval: '100ms', timeout: '100ms', fall: 1, rise: 1, port: gatePort } },
          ],
        },
      },
    });
    try {
      const port = lb.address('front').port;
      await waitFor(() => lb.health().every((h) => h.status === 'up'), 'both up');
      await gate.close();
      await waitFor(() => lb.health().find((h) => h.address === b!.address)?.status === 'down', 'b down');
      const reopened = await peer(() => {}, gatePort);
      await waitFor(() => lb.events().some((e) => e.kind === 'slow_start'), 'slow start to begin');
      // Share of b in successive windows of 100 connections.
      const shares: number[] = [];
      for (let w = 0; w < 4; w++) {
        let bCount = 0;
        for (let i = 0; i < 100; i++) if ((await hit(port)) === 'b') bCount++;
        shares.push(bCount / 100);
        if (w < 3) await new Promise((r) => setTimeout(r, 700)); // spread the windows over the 3 s ramp
      }
      expect(shares[0]!).toBeLessThan(0.35);
      expect(shares[3]!).toBeGreaterThan(shares[0]! + 0.1);
      await reopened.close();
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});

describe('event batching', () => {
  it('pausing the JS event loop for a second neither blocks forwarding nor loses the final state', async () => {
    const [a] = await backends('a');
    const dead = `127.0.0.1:${await refusedPort()}`;
    const lb = await Switchyard.start(config([a!.address, dead], { passive: { consecutive_failures: 1 } }));
    const events: BackendEvent[] = [];
    lb.on('backend', (e) => events.push(e));
    try {
      const port = lb.address('front').port;
      const load = runLoad(port, 4, 2500);
      await new Promise((r) => setTimeout(r, 500));
      // Block this process's event loop for one second while the load runs in another process.
      const pauseStart = Date.now();
      while (Date.now() - pauseStart < 1000) {
        /* busy */
      }
      const pauseEnd = Date.now();
      const summary = await load;
      expect(summary.failed).toBe(0);
      const duringPause = summary.times.filter((t) => t > pauseStart + 100 && t < pauseEnd - 100).length;
      expect(duringPause).toBeGreaterThan(20);
      // The ejection that happened meanwhile still reaches us.
      await waitFor(() => events.find((e) => e.kind === 'ejected' && e.address === dead), 'the ejected event');
      expect(lb.stats().pools[0]!.backends[1]!.ejected).toBe(true);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});

void net;
