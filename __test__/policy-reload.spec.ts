// Weights a policy sets are runtime state: a reload of an unchanged file keeps them; a file that
// changes that backend's weight wins. The policy here is a user's own, written with definePolicy.
import { describe, expect, it } from 'vitest';
import { kitsClosedAfterEach } from './fixtures/kits.js';
import { definePolicy, type BackendEvent } from '../ts/index.js';
import { assertDecision, assertShare } from '../ts/testing/index.js';

const startKit = kitsClosedAfterEach();

/** Sets `address`'s weight to `weight` on its first tick, and records the backend events it sees. */
function pin(address: () => string, weight: number) {
  const seen: BackendEvent[] = [];
  const policy = definePolicy({
    name: 'pin',
    intervalMs: 1000,
    async tick(ctx) {
      await ctx.setWeight('main', address(), weight, `pinned to ${weight}`);
    },
    onBackend(event) {
      seen.push(event);
    },
  });
  return { policy, seen };
}

describe('policy weights across reloads', () => {
  it('survive a reload of an unchanged file and give way when the file changes that weight', async () => {
    const k = await startKit({ backends: ['a', 'b'], file: true });
    const { policy, seen } = pin(() => k.addressOf('a'), 4);
    await k.lb.use(policy);
    await k.advance(1000);
    expect(k.weights()).toEqual({ a: 4, b: 1 });
    assertDecision(k.decisions(), { policy: 'pin', action: 'set_weight', id: 'a', from: 1, to: 4, reason: 'pinned to 4' }, 1);

    await k.reload();
    expect(k.weights()).toEqual({ a: 4, b: 1 });
    assertShare(await k.send(50), 'a', 0.7, 0.9);

    // The file changes b only: a keeps the policy's weight.
    await k.reload((c) => void ((c.pools.main!.backends![1]!.weight = 2)));
    expect(k.weights()).toEqual({ a: 4, b: 2 });

    // The file changes a: the file wins.
    await k.lb.removePolicy('pin');
    await k.reload((c) => void ((c.pools.main!.backends![0]!.weight = 6)));
    expect(k.weights()).toEqual({ a: 6, b: 2 });
    // The policy saw its own change and the reload's verdicts as backend events.
    expect(seen.map((e) => `${e.kind} ${e.reason}`)).toEqual(expect.arrayContaining(['weight weight 4', 'kept weight 4 kept (runtime)', 'weight weight 1→2 (file)']));
  });

  it('refuses a second policy of the same name and a bad interval', async () => {
    const kit = await startKit({ backends: ['a'] });
    await kit.lb.use(definePolicy({ name: 'x', intervalMs: 10, tick() {} }));
    await expect(kit.lb.use(definePolicy({ name: 'x' }))).rejects.toMatchObject({ code: 'SWITCHYARD_ERR_CONFLICT' });
    await expect(kit.lb.use(definePolicy({ name: 'y', intervalMs: 0, tick() {} }))).rejects.toThrow(/intervalMs must be a positive number/);
    expect(() => kit.lb.removePolicy('nope')).toThrow(expect.objectContaining({ code: 'SWITCHYARD_ERR_NOT_FOUND' }));
  });
});
