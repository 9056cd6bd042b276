// What a policy reads (`ctx.read()`), checked against traffic the test knows: deltas per tick,
// errors by kind, and where latency comes from — the access records when the listener keeps
// them, the mean connect time otherwise (the data plane has no per-backend latency histogram).
import { describe, expect, it } from 'vitest';
import { definePolicy, type BackendSignal } from '../ts/index.js';
import { kitsClosedAfterEach } from './fixtures/kits.js';

const startKit = kitsClosedAfterEach();

/** A policy that only reads, once per 1000 ms tick, keeping each reading. */
function recorder() {
  const readings: BackendSignal[][] = [];
  const policy = definePolicy({ name: 'recorder', intervalMs: 1000, tick: (ctx) => void readings.push(ctx.read()) });
  return { policy, readings };
}

const byId = (k: { addressOf(id: string): string }, reading: BackendSignal[], id: string) => reading.find((r) => r.address === k.addressOf(id))!;

describe('policy signals', () => {
  it('count each tick’s requests and errors per backend, with p99 from the access records', async () => {
    const { policy, readings } = recorder();
    const k = await startKit({ backends: ['a', 'b'], policies: [policy], pool: { retries: 0 } });
    await k.backends.b.fail(500);
    await k.backends.a.delay(30);
    await k.send(20);
    await k.advance(1000);
    const [first] = readings;
    expect(byId(k, first!, 'a')).toMatchObject({ attempts: 10, errors: 0, errorRate: 0, latency: { source: 'access_log', samples: 10 } });
    expect(byId(k, first!, 'a').latency.p99Ms).toBeGreaterThanOrEqual(30);
    expect(byId(k, first!, 'b')).toMatchObject({ attempts: 10, errors: 10, responses5xx: 10, errorRate: 1 });
    // The next reading starts where this one ended.
    await k.send(4);
    await k.advance(1000);
    expect(byId(k, readings[1]!, 'a').attempts).toBe(2);
    expect(byId(k, readings[1]!, 'b').attempts).toBe(2);
  });

  it('fall back to the mean connect time without an access log, and count refused connects as errors', async () => {
    const { policy, readings } = recorder();
    const k = await startKit({ protocol: 'tcp', backends: ['a', 'b'], policies: [policy], listener: { access_log: false }, pool: { retries: 1, passive: { consecutive_failures: 0 } } });
    await k.backends.b.refuse();
    const r = await k.send(10, { concurrency: 1 });
    expect(r.byBackend).toEqual({ a: 10 });
    await k.advance(1000);
    const a = byId(k, readings[0]!, 'a');
    expect(a).toMatchObject({ attempts: 10, errors: 0, latency: { source: 'connect_time', samples: 10 } });
    expect(a.latency.meanMs).toBeGreaterThan(0);
    const b = byId(k, readings[0]!, 'b');
    expect(b.attempts).toBeGreaterThan(0);
    expect(b).toMatchObject({ errors: b.attempts, connectErrors: b.attempts, errorRate: 1, latency: { source: 'none' } });
  });
});
