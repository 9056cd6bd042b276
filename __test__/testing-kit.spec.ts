// The test kit itself, on real sockets: each behaviour of the fake backends as a client of the
// balancer sees it (HTTP and TCP), the manual clock, and the kit under node:test.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { kitsClosedAfterEach } from './fixtures/kits.js';
import { ManualClock, assertOnly, assertShare } from '../ts/testing/index.js';

const startKit = kitsClosedAfterEach();

describe('test kit', () => {
  it('HTTP fakes answer, fail, reset, refuse and come back, switched at runtime', async () => {
    const k = await startKit({ backends: ['a', 'b'], pool: { retries: 0 } });
    const even = await k.send(40);
    assertShare(even, 'a', 0.4, 0.6);
    expect(even.statuses).toEqual({ '200': 40 });

    await k.backends.b.fail(500);
    const failing = await k.send(20);
    expect(failing.byBackend).toEqual({ a: 10, b: 10 });
    expect(failing.statuses).toEqual({ '200': 10, '500': 10 });

    await k.backends.b.reset();
    const reset = await k.send(20);
    expect(reset.byBackend.b ?? 0).toBe(0);
    expect(reset.failed).toBeGreaterThan(0); // Switchyard's own 502 (no x-backend)

    await k.backends.b.refuse();
    const before = k.backends.b.hits;
    await k.send(10);
    expect(k.backends.b.hits).toBe(before);

    // Back, and slow: the delay is real time (asserted as a lower bound only). b may still be
    // passively ejected after the refused connects; then a answers both.
    await k.backends.b.answer();
    await Promise.all([k.backends.a.delay(30), k.backends.b.delay(30)]);
    const t0 = Date.now();
    const slow = await k.send(2, { concurrency: 1 });
    expect(slow.failed, slow.errors.join('; ')).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
  });

  it('TCP fakes: first line names the backend; fail closes, refuse refuses', async () => {
    const k = await startKit({ protocol: 'tcp', backends: { a: {}, b: { weight: 3 } }, pool: { retries: 0 } });
    const r = await k.send(40);
    assertShare(r, 'b', 0.7, 0.8);
    await k.backends.a.fail();
    const failing = await k.send(8, { concurrency: 1 });
    expect(failing.byBackend.b).toBe(6);
    expect(failing.failed).toBe(2);
    await k.backends.a.answer();
    await k.lb.drain(k.pool, k.addressOf('b'));
    assertOnly(await k.send(5), ['a']);
  });

  it('the manual clock runs due ticks in order and awaits each', async () => {
    const clock = new ManualClock(1000);
    const log: string[] = [];
    clock.every(10, async () => {
      await new Promise((r) => setImmediate(r));
      log.push(`a@${clock.now()}`);
    });
    const b = clock.every(25, () => void log.push(`b@${clock.now()}`));
    await clock.advance(30);
    expect(log).toEqual(['a@1010', 'a@1020', 'b@1025', 'a@1030']);
    b.cancel();
    await clock.advance(10);
    expect(log.at(-1)).toBe('a@1040');
    expect(clock.now()).toBe(1040);
  });

  it('works under node:test', async () => {
    const root = join(import.meta.dirname, '..');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'jiti/register', '--test', join(root, '__test__/fixtures/kit-smoke.node-test.ts')], { cwd: root, timeout: 90_000 });
    expect(stdout).toMatch(/^# pass 1$/m);
    expect(stdout).toMatch(/^# fail 0$/m);
  });
});
