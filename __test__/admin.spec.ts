// The admin HTTP API: config validation, every endpoint with its errors, auth,
// the OpenAPI document against the server, /metrics through promtool, the event
// stream, and API changes while traffic flows.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { connect as netConnect, createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BindError, Switchyard, validateConfig } from '../ts/index.js';
import type { SwitchyardConfig } from '../ts/index.js';
import { startAdmin, type AdminServer } from '../ts/admin/server.js';
import { ROUTES } from '../ts/admin/routes.js';
import { openapiDocument } from '../ts/admin/openapi.js';
import { validate, type Schema } from '../ts/admin/schema.js';
import { escapeLabel } from '../ts/admin/metrics.js';
import { connect, drain, echo, send, simpleConfig, waitFor, type Peer } from './helpers.js';
import { httpPeer, type HttpPeer } from './fixtures/http-peers.js';

const TOKEN = 'correct-horse-battery-staple';

interface Res {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body; `any` because it has a different shape per route and the assertions check it. */
  json: any;
}

interface Env {
  lb: Switchyard;
  admin: AdminServer;
  base: string;
  peers: Peer[];
  logs: { event: string; fields: Record<string, unknown> }[];
  /** Request with the token (when the env has one) unless `token` is given. */
  call(method: string, path: string, opts?: { json?: unknown; body?: string | Buffer; type?: string; token?: string | null; headers?: Record<string, string> }): Promise<Res>;
}

const envs: Env[] = [];
const dirs: string[] = [];

async function setup(opts: { token?: string | null; backends?: number; config?: (addrs: string[]) => SwitchyardConfig; configPath?: string } = {}): Promise<Env> {
  const peers = await Promise.all(Array.from({ length: opts.backends ?? 2 }, () => echo()));
  const addrs = peers.map((p) => p.address);
  const lb = await Switchyard.start(opts.config ? opts.config(addrs) : simpleConfig(addrs));
  const logs: Env['logs'] = [];
  const token = opts.token === undefined ? null : opts.token;
  const admin = await startAdmin(lb, { address: '127.0.0.1:0', token }, {
    logger: (event, fields = {}) => logs.push({ event, fields }),
    ...(opts.configPath ? { configPath: opts.configPath } : {}),
  });
  const base = `http://${admin.address.address}`;
  const env: Env = {
    lb,
    admin,
    base,
    peers,
    logs,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const t = o.token === undefined ? token : o.token;
      if (t) headers.authorization = `Bearer ${t}`;
      let body: string | Buffer | undefined = o.body;
      if (o.json !== undefined) body = JSON.stringify(o.json);
      if (body !== undefined) headers['content-type'] = o.type ?? 'application/json';
      // fetch takes bytes as a Uint8Array over an ArrayBuffer; a Buffer may sit on a shared pool.
      const bytes = typeof body === 'string' || body === undefined ? body : new Uint8Array(body);
      const r = await fetch(base + path, { method, headers, body: bytes, redirect: 'manual' });
      const text = await r.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: r.status, headers: r.headers, text, json };
    },
  };
  envs.push(env);
  return env;
}

afterEach(async () => {
  for (const e of envs.splice(0)) {
    await e.admin.close();
    await e.lb.close({ drainMs: 0 });
    for (const p of e.peers) await p.close();
  }
});

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Pools as the API shows them, for "nothing changed" checks. */
async function snapshot(env: Env): Promise<string> {
  const r = await env.call('GET', '/api/pools');
  return JSON.stringify(
    r.json.pools.map((p: any) => ({ name: p.name, algorithm: p.algorithm, backends: p.backends.map((b: any) => [b.address, b.weight, b.state, b.backup]) })),
  );
}

function expectError(r: Res, status: number, code: string): void {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(r.json).toMatchObject({ error: { code, message: expect.any(String) } });
}

const enc = encodeURIComponent;

describe('admin config', () => {
  const base = (admin: unknown) => ({
    listeners: { front: { address: '127.0.0.1:8080', pool: 'main' } },
    pools: { main: { backends: [{ address: '127.0.0.1:9000' }] } },
    ...(admin === undefined ? {} : { admin }),
  });
  const issues = (raw: unknown) => {
    try {
      validateConfig(raw, 'test');
      return [];
    } catch (err) {
      return (err as { issues: { path: string; message: string }[] }).issues;
    }
  };

  it('is off when absent and binds loopback by default', () => {
    expect(validateConfig(base(undefined), 't').admin).toBeNull();
    // 8479, not Prometheus' own 9090.
    expect(validateConfig(base({}), 't').admin).toEqual({ address: '127.0.0.1:8479', token: null });
    expect(validateConfig(base({ address: '[::1]:9100' }), 't').admin).toEqual({ address: '[::1]:9100', token: null });
    expect(validateConfig(base({ address: '127.8.9.10:9100' }), 't').admin?.token).toBeNull();
    expect(validateConfig(base({ address: '0.0.0.0:9100', token: TOKEN }), 't').admin).toEqual({ address: '0.0.0.0:9100', token: TOKEN });
  });

  it('refuses a non-loopback address without a token', () => {
    for (const address of ['0.0.0.0:9090', '10.1.2.3:9090', '[::]:9090', '[fd00::1]:9090']) {
      const found = issues(base({ address }));
      expect(found, address).toEqual([{ path: 'admin.token', message: expect.stringMatching(/required when admin.address is not loopback/) }]);
    }
  });

  it('rejects short or malformed tokens, unknown keys, bad addresses and a clash with a listener', () => {
    expect(issues(base({ token: 'short' }))).toEqual([{ path: 'admin.token', message: expect.stringMatching(/16\.\.1024 printable ASCII.*got a string of 5 characters/) }]);
    expect(issues(base({ token: 'has spaces in the middle' }))[0]?.path).toBe('admin.token');
    expect(issues(base({ token: 42 }))[0]?.path).toBe('admin.token');
    expect(issues(base({ tokn: TOKEN }))[0]).toMatchObject({ path: 'admin.tokn' });
    expect(issues(base({ address: 'example.com:80' }))[0]).toMatchObject({ path: 'admin.address' });
    expect(issues(base({ address: '127.0.0.1:8080' }))[0]).toMatchObject({ path: 'admin.address', message: expect.stringMatching(/conflicts with listeners.front/) });
    expect(issues(base('yes'))[0]).toMatchObject({ path: 'admin' });
    // The token is never echoed in messages.
    expect(JSON.stringify(issues(base({ token: 'secret-but-bad token!' })))).not.toContain('secret');
  });
});

