// Adaptive weights from measured latency, with the test kit: a backend that answers 40 ms late
// loses weight (bounded below by minWeight) and traffic; once it is fast again its weight climbs
// back, gradually (smoothed), toward the fastest's.
import { describe, expect, it } from 'vitest';
import { kitsClosedAfterEach } from './fixtures/kits.js';
import { adaptiveWeights } from '../ts/index.js';
import { assertDecision, shareOf } from '../ts/testing/index.js';

const startKit = kitsClosedAfterEach();

const TICK_MS = 10_000;

describe('adaptive weights policy', () => {
  it('moves weight toward the faster backend, bounded and smoothed', async () => {
    const k = await startKit({ backends: { fast: { weight: 100 }, slow: { weight: 100, behaviour: { mode: 'delay', ms: 40 } } } });
    await k.lb.use(adaptiveWeights({ pool: k.pool, intervalMs: TICK_MS, minWeight: 10, maxWeight: 100, smoothing: 0.5, minSamples: 5 }));
    const even = await k.send(40, { concurrency: 4 });
    expect(shareOf(even, 'slow')).toBeGreaterThan(0.3);
    await k.advance(TICK_MS);
    const w = k.weights();
    expect(w.fast).toBe(100);
    // 100 × (~1 ms / ~40 ms), held at minWeight 10 (more if the fast one was slowed by a loaded box).
    expect(w.slow).toBeGreaterThanOrEqual(10);
    expect(w.slow).toBeLessThanOrEqual(30);
    const [d] = assertDecision(k.decisions(), { action: 'set_weight', id: 'slow', from: 100, to: w.slow }, 1);
    expect(d!.reason).toMatch(/^mean latency \d+\.\d ms \(smoothed\) vs fastest \d+\.\d ms$/);
    expect(k.lb.policies()[0]).toMatchObject({ kind: 'adaptive_weights', state: 'adjusting' });
    const after = await k.send(110, { concurrency: 4 });
    expect(shareOf(after, 'fast'), JSON.stringify(after.byBackend)).toBeGreaterThan(100 / (100 + w.slow!) - 0.1);

    // Fast again: the weight climbs over several ticks, not at once (the latency is averaged).
    await k.backends.slow.answer();
    const seen: number[] = [];
    for (let i = 0; i < 15 && (k.weights().slow ?? 0) < 70; i++) {
      await k.send(120, { concurrency: 4 });
      await k.advance(TICK_MS);
      seen.push(k.weights().slow!);
    }
    expect(seen[0], `weights of slow per tick: ${seen}`).toBeLessThan(70);
    expect(seen.at(-1), `weights of slow per tick: ${seen}`).toBeGreaterThanOrEqual(70);
    expect(seen.length, `weights of slow per tick: ${seen}`).toBeGreaterThan(2);
  });

  it('leaves weights alone without enough samples', async () => {
    const kit = await startKit({ backends: ['a', 'b'] });
    await kit.lb.use(adaptiveWeights({ pool: kit.pool, intervalMs: TICK_MS, minSamples: 50 }));
    await kit.send(20);
    await kit.advance(TICK_MS);
    expect(kit.weights()).toEqual({ a: 1, b: 1 });
    expect(kit.decisions()).toEqual([]);
    expect(kit.lb.policies()[0]!.state).toBe('measuring');
  });
});
