// The progressive canary, driven as a user would with the test kit: real sockets, fake HTTP
// backends, a manual clock. It promotes step by step while the canary answers like the baseline,
// and rolls back (weight 0, baseline weights restored) once the canary answers 5xx.
import { describe, expect, it } from 'vitest';
import { kitsClosedAfterEach } from './fixtures/kits.js';
import { validate } from '../ts/admin/schema.js';
import { canary } from '../ts/index.js';
import { assertDecision, assertOnly, assertShare, type Kit } from '../ts/testing/index.js';

const startKit = kitsClosedAfterEach();

const STEP_MS = 30_000;
const TICK_MS = 10_000;

/**
 * A kit with baseline a, b and canary c, and the canary policy over them (steps 10 → 50 → 100 %).
 * The latency bound has a generous slack unless a test is about latency: on a loaded 2-core box a
 * healthy canary's p99 can differ from the baseline's by tens of milliseconds.
 */
async function canaryKit(admin = false, latencySlackMs = 1000): Promise<Kit<'a' | 'b' | 'c'>> {
  const kit = await startKit({ backends: ['a', 'b', 'c'], admin });
  await kit.lb.use(canary({ pool: kit.pool, canary: kit.addressOf('c'), steps: [10, 50, 100], stepMs: STEP_MS, intervalMs: TICK_MS, minRequests: 5, latencySlackMs }));
  return kit;
}

/** Send traffic and tick once: one interval of the loop. */
async function round(k: Kit, n = 60) {
  const r = await k.send(n);
  await k.advance(TICK_MS);
  return r;
}

describe('canary policy', () => {
  it('promotes step by step while the canary is as healthy as the baseline', async () => {
    const k = await canaryKit();
    expect(k.weights()).toEqual({ a: 450, b: 450, c: 100 });
    expect(k.lb.policies()[0]).toMatchObject({ kind: 'canary', state: 'ramping', detail: { percent: 10 } });
    // 10 %: two ticks are not yet a step; the third reaches stepMs.
    assertShare(await round(k), 'c', 0.05, 0.2);
    await round(k);
    expect(k.weights().c).toBe(100);
    await round(k);
    expect(k.weights()).toEqual({ a: 250, b: 250, c: 500 });
    const at50 = await k.send(100);
    assertShare(at50, 'c', 0.4, 0.6);
    for (let i = 0; i < 3; i++) await round(k);
    expect(k.weights()).toEqual({ a: 0, b: 0, c: 1000 });
    expect(k.lb.policies()[0]!.state).toBe('promoted');
    assertOnly(await k.send(40), ['c']);
    assertDecision(k.decisions(), { action: 'promoted', id: 'c' }, 1);
    assertDecision(k.decisions(), { action: 'set_weight', id: 'c', from: 100, to: 500, reason: /step 2\/3: 50 %.*within bounds/ }, 1);
    // A promoted canary changes nothing more.
    const before = k.decisions().length;
    await round(k);
    expect(k.decisions().length).toBe(before);
  });

  it('rolls back when the canary starts answering 5xx: weight 0, baseline weights restored', async () => {
    const k = await canaryKit(true);
    for (let i = 0; i < 3; i++) await round(k);
    expect(k.weights().c).toBe(500);
    await k.backends.c.fail(500);
    const failing = await round(k);
    expect(failing.statuses['500'] ?? 0).toBeGreaterThan(0);
    expect(k.weights()).toEqual({ a: 1, b: 1, c: 0 });
    expect(k.lb.policies()[0]!.state).toBe('rolled_back');
    const [rolled] = assertDecision(k.decisions(), { action: 'rolled_back', id: 'c', reason: /at 50 % of pool main: error rate/ }, 1);
    expect(rolled!.reason).toMatch(/> baseline 0\.000 \+ 0\.02/);
    assertOnly(await k.send(40), ['a', 'b']);
    // The admin API shows the policy and every decision, as its OpenAPI document describes them.
    const doc = (await k.admin('/api/openapi.json')).json as any;
    for (const path of ['/api/policies', '/api/policies/decisions']) {
      const r = await k.admin(path);
      expect(r.status).toBe(200);
      expect(validate(r.json, doc.paths[path].get.responses['200'].content['application/json'].schema, doc, 'response'), path).toEqual([]);
    }
    expect((await k.admin('/api/policies')).json).toMatchObject({ policies: [{ name: 'canary:main', kind: 'canary', state: 'rolled_back' }] });
    const listed = ((await k.admin('/api/policies/decisions?limit=2')).json as { decisions: unknown[] }).decisions;
    expect(listed).toEqual(k.decisions().slice(-2).map(({ id: _, ...d }) => d));
    // Rolled back for good: ticks change nothing.
    const before = k.decisions().length;
    await round(k);
    expect(k.decisions().length).toBe(before);
  });

  it('rolls back when the canary is slower than the baseline (p99 from the access records)', async () => {
    const k = await canaryKit(false, 5);
    await k.backends.c.delay(300);
    await round(k, 80);
    expect(k.weights().c).toBe(0);
    const [rolled] = assertDecision(k.decisions(), { action: 'rolled_back', id: 'c' }, 1);
    expect(rolled!.reason).toMatch(/^at 10 % of pool main: p99 \d+\.\d ms > baseline \d+\.\d ms × 1\.5 \+ 5 ms \(access_log\)$/);
  });

  it('stops when someone else sets the canary weight (the operator wins)', async () => {
    const k = await canaryKit();
    await k.lb.setWeight(k.pool, k.addressOf('c'), 7);
    await round(k);
    expect(k.lb.policies()[0]!.state).toBe('overridden');
    assertDecision(k.decisions(), { action: 'overridden', reason: 'weight 100→7 set outside the policy' }, 1);
    expect(k.weights().c).toBe(7);
  });
});
