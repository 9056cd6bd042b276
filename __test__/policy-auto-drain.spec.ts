// Automatic drain on error rate, with the test kit: of four backends two start answering 5xx;
// at most a quarter of the pool may be out, so one is drained and the other is left in service
// with a `drain_capped` decision. After the cooldown the drained one (healthy again) comes back,
// which makes room to drain the other. Also: the decisions through the admin API and /metrics.
import { describe, expect, it } from 'vitest';
import { kitsClosedAfterEach } from './fixtures/kits.js';
import { autoDrain } from '../ts/index.js';
import { assertDecision, assertOnly } from '../ts/testing/index.js';

const startKit = kitsClosedAfterEach();

const TICK_MS = 5000;
const COOLDOWN_MS = 30_000;
const policy = () => autoDrain({ pool: 'main', intervalMs: TICK_MS, windowMs: 2 * TICK_MS, maxErrorRate: 0.5, minRequests: 5, cooldownMs: COOLDOWN_MS, maxDrainedFraction: 0.25 });

describe('auto-drain policy', () => {
  it('drains a failing backend, never more than the allowed fraction, and restores it after the cooldown', async () => {
    const k = await startKit({ backends: ['a', 'b', 'c', 'd'], policies: [policy()] });
    await k.backends.c.fail(500);
    await k.backends.d.fail(503);
    await k.send(80);
    await k.advance(TICK_MS);
    expect(k.states()).toEqual({ a: 'ready', b: 'ready', c: 'drain', d: 'ready' });
    assertDecision(k.decisions(), { action: 'drain', id: 'c', from: 'ready', to: 'drain', reason: /^error rate 1\.000 > 0\.5 over 10000 ms/ }, 1);
    assertDecision(k.decisions(), { action: 'drain_capped', id: 'd', reason: /not drained: 1 of 4 already out, at most 1/ }, 1);
    expect(k.lb.policies()[0]).toMatchObject({ kind: 'auto_drain', state: 'draining' });

    // Still failing, still capped: no second drain, no repeated drain_capped.
    const r = await k.send(60);
    expect(r.byBackend.c ?? 0).toBe(0);
    await k.advance(TICK_MS);
    expect(Object.values(k.states()).filter((s) => s !== 'ready')).toEqual(['drain']);
    assertDecision(k.decisions(), { action: 'drain_capped' }, 1);

    // c recovers; after the cooldown it is back, and d (still failing) can now be drained.
    await k.backends.c.answer();
    await k.advance(COOLDOWN_MS);
    expect(k.states().c).toBe('ready');
    assertDecision(k.decisions(), { action: 'ready', id: 'c', reason: 'cooldown of 30000 ms over' }, 1);
    await k.send(80);
    await k.advance(TICK_MS);
    expect(k.states()).toEqual({ a: 'ready', b: 'ready', c: 'ready', d: 'drain' });
    assertOnly(await k.send(30), ['a', 'b', 'c']);
  });

  it('never drains when the fraction allows none, and shows its decisions in the admin API and /metrics', async () => {
    const k = await startKit({ backends: ['a', 'b', 'c'], admin: true, policies: [policy()] });
    await k.backends.a.fail(500);
    await k.send(30);
    await k.advance(TICK_MS);
    // floor(0.25 × 3) = 0: nothing may be drained.
    expect(k.states()).toEqual({ a: 'ready', b: 'ready', c: 'ready' });
    assertDecision(k.decisions(), { action: 'drain_capped', id: 'a', reason: 'at most 0' }, 1);

    const list = await k.admin('/api/policies');
    expect(list.status).toBe(200);
    expect(list.json).toEqual({ policies: [expect.objectContaining({ name: 'auto-drain:main', kind: 'auto_drain', interval_ms: TICK_MS, state: 'watching', decisions: 1 })] });
    const decisions = await k.admin('/api/policies/decisions?policy=auto-drain:main&limit=10');
    expect(decisions.status).toBe(200);
    expect(decisions.json).toEqual({ decisions: [expect.objectContaining({ policy: 'auto-drain:main', action: 'drain_capped', pool: 'main', address: k.addressOf('a') })] });
    for (const [query, status, code] of [
      ['limit=0', 400, 'bad_request'],
      ['limit=ten', 400, 'bad_request'],
      ['since=1', 400, 'bad_request'],
      ['policy=nope', 404, 'not_found'],
    ] as const) {
      const bad = await k.admin(`/api/policies/decisions?${query}`);
      expect(bad.status, query).toBe(status);
      expect((bad.json as { error: { code: string } }).error.code, query).toBe(code);
    }
    const metrics = await k.admin('/metrics');
    expect(metrics.text).toContain('switchyard_policy_decisions_total{policy="auto-drain:main",action="drain_capped"} 1');
  });
});