describe('admin API: reads', () => {
  it('lists listeners, pools and one pool; unknown pool is 404', async () => {
    const env = await setup();
    const s = await connect(env.lb.address('front').port);
    s.write('hello');
    await waitFor(() => env.lb.stats().connections_active === 1, 'connection');

    const l = await env.call('GET', '/api/listeners');
    expect(l.status).toBe(200);
    expect(l.json.listeners).toEqual([expect.objectContaining({ name: 'front', pool: 'main', active: 1, accepted: 1 })]);

    const p = await env.call('GET', '/api/pools');
    expect(p.status).toBe(200);
    expect(p.json.pools).toHaveLength(1);
    const pool = p.json.pools[0];
    expect(pool).toMatchObject({ name: 'main', algorithm: 'round_robin', active: 1 });
    expect(pool.backends.map((b: any) => b.address)).toEqual(env.peers.map((x) => x.address));
    expect(pool.backends[0]).toMatchObject({ weight: 1, state: 'ready', status: 'up', available: true, check: null });

    const one = await env.call('GET', '/api/pools/main');
    expect(one.json.pool.name).toBe('main');
    expectError(await env.call('GET', '/api/pools/nope'), 404, 'not_found');
    s.destroy();
  });

  it('unknown routes are 404, wrong methods 405', async () => {
    const env = await setup();
    expectError(await env.call('GET', '/api/nothing'), 404, 'not_found');
    const r = await env.call('PATCH', '/api/pools');
    expectError(r, 405, 'method_not_allowed');
    expectError(await env.call('GET', '/api/pools/main/algorithm'), 405, 'method_not_allowed');
  });
});

