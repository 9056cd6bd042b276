/**
 * Opt-in hooks end to end (issue 18): an HTTP listener whose routes ask a TypeScript function
 * before choosing a backend, over real sockets, with the test kit's fake backends. Slow and
 * stuck hooks are held on a gate the test opens, so "the fallback came within the budget" is
 * shown by the response arriving while the hook has not answered — no timing is asserted
 * but a generous upper bound, and nothing sleeps.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, Switchyard, validateConfig } from '../ts/index.js';
import type { ConfigIssue, HookDecision, HookFn, HookRequest, StartOptions, SwitchyardConfig } from '../ts/index.js';
import { fakeBackend, type FakeBackend } from '../ts/testing/index.js';
import { waitFor } from './helpers.js';

/** What a test started, stopped after it whatever happened. */
const started: { lbs: Switchyard[]; backends: FakeBackend[]; gates: Gate[] } = { lbs: [], backends: [], gates: [] };

afterEach(async () => {
  for (const g of started.gates) g.open({}); // a hook still held answers, so nothing waits on it
  await Promise.all(started.lbs.map((lb) => lb.close({ drainMs: 0 })));
  await Promise.all(started.backends.map((b) => b.close()));
  started.lbs = [];
  started.backends = [];
  started.gates = [];
});

/** A hook answer the test releases. */
interface Gate {
  promise: Promise<HookDecision>;
  open(d: HookDecision): void;
}

function gate(): Gate {
  let open!: (d: HookDecision) => void;
  const promise = new Promise<HookDecision>((resolve) => (open = resolve));
  const g = { promise, open };
  started.gates.push(g);
  return g;
}

async function backends(...ids: string[]): Promise<Record<string, FakeBackend>> {
  const list = await Promise.all(ids.map((id) => fakeBackend(id)));
  started.backends.push(...list);
  return Object.fromEntries(list.map((b) => [b.id, b]));
}

/**
 * One HTTP listener: `/hooked/*` asks hook `hook` (budget and fallback given), `/plain/*` has
 * no hook; pools `a`, `b`, `fallback`, each with one backend of its name.
 */
async function start(hook: { name?: string; budget?: string; fallback: HookDecision }, options: StartOptions = {}, extraPools: SwitchyardConfig['pools'] = {}): Promise<{ lb: Switchyard; base: string }> {
  const b = await backends('a', 'b', 'fallback');
  const config: SwitchyardConfig = {
    workers: 1,
    admin: { address: '127.0.0.1:0' },
    listeners: {
      web: {
        address: '127.0.0.1:0',
        protocol: 'http',
        routes: [
          { name: 'hooked', match: { path_prefix: '/hooked/' }, pool: 'a', hook: { name: hook.name ?? 'tenant', ...(hook.budget ? { budget: hook.budget as '1s' } : {}), fallback: hook.fallback } },
          { name: 'plain', match: { path_prefix: '/plain/' }, pool: 'a' },
        ],
      },
    },
    pools: {
      a: { backends: [{ address: b.a!.address }] },
      b: { backends: [{ address: b.b!.address }] },
      fallback: { backends: [{ address: b.fallback!.address }] },
      ...extraPools,
    },
  };
  const lb = await Switchyard.start(config, options);
  started.lbs.push(lb);
  return { lb, base: `http://${lb.address('web').address}` };
}

/** GET `url`: status, the answering backend (x-backend) and the body. */
async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; backend: string | null; body: string }> {
  const r = await fetch(url, { headers });
  return { status: r.status, backend: r.headers.get('x-backend'), body: await r.text() };
}

/** The hook's counters in `lb.stats()`. */
function counts(lb: Switchyard, hook = 'tenant') {
  return lb.stats().hooks.find((h) => h.name === hook);
}

