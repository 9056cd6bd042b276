// Decision traces on real sockets: an HTTP and a TCP listener tracing every decision over a pool
// where one backend is drained, one refuses connections, one is down by its active check and one
// has weight 0; sampling off, switched on at runtime, kept and replaced by reloads; the admin API;
// and the test kit's `traces()` / `assertTrace`.
import { afterEach, describe, expect, it } from 'vitest';
import { Switchyard, ConfigError, NotFoundError, validateConfig, type BackendConfig, type PoolConfig, type SwitchyardConfig, type Trace } from '../ts/index.js';
import { assertTrace, fakeBackend, findTraces, httpRequests, tcpConnections, waitFor, type FakeBackend } from '../ts/testing/index.js';
import { openapiDocument } from '../ts/admin/openapi.js';
import { validate } from '../ts/admin/schema.js';
import { kitsClosedAfterEach } from './fixtures/kits.js';
import { connect, readLine } from './helpers.js';

const startKit = kitsClosedAfterEach();

/** What a test started, stopped after it whatever happened. */
const started: { lbs: Switchyard[]; fakes: FakeBackend[] } = { lbs: [], fakes: [] };
afterEach(async () => {
  await Promise.all(started.lbs.splice(0).map((lb) => lb.close({ drainMs: 0 })));
  await Promise.all(started.fakes.splice(0).map((f) => f.close()));
});

async function fake(id: string, protocol: 'http' | 'tcp'): Promise<FakeBackend> {
  const f = await fakeBackend(id, protocol);
  started.fakes.push(f);
  return f;
}

async function start(config: SwitchyardConfig): Promise<Switchyard> {
  const lb = await Switchyard.start(config);
  started.lbs.push(lb);
  return lb;
}

/** A pool's five kinds of backend: the one that serves and four that cannot. */
interface Five {
  ok: FakeBackend;
  drained: FakeBackend;
  refused: FakeBackend;
  down: FakeBackend;
  zero: FakeBackend;
}

async function five(protocol: 'http' | 'tcp'): Promise<Five> {
  const [ok, drained, refused, down, zero] = await Promise.all(['ok', 'drained', 'refused', 'down', 'zero'].map((id) => fake(`${protocol}-${id}`, protocol)));
  await Promise.all([refused!.refuse(), down!.refuse()]);
  return { ok: ok!, drained: drained!, refused: refused!, down: down!, zero: zero! };
}

/** The pool over `f`: `down` alone has an active check (so `refused` is attempted, not checked down). */
function pool(f: Five): PoolConfig & { backends: BackendConfig[] } {
  return {
    algorithm: 'round_robin',
    retries: 3,
    connect_timeout: '2s',
    backends: [
      { address: f.ok.address },
      { address: f.drained.address, state: 'drain' },
      { address: f.refused.address },
      { address: f.down.address, health_check: { type: 'tcp', interval: '100ms', timeout: '100ms', fall: 1 } },
      { address: f.zero.address, weight: 0 },
    ],
  };
}