describe('admin API: changes', () => {
  it('adds a backend (201), refuses a duplicate (409), an invalid address (422) and an unknown pool (404)', async () => {
    const env = await setup();
    const extra = await echo();
    env.peers.push(extra);
    const r = await env.call('POST', '/api/pools/main/backends', { json: { address: extra.address, weight: 3 } });
    expect(r.status, r.text).toBe(201);
    expect(r.json.pool.backends.find((b: any) => b.address === extra.address)).toMatchObject({ weight: 3, state: 'ready' });
    expect(env.lb.config.pools[0]!.backends).toHaveLength(3);
    expect(env.logs.find((l) => l.event === 'admin.change')?.fields).toMatchObject({ action: 'backend.add', pool: 'main', backend: extra.address, weight: 3 });

    const before = await snapshot(env);
    expectError(await env.call('POST', '/api/pools/main/backends', { json: { address: extra.address } }), 409, 'conflict');
    const bad = await env.call('POST', '/api/pools/main/backends', { json: { address: 'not-an-address' } });
    expectError(bad, 422, 'invalid_config');
    // Named after the pool and the request's field, not the validator's probe configuration.
    expect(bad.json.error.issues).toEqual([{ path: 'body.address', message: expect.stringContaining('not-an-address') }]);
    expect(bad.json.error.message).toMatch(/^invalid backend for pools\.main: body\.address: /);
    expect(bad.text).not.toMatch(/pools\.p\b|backends\[0\]/);
    expectError(await env.call('POST', '/api/pools/nope/backends', { json: { address: '127.0.0.1:1' } }), 404, 'not_found');
    expect(await snapshot(env)).toBe(before);
  });

  it('rejects malformed JSON, wrong types, unknown keys, wrong content types and oversized bodies without side effects', async () => {
    const env = await setup();
    const before = await snapshot(env);
    const eventsBefore = env.lb.events().length;
    const b0 = enc(env.peers[0]!.address);

    expectError(await env.call('POST', '/api/pools/main/backends', { body: '{"address": "127.0.0.1:1",' }), 400, 'bad_json');
    expectError(await env.call('PUT', `/api/pools/main/backends/${b0}/weight`, { body: 'weight=5' }), 400, 'bad_json');
    expectError(await env.call('POST', '/api/pools/main/backends', { json: { address: 5 } }), 400, 'bad_request');
    expectError(await env.call('POST', '/api/pools/main/backends', { json: { address: '127.0.0.1:1', weight: '2' } }), 400, 'bad_request');
    expectError(await env.call('POST', '/api/pools/main/backends', { json: { address: '127.0.0.1:1', colour: 'red' } }), 400, 'bad_request');
    expectError(await env.call('POST', '/api/pools/main/backends', { json: ['127.0.0.1:1'] }), 400, 'bad_request');
    expectError(await env.call('POST', '/api/pools/main/backends', { json: {} }), 400, 'bad_request');
    const wrongType = await env.call('PUT', `/api/pools/main/backends/${b0}/weight`, { json: { weight: 2.5 } });
    expectError(wrongType, 400, 'bad_request');
    expect(wrongType.json.error.issues).toEqual([{ path: 'body.weight', message: expect.stringMatching(/expected integer/) }]);
    expectError(await env.call('PUT', `/api/pools/main/backends/${b0}/weight`, { json: { weight: 1001 } }), 400, 'bad_request');
    expectError(await env.call('PUT', `/api/pools/main/backends/${b0}/weight`, { json: { weight: -1 } }), 400, 'bad_request');
    expectError(await env.call('PUT', `/api/pools/main/backends/${b0}/state`, { json: { state: 'down' } }), 400, 'bad_request');
    expectError(await env.call('PUT', '/api/pools/main/algorithm', { json: { algorithm: 'fastest' } }), 400, 'bad_request');
    expectError(await env.call('PUT', '/api/pools/main/algorithm', { json: null }), 400, 'bad_request');
    expectError(await env.call('PUT', '/api/pools/main/algorithm', { body: '{"algorithm":"random"}', type: 'text/plain' }), 400, 'bad_content_type');
    expectError(await env.call('PUT', '/api/pools/main/algorithm', { body: '{"algorithm":"random"}', type: 'application/x-www-form-urlencoded' }), 400, 'bad_content_type');
    // A JSON body with a charset parameter is fine.
    const withCharset = await env.call('PUT', `/api/pools/main/backends/${b0}/weight`, { body: '{"weight":1}', type: 'application/json; charset=utf-8' });
    expect(withCharset.status).toBe(200);

    // Oversized: declared length, and chunked without a length.
    const big = JSON.stringify({ address: '127.0.0.1:1', pad: 'x'.repeat(70 * 1024) });
    expectError(await env.call('POST', '/api/pools/main/backends', { body: big }), 413, 'payload_too_large');
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const rq = http.request(`${env.base}/api/pools/main/backends`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      rq.on('error', reject);
      for (let i = 0; i < 20; i++) rq.write('x'.repeat(8 * 1024));
      rq.end();
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body).error.code).toBe('payload_too_large');
    // Exactly at the limit is read (then fails as JSON with extra keys, not as too large).
    const atLimit = JSON.stringify({ address: '127.0.0.1:1', pad: '' });
    const padded = atLimit.replace('"pad":""', `"pad":"${'y'.repeat(64 * 1024 - atLimit.length)}"`);
    expect(Buffer.byteLength(padded)).toBe(64 * 1024);
    expectError(await env.call('POST', '/api/pools/main/backends', { body: padded }), 400, 'bad_request');

    expect(await snapshot(env)).toBe(before);
    // Only the one valid request (weight 1 → 1, with a charset) changed anything.
    expect(env.lb.events().slice(eventsBefore).map((e) => e.kind)).toEqual(['weight']);
    expect(env.logs.filter((l) => l.event === 'admin.change').map((l) => l.fields.action)).toEqual(['backend.weight']);
  });

  it('removes a backend by its URL-encoded address; unknown backend 404, last backend 409, bad encoding 400', async () => {
    const env = await setup();
    const [a, b] = env.peers.map((p) => p.address) as [string, string];
    expectError(await env.call('DELETE', `/api/pools/main/backends/${enc('127.0.0.1:1')}`), 404, 'not_found');
    expectError(await env.call('DELETE', `/api/pools/nope/backends/${enc(a)}`), 404, 'not_found');
    expectError(await env.call('DELETE', '/api/pools/main/backends/%E0%A4%A'), 400, 'bad_request');
    const r = await env.call('DELETE', `/api/pools/main/backends/${enc(a)}`);
    expect(r.status, r.text).toBe(200);
    expect(r.json.pool.backends.map((x: any) => x.address)).toEqual([b]);
    expect(env.logs.find((l) => l.event === 'admin.change')?.fields).toMatchObject({ action: 'backend.remove', pool: 'main', backend: a });
    // Unencoded colons work too.
    expectError(await env.call('DELETE', `/api/pools/main/backends/${b}`), 409, 'conflict');
    expect(env.lb.config.pools[0]!.backends.map((x) => x.address)).toEqual([b]);
  });

  it('changes a weight, a state and the algorithm, logging from → to', async () => {
    const env = await setup();
    const a = env.peers[0]!.address;
    let r = await env.call('PUT', `/api/pools/main/backends/${enc(a)}/weight`, { json: { weight: 7 } });
    expect(r.status, r.text).toBe(200);
    expect(r.json.pool.backends[0]).toMatchObject({ address: a, weight: 7 });
    r = await env.call('PUT', `/api/pools/main/backends/${enc(a)}/state`, { json: { state: 'drain' } });
    expect(r.status, r.text).toBe(200);
    expect(r.json.pool.backends[0]).toMatchObject({ state: 'drain', status: 'drain', available: false });
    r = await env.call('PUT', `/api/pools/main/backends/${enc(a)}/state`, { json: { state: 'maint' } });
    expect(r.json.pool.backends[0].status).toBe('maint');
    r = await env.call('PUT', `/api/pools/main/backends/${enc(a)}/state`, { json: { state: 'ready' } });
    expect(r.json.pool.backends[0].status).toBe('up');
    r = await env.call('PUT', '/api/pools/main/algorithm', { json: { algorithm: 'maglev' } });
    expect(r.status, r.text).toBe(200);
    expect(r.json.pool.algorithm).toBe('maglev');
    expect(env.lb.config.pools[0]!.algorithm).toBe('maglev');

    expectError(await env.call('PUT', `/api/pools/main/backends/${enc('127.0.0.1:1')}/weight`, { json: { weight: 2 } }), 404, 'not_found');
    expectError(await env.call('PUT', `/api/pools/nope/backends/${enc(a)}/state`, { json: { state: 'drain' } }), 404, 'not_found');
    expectError(await env.call('PUT', '/api/pools/nope/algorithm', { json: { algorithm: 'random' } }), 404, 'not_found');

    const changes = env.logs.filter((l) => l.event === 'admin.change').map((l) => l.fields);
    expect(changes).toEqual([
      expect.objectContaining({ action: 'backend.weight', pool: 'main', backend: a, from: 1, to: 7 }),
      expect.objectContaining({ action: 'backend.state', backend: a, from: 'ready', to: 'drain' }),
      expect.objectContaining({ action: 'backend.state', backend: a, from: 'drain', to: 'maint' }),
      expect.objectContaining({ action: 'backend.state', backend: a, from: 'maint', to: 'ready' }),
      expect.objectContaining({ action: 'pool.algorithm', pool: 'main', from: 'round_robin', to: 'maglev' }),
    ]);
    const kinds = (await env.call('GET', '/api/events')).json.events.map((e: any) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['weight', 'drain', 'maint', 'ready', 'algorithm']));
  });

  it('reloads the config file; an invalid file changes nothing and returns the issues; no file is 409', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-admin-'));
    dirs.push(dir);
    const path = join(dir, 'switchyard.json');
    let addrs: string[] = [];
    const env = await setup({
      backends: 3,
      configPath: path,
      config: (a) => {
        addrs = a;
        return simpleConfig(a.slice(0, 2));
      },
    });
    const front = env.lb.address('front');
    const fileConfig = (backends: unknown[]) => ({ ...simpleConfig([]), listeners: { front: { address: front.address, pool: 'main' } }, pools: { main: { backends } } });
    await writeFile(path, JSON.stringify(fileConfig(addrs.map((address) => ({ address })))));
    const r = await env.call('POST', '/api/reload');
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ reloaded: true, file: path, pools: ['main'], admin_restart_required: false });
    expect(env.lb.config.pools[0]!.backends).toHaveLength(3);
    expect(env.logs.find((l) => l.fields.action === 'config.reload')?.fields).toMatchObject({ pools_before: ['main(2)'], pools_after: ['main(3)'] });

    const before = await snapshot(env);
    await writeFile(path, JSON.stringify(fileConfig([{ address: 'nowhere' }, { address: addrs[0], weight: -1 }])));
    const bad = await env.call('POST', '/api/reload');
    expectError(bad, 422, 'invalid_config');
    expect(bad.json.error.issues.map((i: any) => i.path)).toEqual(['pools.main.backends[0].address', 'pools.main.backends[1].weight']);
    expect(await snapshot(env)).toBe(before);

    await writeFile(path, '{ not json');
    expectError(await env.call('POST', '/api/reload'), 422, 'invalid_config');
    expect(await snapshot(env)).toBe(before);

    const noFile = await setup();
    expectError(await noFile.call('POST', '/api/reload'), 409, 'no_config_file');
  });

  it('plans a change without applying it', async () => {
    const env = await setup({ backends: 3 });
    const [a, b] = env.peers.map((p) => p.address) as [string, string];
    await env.call('PUT', '/api/pools/main/algorithm', { json: { algorithm: 'consistent_hash' } });
    const before = await snapshot(env);
    const r = await env.call('GET', `/api/plan?pool=main&add=127.0.0.1:1&samples=20000`);
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ pool: 'main', algorithm_before: 'consistent_hash', algorithm_after: 'consistent_hash', keys: 20000, keyed: true });
    expect(r.json.moved).toBeGreaterThan(0.1);
    expect(r.json.moved).toBeLessThan(0.45);
    expect(r.json.after).toHaveLength(4);
    const w = await env.call('GET', `/api/plan?pool=main&weight=${enc(`${a}=3`)}&remove=${enc(b)}&algorithm=maglev&samples=5000`);
    expect(w.status, w.text).toBe(200);
    expect(w.json).toMatchObject({ algorithm_after: 'maglev' });
    expect(w.json.after.map((s: any) => s.address)).not.toContain(b);
    expect(await snapshot(env)).toBe(before);

    expectError(await env.call('GET', '/api/plan'), 400, 'bad_request');
    expectError(await env.call('GET', '/api/plan?pool=nope'), 404, 'not_found');
    expectError(await env.call('GET', '/api/plan?pool=main&weight=oops'), 400, 'bad_request');
    expectError(await env.call('GET', '/api/plan?pool=main&algorithm=fastest'), 400, 'bad_request');
    expectError(await env.call('GET', '/api/plan?pool=main&samples=0'), 400, 'bad_request');
    expectError(await env.call('GET', '/api/plan?pool=main&colour=red'), 400, 'bad_request');
    // Nothing is applied, so an impossible change is a bad query (400), not an invalid configuration.
    const impossible = await env.call('GET', '/api/plan?pool=main&remove=127.0.0.1:1');
    expectError(impossible, 400, 'bad_request');
    expect(impossible.json.error.issues).toEqual([{ path: 'query.remove', message: expect.stringContaining('has no backend 127.0.0.1:1') }]);
    expectError(await env.call('GET', `/api/plan?pool=main&add=${enc(a)}`), 400, 'bad_request');
  });
});