describe('route hooks', () => {
  it('routes to the pool a hook picks from a header; requests of a route without a hook never reach JavaScript', async () => {
    const seen: HookRequest[] = [];
    const tenant: HookFn = (req) => {
      seen.push(req);
      return req.headers['x-tenant'] === 'b' ? { pool: 'b' } : {};
    };
    const { lb, base } = await start({ fallback: { pool: 'fallback' } }, { hooks: { tenant } });
    expect(await get(`${base}/hooked/x?q=1`, { 'x-tenant': 'b' })).toMatchObject({ status: 200, backend: 'b' });
    expect(await get(`${base}/hooked/y`, { 'x-tenant': 'other' })).toMatchObject({ status: 200, backend: 'a' }); // {}: the route's pool
    expect(seen[0]).toMatchObject({ listener: 'web', rule: 'hooked', method: 'GET', host: '127.0.0.1', path: '/hooked/x', query: 'q=1' });
    expect(seen[0]!.headers['x-tenant']).toBe('b');
    expect(seen[0]!.client).toMatch(/^127\.0\.0\.1:\d+$/);
    for (let i = 0; i < 20; i++) expect(await get(`${base}/plain/${i}`, { 'x-tenant': 'b' })).toMatchObject({ status: 200, backend: 'a' });
    expect(seen).toHaveLength(2);
    expect(counts(lb)).toMatchObject({ calls: 2, answered: 2, timeout: 0, error: 0, full: 0, unregistered: 0, invalid: 0 });
  });

  it('a hook that does not answer within its budget gets the fallback while it still runs: counted timeout, its late answer dropped and counted', async () => {
    const held = gate();
    let called = 0;
    const { lb, base } = await start({ budget: '20ms', fallback: { pool: 'fallback' } }, {
      hooks: {
        tenant: () => {
          called++;
          return held.promise;
        },
      },
    });
    const t0 = performance.now();
    const r = await get(`${base}/hooked/slow`);
    const ms = performance.now() - t0;
    // The hook has not answered (its gate is shut), yet the request was served by the fallback.
    expect(r).toMatchObject({ status: 200, backend: 'fallback' });
    expect(called).toBe(1);
    expect(ms).toBeLessThan(5_000); // generous bound on a loaded box; typically budget + a few ms
    console.log(`hooks.spec: a 20 ms budget overrun answered by the fallback in ${ms.toFixed(1)} ms`);
    expect(counts(lb)).toMatchObject({ calls: 1, timeout: 1, answered: 0, late: 0 });
    held.open({ pool: 'b' });
    await waitFor(() => counts(lb)?.late === 1, 'the late answer is counted');
  });

  it('a throwing or rejecting hook gets the fallback, counted as error', async () => {
    const { lb, base } = await start({ fallback: { pool: 'fallback' } }, {
      hooks: {
        tenant: (req) => {
          if (req.path === '/hooked/throw') throw new Error('tenant map unavailable');
          return Promise.reject(new Error('rejected'));
        },
      },
    });
    expect(await get(`${base}/hooked/throw`)).toMatchObject({ status: 200, backend: 'fallback' });
    expect(await get(`${base}/hooked/reject`)).toMatchObject({ status: 200, backend: 'fallback' });
    expect(counts(lb)).toMatchObject({ calls: 2, error: 2, answered: 0 });
  });

  it('beyond the calls allowed in flight, a request gets the fallback at once, counted as full', async () => {
    const held = gate();
    let called = 0;
    const { lb, base } = await start({ budget: '10s', fallback: { pool: 'fallback' } }, {
      hookQueue: 1,
      hooks: {
        tenant: () => {
          called++;
          return held.promise;
        },
      },
    });
    const first = get(`${base}/hooked/first`);
    await waitFor(() => called === 1, 'the first call reaches the hook');
    // One call waits (its budget is 10 s): the second gets the fallback without waiting for it.
    expect(await get(`${base}/hooked/second`)).toMatchObject({ status: 200, backend: 'fallback' });
    expect(called).toBe(1);
    expect(counts(lb)).toMatchObject({ calls: 1, full: 1 });
    held.open({ pool: 'b' });
    expect(await first).toMatchObject({ status: 200, backend: 'b' });
    expect(counts(lb)).toMatchObject({ calls: 2, full: 1, answered: 1 });
  });

  it('a deny decision is answered by Switchyard with that status', async () => {
    const { lb, base } = await start({ fallback: {} }, { hooks: { tenant: (req) => (req.headers.authorization ? {} : { deny: 451 }) } });
    const denied = await get(`${base}/hooked/x`);
    expect(denied.status).toBe(451);
    expect(denied.backend).toBeNull();
    expect(JSON.parse(denied.body)).toEqual({ error: { status: 451, code: 'denied', message: 'a rule or its hook denied this request' } });
    expect(await get(`${base}/hooked/x`, { authorization: 'Bearer t' })).toMatchObject({ status: 200, backend: 'a' });
    expect(counts(lb)).toMatchObject({ calls: 2, answered: 2 });
  });

  it('an unknown pool, a pool of tcp listeners or a malformed answer is invalid, a missing function unregistered: all get the fallback', async () => {
    const pick: Record<string, HookDecision> = { '/hooked/nopool': { pool: 'nope' }, '/hooked/pp': { pool: 'pp' }, '/hooked/both': { pool: 'a', deny: 403 } };
    const { lb, base } = await start({ fallback: { deny: 503 } }, { hooks: { tenant: (req) => pick[req.path ?? ''] } }, {
      // Writes PROXY headers: only for tcp listeners, so not a pool an HTTP request may go to.
      pp: { backends: [{ address: '127.0.0.1:9' }], proxy_protocol: 'v2' },
    });
    for (const path of Object.keys(pick)) expect((await get(`${base}${path}`)).status, path).toBe(503);
    expect(counts(lb)).toMatchObject({ calls: 3, invalid: 3 });
    expect(lb.removeHook('tenant')).toBe(true);
    expect((await get(`${base}/hooked/gone`)).status).toBe(503);
    expect(counts(lb)).toMatchObject({ calls: 4, invalid: 3, unregistered: 1 });
    lb.hook('tenant', () => ({ pool: 'b' }));
    expect(await get(`${base}/hooked/back`)).toMatchObject({ status: 200, backend: 'b' });
  });

  it('a hash key from the hook keeps each user on one backend of a consistent_hash pool', async () => {
    const ring = await backends('r1', 'r2', 'r3');
    const { base } = await start({ fallback: {} }, { hooks: { tenant: (req) => ({ pool: 'ring', hash_key: req.headers['x-user'] ?? 'anonymous' }) } }, {
      ring: { algorithm: 'consistent_hash', backends: Object.values(ring).map((b) => ({ address: b.address })) },
    });
    const first = new Map<string, string | null>();
    for (let round = 0; round < 2; round++) {
      for (let u = 0; u < 12; u++) {
        const r = await get(`${base}/hooked/u`, { 'x-user': `user-${u}` });
        if (round === 0) first.set(`user-${u}`, r.backend);
        else expect(r.backend).toBe(first.get(`user-${u}`));
      }
    }
    // The key is the user, not the (single) client address: users spread over the ring.
    expect(new Set(first.values()).size).toBeGreaterThan(1);
  });

  it('exports the counters in /metrics by hook and outcome', async () => {
    const { lb, base } = await start({ fallback: { pool: 'fallback' } }, { hooks: { tenant: () => ({ pool: 'b' }) } });
    await get(`${base}/hooked/1`);
    await get(`${base}/hooked/2`);
    const text = await (await fetch(`http://${lb.adminAddress()!.address}/metrics`)).text();
    expect(text).toContain('switchyard_hook_calls_total{hook="tenant",outcome="answered"} 2');
    expect(text).toContain('switchyard_hook_calls_total{hook="tenant",outcome="timeout"} 0');
    expect(text).toContain('switchyard_hook_late_answers_total{hook="tenant"} 0');
  });
});