describe('decision traces', () => {
  it('HTTP and TCP: the winner, each skipped backend with its reason, the failed attempt with its error', async () => {
    const [web, raw] = await Promise.all([five('http'), five('tcp')]);
    const lb = await start({
      workers: 1,
      listeners: {
        web: { address: '127.0.0.1:0', protocol: 'http', pool: 'web', trace_sample: 1 },
        raw: { address: '127.0.0.1:0', pool: 'raw', trace_sample: 1 },
      },
      pools: { web: pool(web), raw: pool(raw) },
    });
    await waitFor(() => lb.health().filter((h) => h.status === 'down').length === 2, 'the checks to mark both "down" backends down');
    const w = lb.address('web');
    const r = lb.address('raw');
    // Round robin puts every other decision on `refused` first: its failed attempt, then `ok`.
    // Sent until such a decision is traced with the check verdict applied (it reaches the data
    // plane in the turn after the monitor's): passive ejection of `refused` needs 3 failures.
    const expected = (f: Five) => ({
      winner: f.ok.address,
      skipped: { [f.drained.address]: 'drain', [f.down.address]: 'check_down', [f.zero.address]: 'weight_zero' } as const,
      failed: { [f.refused.address]: 'connect failed' },
    });
    await waitFor(async () => {
      const sent = await httpRequests(w.host, w.port, 1);
      expect(sent.statuses).toEqual({ '200': 1 });
      return findTraces(lb.traces({ listener: 'web' }), expected(web)).length > 0;
    }, 'an HTTP trace with a failed attempt on "refused" and every other reason');
    await waitFor(async () => {
      const sent = await tcpConnections(r.host, r.port, 1);
      expect(sent.failed, sent.errors.join('; ')).toBe(0);
      return findTraces(lb.traces({ listener: 'raw' }), expected(raw)).length > 0;
    }, 'a TCP trace with a failed attempt on "refused" and every other reason');

    const [h] = assertTrace(lb.traces({ listener: 'web' }), { kind: 'http', rule: 'web.default', pool: 'web', outcome: 'answered', ...expected(web) });
    expect(h!.status).toBe(200);
    expect(h!.attempts).toEqual([
      { backend: web.refused.address, error: expect.stringMatching(/^connect failed: .*refused/i) },
      { backend: web.ok.address, error: null },
    ]);
    expect(h!.candidates.map((c) => c.address)).toEqual(pool(web).backends.map((b) => b.address));
    expect(h!.candidates.find((c) => c.address === web.down.address)).toMatchObject({ health: 'down', state: 'ready', verdict: 'skipped' });
    expect(h!.candidates.find((c) => c.address === web.zero.address)).toMatchObject({ weight: 0, reason: 'weight_zero' });
    expect(h!.key).toBeNull(); // round robin reads no key

    const [t] = assertTrace(lb.traces({ listener: 'raw' }), { kind: 'tcp', rule: null, pool: 'raw', outcome: 'connected', ...expected(raw) });
    expect(t!.status).toBeNull();
    expect(t!.attempts.map((a) => a.backend)).toEqual([raw.refused.address, raw.ok.address]);

    // After 3 failures in a row `refused` is passively ejected: later traces skip it as such.
    await waitFor(async () => {
      await tcpConnections(r.host, r.port, 1);
      return findTraces(lb.traces({ listener: 'raw' }), { winner: raw.ok.address, skipped: { [raw.refused.address]: 'ejected' } }).length > 0;
    }, 'a TCP trace with "refused" ejected');
    const ejected = findTraces(lb.traces({ listener: 'raw' }), { skipped: { [raw.refused.address]: 'ejected' } })[0]!;
    expect(ejected.candidates.find((c) => c.address === raw.refused.address)!.detail).toMatch(/^\d+ ms left$/);
    expect(ejected.attempts).toEqual([{ backend: raw.ok.address, error: null }]);

    // Every traced decision named its listener; seq grows; since and limit select.
    const all = lb.traces();
    expect(new Set(all.map((x) => x.listener))).toEqual(new Set(['web', 'raw']));
    expect(all.map((x) => x.seq)).toEqual([...all.map((x) => x.seq)].sort((a, b) => a - b));
    expect(lb.traces({ limit: 2 }).map((x) => x.seq)).toEqual(all.slice(-2).map((x) => x.seq));
    expect(lb.traces({ since: all.at(-2)!.seq }).map((x) => x.seq)).toEqual([all.at(-1)!.seq]);
    expect(lb.traces({ pool: 'web' }).every((x) => x.pool === 'web')).toBe(true);
  });

  it('no backend left: the trace says why there is no winner', async () => {
    const refused = await fake('gone', 'tcp');
    await refused.refuse();
    const lb = await start({
      workers: 1,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main', trace_sample: 1 } },
      pools: { main: { retries: 0, passive: { consecutive_failures: 0 }, backends: [{ address: refused.address }, { address: '127.0.0.1:9', state: 'maint' }] } },
    });
    const { host, port } = lb.address('front');
    await tcpConnections(host, port, 1);
    await waitFor(() => lb.traces().length === 1, 'the trace of the refused connection');
    assertTrace(lb.traces(), { outcome: 'all_failed', winner: null, failed: { [refused.address]: 'connect failed' }, skipped: { '127.0.0.1:9': 'maint' } }, 1);
    await lb.drain('main', refused.address);
    await tcpConnections(host, port, 1);
    await waitFor(() => lb.traces().length === 2, 'the trace of the connection nothing could take');
    const [last] = lb.traces({ limit: 1 });
    expect(last).toMatchObject({ outcome: 'no_backend', winner: null, attempts: [] });
  });

  it('a backend at its max_connections is skipped as full, a backup as idle while a primary serves', async () => {
    const [x, y, spare] = await Promise.all([fake('x', 'tcp'), fake('y', 'tcp'), fake('spare', 'tcp')]);
    const lb = await start({
      workers: 1,
      listeners: { front: { address: '127.0.0.1:0', pool: 'main', trace_sample: 1 } },
      pools: { main: { max_connections: 1, backends: [{ address: x.address }, { address: y.address }, { address: spare.address, backup: true }] } },
    });
    const held = await connect(lb.address('front').port);
    try {
      const first = await readLine(held); // the fake names itself: connected, and held open
      const busy = first === 'x' ? x : y;
      const other = first === 'x' ? y : x;
      const second = await connect(lb.address('front').port);
      try {
        expect(await readLine(second)).toBe(other.id);
        await waitFor(() => lb.traces().length === 2, 'both connections traced');
        const [t] = assertTrace(lb.traces({ limit: 1 }), { winner: other.address, skipped: { [busy.address]: 'full', [spare.address]: 'backup_idle' } }, 1);
        expect(t!.candidates.find((c) => c.address === busy.address)).toMatchObject({ active: 1, detail: 'at its max_connections (1)' });
      } finally {
        second.destroy();
      }
    } finally {
      held.destroy();
    }
  });

  it('sample 0 traces nothing; the runtime override turns tracing on and off; a reload keeps it unless the file changes it', async () => {
    const a = await fake('a', 'tcp');
    const config: SwitchyardConfig = {
      workers: 1,
      listeners: { quiet: { address: '127.0.0.1:0', pool: 'main' }, loud: { address: '127.0.0.1:0', pool: 'main', trace_sample: 1 } },
      pools: { main: { backends: [{ address: a.address }] } },
    };
    const lb = await start(config);
    const { host, port } = lb.address('quiet');
    const accepted = () => lb.stats().listeners.find((l) => l.name === 'quiet')!.accepted;
    const connect = async (n: number) => {
      const before = accepted();
      const sent = await tcpConnections(host, port, n);
      expect(sent.failed, sent.errors.join('; ')).toBe(0);
      await waitFor(() => accepted() === before + n && lb.stats().connections_active === 0, 'the connections to be served and closed');
    };
    await connect(5);
    expect(lb.traces({ listener: 'quiet' })).toEqual([]);

    lb.setTraceSample('quiet', 1);
    await connect(3);
    await waitFor(() => lb.traces({ listener: 'quiet' }).length === 3, 'three traces once sampling is on');
    assertTrace(lb.traces({ listener: 'quiet' }), { winner: a.address, outcome: 'connected' }, 3);

    // An update that leaves trace_sample as it was keeps the runtime rate...
    await lb.update(config);
    await connect(2);
    await waitFor(() => lb.traces({ listener: 'quiet' }).length === 5, 'traces after an unchanged reload');
    // ...and one that changes it replaces the runtime rate.
    await lb.update({ ...config, listeners: { ...config.listeners, quiet: { ...config.listeners.quiet!, trace_sample: 0.5 } } });
    await lb.update(config);
    await connect(4);
    expect(lb.traces({ listener: 'quiet' })).toHaveLength(5);

    lb.setTraceSample('quiet', 1);
    lb.setTraceSample('quiet', 0);
    await connect(2);
    expect(lb.traces({ listener: 'quiet' })).toHaveLength(5);

    expect(() => lb.setTraceSample('quiet', 1.5)).toThrow(ConfigError);
    expect(() => lb.setTraceSample('quiet', 1.5)).toThrow(/listeners\.quiet\.trace_sample: expected 0\.\.1, got 1\.5/);
    expect(() => lb.setTraceSample('nope', 1)).toThrow(NotFoundError);
  });

  it('trace_sample is validated with its path', () => {
    const base = (l: object) => ({ listeners: { front: { address: '127.0.0.1:0', pool: 'main', ...l } }, pools: { main: { backends: [{ address: '127.0.0.1:1' }] } } });
    expect(validateConfig(base({ trace_sample: 0.25 }), 'x').listeners[0]!.trace_sample).toBe(0.25);
    expect(validateConfig(base({}), 'x').listeners[0]!.trace_sample).toBe(0);
    for (const bad of [1.5, -0.1, '1']) {
      expect(() => validateConfig(base({ trace_sample: bad }), 'x')).toThrow(/listeners\.front\.trace_sample: expected a number from 0 to 1/);
    }
    const udp = base({ protocol: 'udp', trace_sample: 1 });
    expect(() => validateConfig(udp, 'x')).toThrow(/listeners\.front\.trace_sample: not for protocol: udp/);
  });

  it('the admin API switches sampling on and lists traces as its document says', async () => {
    const a = await fake('a', 'http');
    const token = 'traces-spec-admin-token';
    const lb = await start({
      workers: 1,
      listeners: { front: { address: '127.0.0.1:0', protocol: 'http', pool: 'main' } },
      pools: { main: { backends: [{ address: a.address }, { address: '127.0.0.1:9', weight: 0 }] } },
      admin: { address: '127.0.0.1:0', token },
    });
    const admin = lb.adminAddress()!.address;
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`http://${admin}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, json: (await res.json()) as any };
    };
    const doc = openapiDocument();
    const { host, port } = lb.address('front');

    await httpRequests(host, port, 2);
    expect((await call('GET', '/api/traces')).json).toEqual({ traces: [] });
    expect(await call('PUT', '/api/listeners/front/trace-sample', { rate: 1 })).toEqual({ status: 200, json: { listener: 'front', rate: 1 } });
    await httpRequests(host, port, 2);
    await waitFor(async () => (await call('GET', '/api/traces?listener=front')).json.traces.length === 2, 'two traces through the admin API');
    const listed = await call('GET', '/api/traces?listener=front&limit=1');
    expect(listed.status).toBe(200);
    expect(validate(listed.json, { type: 'object', properties: { traces: { type: 'array', items: { $ref: '#/components/schemas/Trace' } } } }, doc, 'response')).toEqual([]);
    const [t] = listed.json.traces as Trace[];
    expect(t).toMatchObject({ listener: 'front', kind: 'http', rule: 'front.default', winner: a.address, outcome: 'answered', status: 200 });
    expect(t!.candidates[1]).toMatchObject({ address: '127.0.0.1:9', verdict: 'skipped', reason: 'weight_zero' });
    const since = await call('GET', `/api/traces?since=${t!.seq}`);
    expect(since.json.traces).toEqual([]);

    const err = (r: { status: number; json: any }, status: number, code: string) => {
      expect(r.status).toBe(status);
      expect(r.json.error.code).toBe(code);
      expect(validate(r.json, { $ref: '#/components/schemas/Error' }, doc)).toEqual([]);
    };
    err(await call('GET', '/api/traces?listener=nope'), 404, 'not_found');
    err(await call('GET', '/api/traces?pool=nope'), 404, 'not_found');
    err(await call('GET', '/api/traces?limit=0'), 400, 'bad_request');
    err(await call('GET', '/api/traces?color=red'), 400, 'bad_request');
    err(await call('PUT', '/api/listeners/front/trace-sample', { rate: 2 }), 400, 'bad_request');
    err(await call('PUT', '/api/listeners/front/trace-sample', { rate: '1' }), 400, 'bad_request');
    err(await call('PUT', '/api/listeners/nope/trace-sample', { rate: 1 }), 404, 'not_found');
  });
});

describe('test kit: traces', () => {
  it('kit.traces() names backends by id; assertTrace checks winner, skips and failures', async () => {
    const k = await startKit({ backends: ['a', 'b', 'c', 'd'], listener: { trace_sample: 1 }, pool: { retries: 3 } });
    await k.lb.drain(k.pool, k.addressOf('b'));
    await k.lb.setWeight(k.pool, k.addressOf('c'), 0);
    await k.backends.d.refuse();
    const r = await k.send(4);
    expect(r.byBackend).toEqual({ a: 4 });
    await waitFor(() => k.traces().length === 4, 'four traces');
    const traces = k.traces();
    assertTrace(traces, { pool: 'main', winner: 'a', skipped: { b: 'drain', c: 'weight_zero' } }, 4);
    assertTrace(traces, { winner: 'a', failed: { d: 'connect failed' } });
    expect(traces[0]!.winner_id).toBe('a');
    expect(traces[0]!.candidates.map((c) => c.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(() => assertTrace(traces, { winner: 'b' })).toThrow(/expected a trace\(s\) matching \{"winner":"b"\}, found 0; traces:\n {2}#\d+ http front\/front\.default → main: answered, winner a; a=chosen b=skipped\(drain\)/);
  });
});