describe('admin auth', () => {
  it('requires the bearer token on every route when one is set', async () => {
    const env = await setup({ token: TOKEN });
    const paths: [string, string][] = ROUTES.filter((r) => !r.public).map((r) => [r.method, r.path.replace('{pool}', 'main').replace('{address}', enc(env.peers[0]!.address))]);
    paths.push(['GET', '/api/nothing']);
    for (const [method, path] of paths) {
      for (const token of [null, 'wrong-token-wrong-token', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
        const r = await env.call(method, path, { token, ...(method === 'GET' || method === 'DELETE' ? {} : { json: {} }) });
        expectError(r, 401, 'unauthorized');
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    const basic = await env.call('GET', '/api/pools', { token: null, headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
    expectError(basic, 401, 'unauthorized');
    expect((await env.call('GET', '/api/pools')).status).toBe(200);
    expect((await env.call('GET', '/metrics')).status).toBe(200);
    expect((await env.call('GET', '/')).status).toBe(200);
    expect(await snapshot(env)).toContain(env.peers[0]!.address);
    expect(env.lb.config.pools[0]!.backends).toHaveLength(2);
  });

  it('the dashboard takes ?token= once, sets an HttpOnly cookie that allows GETs only', async () => {
    const env = await setup({ token: TOKEN });
    expectError(await env.call('GET', '/?token=wrong-token-wrong-token', { token: null }), 401, 'unauthorized');
    const r = await env.call('GET', `/?token=${enc(TOKEN)}`, { token: null });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/');
    const cookie = r.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const pair = cookie.split(';')[0]!;
    const page = await env.call('GET', '/', { token: null, headers: { cookie: pair } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect((await env.call('GET', '/api/pools', { token: null, headers: { cookie: pair } })).status).toBe(200);
    const a = enc(env.peers[0]!.address);
    expectError(await env.call('PUT', `/api/pools/main/backends/${a}/weight`, { token: null, json: { weight: 3 }, headers: { cookie: pair } }), 401, 'unauthorized');
    expectError(await env.call('GET', '/api/pools', { token: null, headers: { cookie: 'switchyard_admin=forged' } }), 401, 'unauthorized');
    expect(env.lb.config.pools[0]!.backends[0]!.weight).toBe(1);
  });
});

/** Follow the example requests of the document against a live server and check the answers against it. */
describe('OpenAPI document', () => {
  const doc = openapiDocument() as any;

  it('lists exactly the routes the server has', () => {
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`));
    const served = ROUTES.map((r) => `${r.method} ${r.path}`);
    expect(documented.sort()).toEqual(served.sort());
    for (const r of ROUTES) {
      const op = doc.paths[r.path][r.method.toLowerCase()];
      expect(op.operationId).toBe(r.operationId);
      // A route with a body documents that very schema; one without documents none.
      if (r.body) {
        const ref = op.requestBody.content['application/json'].schema.$ref as string;
        expect(doc.components.schemas[ref.split('/').pop()!]).toBe(r.body);
        expect(op.responses['400']).toBeDefined();
        expect(op.responses['413']).toBeDefined();
      } else {
        expect(op.requestBody).toBeUndefined();
      }
      // The probes need no token (an empty `security`); every other route documents its 401.
      if (r.public) {
        expect(op.security).toEqual([]);
        expect(op.responses['401']).toBeUndefined();
      } else {
        expect(op.security).toBeUndefined();
        expect(op.responses['401']).toBeDefined();
      }
      for (const m of r.path.matchAll(/\{(\w+)\}/g)) expect(op.parameters.map((p: any) => p.name)).toContain(m[1]);
    }
    expect(doc.openapi).toBe('3.1.0');
    // Every $ref resolves.
    const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/\w+"/g) ?? [];
    for (const ref of refs) expect(doc.components.schemas[JSON.parse(ref).split('/').pop()], ref).toBeDefined();
  });

  it('example requests validate, and the live server answers them as documented', async () => {
    const env = await setup({ backends: 3 });
    const served = await env.call('GET', '/api/openapi.json');
    expect(served.json).toEqual(JSON.parse(JSON.stringify(doc)));
    const addr = env.peers[1]!.address;
    const extra = await echo();
    env.peers.push(extra);
    const fill = (path: string) => path.replace('{pool}', 'main').replace('{address}', enc(addr)).replace('{listener}', 'front');
    const order = ['GET', 'PUT', 'POST', 'DELETE'];
    const ops = Object.entries(doc.paths)
      .flatMap(([path, o]) => Object.entries(o as object).map(([m, op]) => ({ path, method: m.toUpperCase(), op: op as any })))
      .sort((x, y) => order.indexOf(x.method) - order.indexOf(y.method));
    for (const { path, method, op } of ops) {
      if (path === '/api/stream') continue; // endless; tested below
      let json: unknown;
      if (op.requestBody) {
        const media = op.requestBody.content['application/json'];
        json = structuredClone(media.example);
        expect(validate(json, media.schema, doc), `${method} ${path} example`).toEqual([]);
        if (op.operationId === 'addBackend') (json as any).address = extra.address;
      }
      let url = fill(path);
      if (op.operationId === 'plan') url += `?pool=main&add=${enc('10.0.0.4:80')}&samples=1000`;
      if (op.operationId === 'reload') {
        expectError(await env.call(method, url), 409, 'no_config_file');
        continue;
      }
      // A library balancer cannot start a process to replace it (upgrade.spec runs the real one).
      if (op.operationId === 'upgrade') {
        expectError(await env.call(method, url, { json }), 409, 'upgrade_unavailable');
        continue;
      }
      const r = await env.call(method, url, json === undefined ? {} : { json });
      const documented = op.responses[String(r.status)];
      expect(documented, `${method} ${path} answered ${r.status}: ${r.text.slice(0, 200)}`).toBeDefined();
      expect(r.status, `${method} ${path}`).toBeLessThan(300);
      const [type, media] = Object.entries(documented.content ?? {})[0] as [string, any];
      expect(r.headers.get('content-type')!.split(';')[0]).toBe(type);
      if (type === 'application/json') expect(validate(r.json, media.schema, doc, 'response'), `${method} ${path}`).toEqual([]);
    }
    // Error bodies match the Error schema.
    const err = await env.call('GET', '/api/pools/nope');
    expect(validate(err.json, { $ref: '#/components/schemas/Error' }, doc)).toEqual([]);
    const bad = await env.call('POST', '/api/pools/main/backends', { json: { address: 'bad' } });
    expect(bad.status).toBe(422);
    expect(validate(bad.json, { $ref: '#/components/schemas/Error' }, doc)).toEqual([]);
  });

  it('the validator catches what it should', () => {
    const s = doc.components.schemas.AddBackend as Schema;
    expect(validate({ address: '1.2.3.4:5' }, s)).toEqual([]);
    expect(validate({ address: '1.2.3.4:5', weight: 1.5, backup: 'no', state: 'up', x: 1 }, s).map((i) => i.path)).toEqual([
      'body.weight',
      'body.backup',
      'body.state',
      'body.x',
    ]);
    expect(validate({}, s)).toEqual([{ path: 'body.address', message: 'missing' }]);
  });
});

describe('metrics', () => {
  it('serves the text format that promtool accepts, with every family', async () => {
    const env = await setup({
      config: (addrs) => {
        const c = simpleConfig(addrs);
        // A label value that needs escaping cannot come from names (validated), so check the escaper directly below.
        return c;
      },
    });
    for (let i = 0; i < 4; i++) {
      const s = await connect(env.lb.address('front').port);
      const got = drain(s);
      await send(s, 1000, { end: true });
      await got;
    }
    const r = await env.call('GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = r.text;
    for (const name of [
      'switchyard_listener_connections_total',
      'switchyard_listener_connections_active',
      'switchyard_backend_connections_total',
      'switchyard_backend_connections_active',
      'switchyard_backend_bytes_in_total',
      'switchyard_backend_bytes_out_total',
      'switchyard_backend_connect_errors_total',
      'switchyard_backend_up',
      'switchyard_backend_health_state',
      'switchyard_backend_connect_seconds',
      'switchyard_pool_share_min_ratio',
      'switchyard_pool_share_max_ratio',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
    ]) {
      expect(text, name).toMatch(new RegExp(`^# HELP ${name} .+$`, 'm'));
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge|summary)$`, 'm'));
    }
    expect(text).toContain('switchyard_listener_connections_total{listener="front",pool="main"} 4');
    const [a, b] = env.peers.map((p) => p.address);
    expect(text).toContain(`switchyard_backend_connections_total{pool="main",backend="${a}"} 2`);
    expect(text).toContain(`switchyard_backend_bytes_in_total{pool="main",backend="${b}"} 2000`);
    expect(text).toContain(`switchyard_backend_up{pool="main",backend="${a}"} 1`);
    expect(text).toContain(`switchyard_backend_connect_errors_total{pool="main",backend="${a}",reason="timeout"} 0`);
    expect(text).toMatch(/^# TYPE switchyard_backend_connect_seconds summary$/m);
    expect(text).not.toMatch(/_bucket/);

    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(promtool.error).toBeUndefined();
    expect(`${promtool.stdout}${promtool.stderr}`.trim()).toBe('');
    expect(promtool.status).toBe(0);
  });

  it('escapes label values', () => {
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });
});

describe('admin API: HTTP listeners', () => {
  it('lists each listener with its protocol, and an HTTP listener\'s routes with their conditions and counters, as documented', async () => {
    const backend: HttpPeer = await httpPeer('app', (req, res) => {
      req.resume();
      res.statusCode = req.url === '/gone' ? 410 : 200;
      res.end('ok');
    });
    try {
      const env = await setup({
        backends: 0,
        config: () => ({
          workers: 1,
          listeners: {
            front: { address: '127.0.0.1:0', pool: 'main' },
            web: {
              address: '127.0.0.1:0',
              protocol: 'http',
              routes: [
                { name: 'canary', match: { header: { 'x-canary': 'true' } }, pool: 'main' },
                { name: 'static', match: { host: 'static.example.com', path_prefix: '/static/' }, pool: 'main' },
                { match: { path_regex: '/v[0-9]+/.*', method: ['GET', 'HEAD'], query: { debug: true } }, pool: 'main' },
              ],
              pool: 'main',
            },
          },
          pools: { main: { backends: [{ address: backend.address }] } },
        }),
      });
      const port = env.lb.address('web').port;
      // node:http, since fetch may not set Host.
      const get = (path: string, headers: Record<string, string>) =>
        new Promise<void>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, path, headers }, (res) => res.resume().once('end', resolve)).once('error', reject);
        });
      for (const [path, headers] of [['/a', { 'x-canary': 'true' }], ['/static/x', { host: 'static.example.com' }], ['/gone', {}], ['/', {}], ['/v2/x?debug=1', {}]] as const) {
        await get(path, headers);
      }
      const r = await env.call('GET', '/api/listeners');
      expect(r.status).toBe(200);
      const doc = openapiDocument() as any;
      expect(validate(r.json, doc.paths['/api/listeners'].get.responses['200'].content['application/json'].schema, doc, 'response')).toEqual([]);
      const byName = new Map<string, any>(r.json.listeners.map((l: any) => [l.name, l]));
      expect(byName.get('front')).toMatchObject({ protocol: 'tcp', routes: [], no_route: 0 });
      const web = byName.get('web');
      expect(web.protocol).toBe('http');
      expect(web.routes.map((x: any) => [x.name, x.pool, x.match, x.responses_2xx, x.responses_4xx, x.retries])).toEqual([
        ['canary', 'main', 'header x-canary="true"', 1, 0, 0],
        ['static', 'main', 'host static.example.com, path_prefix /static/', 1, 0, 0],
        ['web.routes[2]', 'main', 'path_regex /v[0-9]+/.*, method GET|HEAD, query debug', 1, 0, 0],
        ['web.default', 'main', 'every request', 1, 1, 0],
      ]);
      // The cumulative buckets end in the route's request count.
      for (const x of web.routes) expect(x.latency_buckets.at(-1)).toBe(x.responses_2xx + x.responses_4xx);
      expect(web.routes[0]).not.toHaveProperty('listener');
    } finally {
      await backend.close();
    }
  });
});

describe('active-check view', () => {
  it('shows lb.health() in /api/pools and /metrics (check duration), and promtool still accepts it', async () => {
    const env = await setup();
    const [a, b] = env.peers.map((p) => p.address) as [string, string];
    const at = Date.now();
    // Stand in for the checker's view on this instance (the real one reports the same shape).
    (env.lb as unknown as { health: () => unknown[] }).health = () => [
      { pool: 'main', address: a, status: 'up', last: { ok: true, reason: 'connected', duration_ms: 1.5, at }, since: at - 5000, successes: 3, failures: 0 },
      { pool: 'main', address: b, status: 'down', last: { ok: false, reason: 'connection refused', duration_ms: 0.25, at }, since: at, successes: 0, failures: 3 },
    ];
    const doc = openapiDocument();
    const r = await env.call('GET', '/api/pools');
    expect(validate(r.json, (doc as any).paths['/api/pools'].get.responses['200'].content['application/json'].schema, doc)).toEqual([]);
    const [ba, bb] = r.json.pools[0].backends;
    expect(ba.check).toEqual({ status: 'up', last: { ok: true, reason: 'connected', duration_ms: 1.5, at }, since: at - 5000, successes: 3, failures: 0 });
    expect(bb.check.last.reason).toBe('connection refused');
    const m = await env.call('GET', '/metrics');
    expect(m.text).toContain(`switchyard_backend_check_duration_seconds{pool="main",backend="${a}"} 0.0015`);
    expect(m.text).toContain(`switchyard_backend_check_duration_seconds{pool="main",backend="${b}"} 0.00025`);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: m.text, encoding: 'utf8' });
    expect(`${promtool.stdout}${promtool.stderr}`.trim()).toBe('');
    expect(promtool.status).toBe(0);
  });
});

describe('event stream', () => {
  it('sends a stats snapshot at once and every second, and backend events as they happen', async () => {
    const env = await setup();
    const events: { event: string; data: any }[] = [];
    const ac = new AbortController();
    const res = await fetch(`${env.base}/api/stream`, { signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let buf = '';
    const pump = (async () => {
      const dec = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
        }
      }
    })();
    await waitFor(() => events.some((e) => e.event === 'stats'), 'first snapshot', 5000);
    const first = events.find((e) => e.event === 'stats')!.data;
    expect(first.pools[0].backends).toHaveLength(2);
    expect(first.listeners[0].name).toBe('front');
    await waitFor(() => events.filter((e) => e.event === 'stats').length >= 3, 'more snapshots', 10_000);
    await env.call('PUT', `/api/pools/main/backends/${enc(env.peers[0]!.address)}/weight`, { json: { weight: 4 } });
    const ev = await waitFor(() => events.find((e) => e.event === 'backend'), 'backend event', 5000);
    expect(ev.data).toMatchObject({ pool: 'main', address: env.peers[0]!.address, kind: 'weight' });
    ac.abort();
    await pump;
  });
});

describe('changes under traffic', () => {
  it('changing weights and the algorithm through the API while traffic flows drops no connection', async () => {
    const env = await setup({ backends: 3 });
    const port = env.lb.address('front').port;
    const held: net.Socket[] = await Promise.all(Array.from({ length: 12 }, () => connect(port)));
    const closed = new Set<net.Socket>();
    for (const s of held) s.on('close', () => closed.add(s));
    /** One round trip on every held connection. */
    const pingAll = async (round: number) =>
      Promise.all(
        held.map(
          (s, i) =>
            new Promise<void>((resolve, reject) => {
              const msg = `ping ${round} ${i}\n`;
              let got = '';
              const onData = (d: Buffer) => {
                got += d.toString();
                if (got.length >= msg.length) {
                  s.off('data', onData);
                  if (got === msg) resolve();
                  else reject(new Error(`connection ${i} echoed ${JSON.stringify(got)}`));
                }
              };
              s.on('data', onData);
              s.write(msg);
            }),
        ),
      );
    await pingAll(-1);
    // A long transfer runs through all of it too.
    const long = await connect(port);
    const longGot = drain(long);
    const longSent = send(long, 16 * 1024 * 1024, { chunk: 16 * 1024, end: true, pauseEvery: 8 });

    // Round trips on every held connection run back to back while the API changes things.
    let stop = false;
    let rounds = 0;
    const chatter = (async () => {
      while (!stop) await pingAll(rounds++);
    })();

    const addrs = env.peers.map((p) => p.address);
    const algorithms = ['weighted_round_robin', 'least_connections', 'random', 'power_of_two', 'ip_hash', 'consistent_hash', 'maglev', 'round_robin'];
    let fresh = 0;
    for (let round = 0; round < algorithms.length; round++) {
      const w = await env.call('PUT', `/api/pools/main/backends/${enc(addrs[round % 3]!)}/weight`, { json: { weight: 1 + (round % 4) } });
      expect(w.status, w.text).toBe(200);
      const a = await env.call('PUT', '/api/pools/main/algorithm', { json: { algorithm: algorithms[round] } });
      expect(a.status, a.text).toBe(200);
      // New connections keep working too.
      const s = await connect(port);
      s.write('new\n');
      await new Promise<void>((resolve) => s.once('data', () => resolve()));
      s.destroy();
      fresh++;
    }
    stop = true;
    await chatter;
    await pingAll(-2);
    expect(rounds).toBeGreaterThan(algorithms.length);
    expect(fresh).toBe(algorithms.length);
    const got = await longGot;
    expect(got.length).toBe(16 * 1024 * 1024);
    expect(got.sha256).toBe(await longSent);
    expect(closed.size).toBe(0);
    expect(env.lb.stats().pools[0]!.backends.reduce((n, b) => n + b.active, 0)).toBe(12);
    for (const s of held) s.destroy();
  });
});

describe('admin token from a file or the environment', () => {
  const base = (admin: unknown) => ({
    listeners: { front: { address: '127.0.0.1:8080', pool: 'main' } },
    pools: { main: { backends: [{ address: '127.0.0.1:9000' }] } },
    admin,
  });
  const issues = (raw: unknown, source = 'test') => {
    try {
      validateConfig(raw, source);
      return [];
    } catch (err) {
      return (err as { issues: { path: string; message: string }[] }).issues;
    }
  };
  const ENV = 'SWITCHYARD_TEST_ADMIN_TOKEN';
  afterEach(() => {
    delete process.env[ENV];
  });

  it('reads token_file relative to the config file, trimming the trailing newline', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-token-'));
    dirs.push(dir);
    await writeFile(join(dir, 'admin-token'), `${TOKEN}\n`);
    const config = join(dir, 'switchyard.json');
    await writeFile(config, '{}');
    expect(validateConfig(base({ address: '0.0.0.0:9100', token_file: 'admin-token' }), config).admin).toEqual({ address: '0.0.0.0:9100', token: TOKEN });
    expect(validateConfig(base({ token_file: join(dir, 'admin-token') }), 'test').admin?.token).toBe(TOKEN);
  });

  it('a missing or unreadable token file, or a bad token in it, names the field and the file and never echoes the token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-token-'));
    dirs.push(dir);
    const missing = join(dir, 'nope');
    expect(issues(base({ token_file: missing }))).toEqual([{ path: 'admin.token_file', message: `cannot read ${missing}: no such file` }]);
    expect(issues(base({ token_file: dir }))).toEqual([{ path: 'admin.token_file', message: `cannot read ${dir}: is a directory` }]);
    expect(issues(base({ token_file: 42 }))[0]).toMatchObject({ path: 'admin.token_file' });
    await writeFile(join(dir, 'short'), 'tiny-secret\n');
    const short = issues(base({ token_file: join(dir, 'short') }));
    expect(short).toEqual([{ path: 'admin.token_file', message: expect.stringMatching(/16\.\.1024 printable ASCII.*short holding a string of 11 characters/) }]);
    expect(JSON.stringify(short)).not.toContain('tiny-secret');
  });

  it('reads token_env; an unset or empty variable is an error naming it', () => {
    process.env[ENV] = TOKEN;
    expect(validateConfig(base({ address: '[::]:9100', token_env: ENV }), 't').admin).toEqual({ address: '[::]:9100', token: TOKEN });
    process.env[ENV] = '';
    expect(issues(base({ token_env: ENV }))).toEqual([{ path: 'admin.token_env', message: `the environment variable ${ENV} is empty` }]);
    delete process.env[ENV];
    expect(issues(base({ token_env: ENV }))).toEqual([{ path: 'admin.token_env', message: `the environment variable ${ENV} is not set` }]);
    expect(issues(base({ token_env: 'not a name' }))[0]).toMatchObject({ path: 'admin.token_env' });
    process.env[ENV] = 'hunter2 with a blank, long enough';
    const bad = issues(base({ token_env: ENV }));
    expect(bad).toEqual([{ path: 'admin.token_env', message: expect.stringMatching(/\$SWITCHYARD_TEST_ADMIN_TOKEN holding a string of 33 characters/) }]);
    expect(JSON.stringify(bad)).not.toContain('hunter2');
  });

  it('one way only; off loopback one of the three is required', () => {
    process.env[ENV] = TOKEN;
    expect(issues(base({ token: TOKEN, token_env: ENV }))).toEqual([{ path: 'admin', message: expect.stringMatching(/token and token_env are both set/) }]);
    expect(issues(base({ address: '10.0.0.1:9100' }))).toEqual([{ path: 'admin.token', message: expect.stringMatching(/required when admin.address is not loopback.*token_file or token_env/) }]);
  });

  it('a balancer started from a file answers with the token read from token_file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-token-'));
    dirs.push(dir);
    const peer = await echo();
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    const path = join(dir, 'switchyard.json');
    await writeFile(path, JSON.stringify({ ...simpleConfig([peer.address]), admin: { address: '127.0.0.1:0', token_file: 'token' } }));
    const lb = await Switchyard.fromFile(path);
    try {
      const url = `http://${lb.adminAddress()!.address}/api/pools`;
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    } finally {
      await lb.close({ drainMs: 0 });
      await peer.close();
    }
  });
});

/** One raw HTTP/1.1 exchange on a fresh connection: what fetch will not send (huge URLs, unknown methods) or hides (HEAD framing). */
async function rawHttp(address: string, request: string | Buffer): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const i = address.lastIndexOf(':');
  const s = netConnect(Number(address.slice(i + 1)), address.slice(0, i));
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => s.write(request));
      s.once('end', resolve);
      s.once('error', reject);
    });
  } finally {
    s.destroy();
  }
  const text = Buffer.concat(chunks).toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(split + 4) };
}