describe('route hook configuration', () => {
  /** The issues `validateConfig` reports for a route with `hook` (pool `pp` writes PROXY headers). */
  function issues(hook: unknown): ConfigIssue[] {
    const config = {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http', routes: [{ pool: 'a', hook }] }, tcp: { address: '127.0.0.1:0', pool: 'pp' } },
      pools: { a: { backends: [{ address: '127.0.0.1:1' }] }, pp: { backends: [{ address: '127.0.0.1:2' }], proxy_protocol: 'v1' } },
    };
    try {
      validateConfig(config as SwitchyardConfig, 'cfg.yaml');
    } catch (err) {
      if (err instanceof ConfigError) return err.issues;
      throw err;
    }
    return [];
  }
  const at = 'listeners.web.routes[0].hook';

  it('resolves the budget default and the fallback', () => {
    const r = validateConfig(
      {
        listeners: { web: { address: '127.0.0.1:0', protocol: 'http', routes: [{ pool: 'a', hook: { name: 'tenant', fallback: { pool: 'a', hash_key: 'k' } } }] } },
        pools: { a: { backends: [{ address: '127.0.0.1:1' }] } },
      },
      'cfg.yaml',
    );
    expect(r.listeners[0]!.http!.routes[0]!.hook).toEqual({ name: 'tenant', budget_ms: 2, fallback: { pool: 'a', deny: null, hash_key: 'k', tag: null } });
  });

  it('names the field of a bad hook: missing fallback, unknown pool, budget, pool with deny, status, unknown key', () => {
    expect(issues({ name: 'tenant' })).toEqual([{ path: `${at}.fallback`, message: expect.stringContaining('missing') as string }]);
    expect(issues({ name: 'tenant', fallback: { pool: 'nope' } })).toEqual([{ path: `${at}.fallback.pool`, message: expect.stringContaining('unknown pool "nope"') as string }]);
    expect(issues({ name: 'tenant', budget: '0ms', fallback: {} })[0]).toMatchObject({ path: `${at}.budget` });
    expect(issues({ name: 'tenant', budget: '11s', fallback: {} })[0]).toMatchObject({ path: `${at}.budget` });
    expect(issues({ name: 'tenant', fallback: { pool: 'a', deny: 403 } })[0]).toMatchObject({ path: `${at}.fallback`, message: 'pool and deny exclude each other' });
    expect(issues({ name: 'tenant', fallback: { deny: 200 } })[0]).toMatchObject({ path: `${at}.fallback.deny`, message: 'expected true or an HTTP status 400..599, got 200' });
    expect(issues({ fallback: {} })[0]).toMatchObject({ path: `${at}.name` });
    expect(issues({ name: 'tenant', fallback: {}, budgt: '1ms' })[0]).toMatchObject({ path: `${at}.budgt` });
    // An HTTP request never goes to a pool that writes PROXY headers, a fallback's included.
    expect(issues({ name: 'tenant', fallback: { pool: 'pp' } })[0]).toMatchObject({ path: 'pools.pp.proxy_protocol' });
  });
});