function expectRawError(r: { status: number; headers: Record<string, string>; body: string }, status: number, code: string): { code: string; message: string } {
  expect(r.status, r.body).toBe(status);
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
  const body = JSON.parse(r.body);
  expect(body).toEqual({ error: { code, message: expect.any(String) } });
  return body.error;
}

describe('admin HTTP edge cases answer JSON', () => {
  it('a 60 KB URL is 431 headers_too_large, an unknown method or a garbled request 400, with or without a token', async () => {
    for (const token of [null, TOKEN]) {
      const env = await setup({ token });
      const addr = env.admin.address.address;
      const huge = expectRawError(await rawHttp(addr, `GET /api/pools?x=${'a'.repeat(60 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`), 431, 'headers_too_large');
      expect(huge.message).toContain('16384-byte limit');
      const headers = expectRawError(await rawHttp(addr, `GET /api/pools HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20 * 1024)}\r\n\r\n`), 431, 'headers_too_large');
      expect(headers.message).toContain('headers');
      const brew = expectRawError(await rawHttp(addr, 'BREW /api/pools HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 400, 'bad_request');
      expect(brew.message).toContain('unknown HTTP method "BREW"');
      expectRawError(await rawHttp(addr, 'GET /api/pools HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), 400, 'bad_request');
      expectRawError(await rawHttp(addr, 'this is not http\r\n\r\n'), 400, 'bad_request');
      // The server still serves after all of that.
      expect((await env.call('GET', '/api/pools')).status).toBe(200);
    }
  });

  it('HEAD runs the GET route: same status and headers, no body; 405 names the allowed methods', async () => {
    const env = await setup({ token: TOKEN });
    const addr = env.admin.address.address;
    const auth = `Authorization: Bearer ${TOKEN}\r\n`;
    for (const path of ['/api/pools', '/metrics', '/api/openapi.json', '/healthz']) {
      const get = await env.call('GET', path);
      const head = await rawHttp(addr, `HEAD ${path} HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
      expect(head.status, path).toBe(200);
      expect(head.body, path).toBe('');
      expect(head.headers['content-type']).toBe(get.headers.get('content-type'));
      // /metrics may differ in length between two scrapes (counters); the others must match exactly.
      if (path !== '/metrics') expect(Number(head.headers['content-length']), path).toBe(Buffer.byteLength(get.text));
    }
    // The stream's headers, without the endless body.
    const stream = await rawHttp(addr, `HEAD /api/stream HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
    expect(stream).toMatchObject({ status: 200, body: '' });
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    // HEAD is still authenticated, and a missing route is 404 without a body.
    expect(await rawHttp(addr, 'HEAD /api/pools HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatchObject({ status: 401, body: '' });
    expect(await rawHttp(addr, `HEAD /api/nothing HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`)).toMatchObject({ status: 404, body: '' });
    const post = await env.call('POST', '/api/pools');
    expectError(post, 405, 'method_not_allowed');
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const get = await env.call('GET', '/api/pools/main/algorithm');
    expectError(get, 405, 'method_not_allowed');
    expect(get.headers.get('allow')).toBe('PUT');
  });
});

describe('probes', () => {
  it('/healthz and /readyz answer without a token; /readyz is 503 while close() drains, then the server is gone', async () => {
    const peer = await echo();
    const lb = await Switchyard.start({ ...simpleConfig([peer.address]), admin: { address: '127.0.0.1:0', token: TOKEN } });
    let client: net.Socket | undefined;
    try {
      const base = `http://${lb.adminAddress()!.address}`;
      const probe = async (path: string) => {
        const r = await fetch(base + path);
        return { status: r.status, json: await r.json() };
      };
      expect(await probe('/healthz')).toEqual({ status: 200, json: { status: 'ok' } });
      expect(await probe('/readyz')).toEqual({ status: 200, json: { status: 'ready' } });
      expect((await fetch(`${base}/api/pools`)).status).toBe(401);
      // A live connection keeps the drain going.
      client = await connect(lb.address('front').port);
      client.write('hold\n');
      await waitFor(() => lb.stats().connections_active === 1, 'the held connection');
      const closing = lb.close({ drainMs: 60_000 });
      expect(lb.draining).toBe(true);
      expect(await probe('/readyz')).toEqual({ status: 503, json: { status: 'draining' } });
      expect(await probe('/healthz')).toEqual({ status: 200, json: { status: 'ok' } });
      client.destroy();
      await closing;
      await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    } finally {
      client?.destroy();
      await lb.close({ drainMs: 0 });
      await peer.close();
    }
  });
});

describe('admin bind errors', () => {
  it('a port in use is a BindError naming admin.address, and the balancer it belonged to is closed', async () => {
    const blocker = netServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const peer = await echo();
    // A port for the listener that is free now (taken and released).
    const probe = netServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const front = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    try {
      const err = await Switchyard.start({ ...simpleConfig([peer.address], { port: front }), admin: { address: `127.0.0.1:${port}` } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BindError);
      expect(err).toMatchObject({ code: 'SWITCHYARD_ERR_BIND', message: `admin.address: cannot bind 127.0.0.1:${port}: address already in use (EADDRINUSE)` });
      // The listener the failed start had bound is released again.
      const again = netServer();
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(front, '127.0.0.1', resolve);
      });
      await new Promise<void>((r) => again.close(() => r()));
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
      await peer.close();
    }
  });
});
