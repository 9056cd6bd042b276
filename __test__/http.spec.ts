/**
 * HTTP listeners end to end, as a newcomer uses them: the example config in a YAML
 * file, curl as the client (with --resolve and TLS), backends that echo what they received
 * (so the forwarded headers are asserted as they arrived), a WebSocket client and server,
 * the limits, keep-alive reuse with the route counters, and the access log.
 * Failover (sticky re-pins, killed backends, ejection, slowloris) is in http-failover.spec.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { Switchyard } from '../ts/index.js';
import type { ListenerConfig, SwitchyardConfig } from '../ts/index.js';
import { TestCa } from './certs.js';
import { curl, curl1, echoed, httpPeer, stoppedAfterEach, type HttpPeer } from './fixtures/http-peers.js';
import { waitFor } from './helpers.js';

const SECRET = 'http-spec-sticky-secret-0123';

/** What a test started (stopped after it whatever happened) and its temporary directory. */
const t = stoppedAfterEach();

/** Start in-process echo backends named `ids` (kept for `afterEach`). */
async function backends(...ids: string[]): Promise<HttpPeer[]> {
  const started = await Promise.all(ids.map((id) => httpPeer(id)));
  t.peers.push(...started);
  return started;
}

/** Start a balancer (kept for `afterEach`). */
async function start(config: SwitchyardConfig, logger?: (event: string, fields?: Record<string, unknown>) => void): Promise<Switchyard> {
  const lb = await Switchyard.start(config, logger ? { logger } : {});
  t.lbs.push(lb);
  return lb;
}

/** One HTTP listener `front` on a free port over `pools`, with `extra` listener settings. */
function httpConfig(extra: Omit<ListenerConfig, 'address' | 'protocol'>, pools: SwitchyardConfig['pools']): SwitchyardConfig {
  return { workers: 2, listeners: { front: { address: '127.0.0.1:0', protocol: 'http', ...extra } }, pools };
}

/** The 404 of Switchyard's own, as its stable JSON body. */
const NO_ROUTE = { error: { status: 404, code: 'no_route', message: expect.any(String) as string } };

describe('HTTP listeners: the issue example', () => {
  it('routes by header, path prefix and host, forwards the client headers, strips hop-by-hop ones, sets cache-control and answers an unmatched request with a JSON 404', async () => {
    const [api1, api2, stat, canary, web1, web2] = await backends('api1', 'api2', 'static', 'canary', 'web1', 'web2');
    const file = join(t.dir, 'switchyard.yaml');
    await writeFile(
      file,
      `workers: 2
listeners:
  web:
    address: 127.0.0.1:0
    protocol: http            # default stays tcp
    routes:                   # first match wins
      - match: { header: { x-canary: "true" } }
        pool: canary
      - match: { path_prefix: /api/ }
        pool: api
      - match: { host: static.example.com, path_prefix: /static/ }
        pool: static
        response_headers: { set: { cache-control: "public, max-age=2592000" } }
      - pool: web             # default route
  strict:                     # no default route: what no route takes gets Switchyard's 404
    address: 127.0.0.1:0
    protocol: http
    routes:
      - match: { path_prefix: /api/ }
        pool: api
pools:
  api:
    algorithm: least_connections
    sticky: { cookie: SY_STICKY, secret: ${SECRET} }
    backends: [ { address: ${api1!.address}, weight: 3 }, { address: ${api2!.address} } ]
  static: { backends: [ { address: ${stat!.address} } ] }
  canary: { backends: [ { address: ${canary!.address} } ] }
  web:    { backends: [ { address: ${web1!.address} }, { address: ${web2!.address} } ] }
`,
    );
    const lb = await Switchyard.fromFile(file);
    t.lbs.push(lb);
    const port = lb.address('web').port;
    const base = `http://127.0.0.1:${port}`;

    // The header route comes first, so it wins over the /api/ prefix.
    const c = await curl1(['-H', 'X-Canary: true'], `${base}/api/orders`);
    expect([c.status, echoed(c).id]).toEqual([200, 'canary']);
    // A value other than "true" is not the canary.
    const notCanary = await curl1(['-H', 'X-Canary: false'], `${base}/api/orders`);
    expect(['api1', 'api2']).toContain(echoed(notCanary).id);

    // /api/ reaches the api pool, with the query intact and a sticky cookie set.
    const a = await curl1([], `${base}/api/users?id=7`);
    expect(a.status).toBe(200);
    expect(['api1', 'api2']).toContain(echoed(a).id);
    expect(echoed(a).url).toBe('/api/users?id=7');
    expect(a.headers['set-cookie']?.[0]).toMatch(/^SY_STICKY=[0-9a-f]{16}; Path=\/; HttpOnly; SameSite=Lax$/);
    expect(a.headers['set-cookie']?.[0]).not.toContain('Secure'); // plain listener
    expect(a.headers['cache-control']).toBeUndefined();

    // Host and prefix: the static pool, with the response header the route sets; the same
    // path on another host falls through to the default route, without it.
    const resolve = ['--resolve', `static.example.com:${port}:127.0.0.1`];
    const s = await curl1(resolve, `http://static.example.com:${port}/static/app.js`);
    expect([s.status, echoed(s).id]).toEqual([200, 'static']);
    expect(s.headers['cache-control']).toEqual(['public, max-age=2592000']);
    const other = await curl1([], `${base}/static/app.js`);
    expect(['web1', 'web2']).toContain(echoed(other).id);
    expect(other.headers['cache-control']).toBeUndefined();

    // The default route, round robin over both web backends.
    const seen = new Set<string>();
    for (const r of await curl([], `${base}/`, `${base}/a`, `${base}/b`, `${base}/c`)) seen.add(echoed(r).id);
    expect([...seen].sort()).toEqual(['web1', 'web2']);

    // Forwarding headers, as the backend received them; Host preserved; hop-by-hop fields
    // (Connection and what it names, Keep-Alive) dropped, the rest kept.
    const f = await curl1(
      [...resolve, '-H', 'X-Forwarded-For: 203.0.113.9', '-H', 'Connection: keep-alive, X-Secret', '-H', 'X-Secret: hop', '-H', 'Keep-Alive: timeout=5', '-H', 'X-Kept: end-to-end'],
      `http://static.example.com:${port}/static/x.css`,
    );
    const h = echoed(f).headers;
    expect(echoed(f).id).toBe('static');
    expect(h).toMatchObject({
      host: `static.example.com:${port}`,
      'x-forwarded-for': '203.0.113.9, 127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': `static.example.com:${port}`,
      'x-real-ip': '127.0.0.1',
      'x-kept': 'end-to-end',
    });
    expect(h['x-secret']).toBeUndefined();
    expect(h['keep-alive']).toBeUndefined();
    expect(h.forwarded).toBeUndefined(); // RFC 7239 only with http.forwarded

    // A listener whose routes do not take the request: Switchyard's JSON 404, counted.
    const strict = lb.address('strict').port;
    const miss = await curl1([], `http://127.0.0.1:${strict}/nowhere`);
    expect(miss.status).toBe(404);
    expect(miss.headers['content-type']).toEqual(['application/json']);
    expect(JSON.parse(miss.body)).toEqual(NO_ROUTE);
    const hit = await curl1([], `http://127.0.0.1:${strict}/api/ok`);
    expect(['api1', 'api2']).toContain(echoed(hit).id);
    const listener = lb.stats().listeners.find((l) => l.name === 'strict')!;
    expect(listener.no_route).toBe(1);
    // Every backend received exactly what the assertions above sent it.
    expect(canary!.requests).toBe(1);
    expect(stat!.requests).toBe(2);
    expect(api1!.requests + api2!.requests).toBe(3);
    expect(web1!.requests + web2!.requests).toBe(5);
  });

  it('terminates TLS: the backend is told https and the sticky cookie is Secure', async () => {
    const ca = new TestCa();
    const leaf = ca.leaf(['app.example.test']);
    const [b] = await backends('tls-api');
    const lb = await start(
      httpConfig(
        { pool: 'api', tls: { certificates: [{ cert: leaf.chain, key: leaf.key }] } },
        { api: { sticky: { cookie: 'SY_STICKY', secret: SECRET, max_age: '1h' }, backends: [{ address: b!.address }] } },
      ),
    );
    const port = lb.address('front').port;
    const r = await curl1(['--cacert', ca.cert, '--resolve', `app.example.test:${port}:127.0.0.1`], `https://app.example.test:${port}/login`);
    expect(r.status).toBe(200);
    expect(echoed(r)).toMatchObject({ id: 'tls-api', url: '/login', headers: { 'x-forwarded-proto': 'https', host: `app.example.test:${port}` } });
    expect(r.headers['set-cookie']?.[0]).toMatch(/^SY_STICKY=[0-9a-f]{16}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure$/);
    await rm(ca.dir, { recursive: true, force: true });
  });
});

describe('HTTP listeners: WebSocket', () => {
  it('passes an Upgrade through: messages both ways, a 1 MB binary one intact, then a clean close', async () => {
    const [b] = await backends('ws');
    const wss = new WebSocketServer({ server: b!.server });
    const upgrades: Record<string, string | string[] | undefined>[] = [];
    const serverClosed = new Promise<number>((resolve) => {
      wss.on('connection', (ws, req) => {
        upgrades.push(req.headers);
        ws.send('hello from the backend');
        // Echo every message back, text as text, binary as binary.
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        ws.on('close', (code) => resolve(code));
      });
    });
    const lb = await start(httpConfig({ pool: 'ws' }, { ws: { backends: [{ address: b!.address }] } }));
    const client = new WebSocket(`ws://127.0.0.1:${lb.address('front').port}/chat`);
    const received: { data: Buffer; isBinary: boolean }[] = [];
    client.on('message', (data, isBinary) => received.push({ data: data as Buffer, isBinary }));
    try {
      await waitFor(() => received.length === 1, 'the greeting');
      expect(received[0]!.data.toString()).toBe('hello from the backend');
      client.send('ping');
      await waitFor(() => received.length === 2, 'the text echo');
      expect(received[1]).toMatchObject({ isBinary: false });
      expect(received[1]!.data.toString()).toBe('ping');
      const big = randomBytes(1024 * 1024);
      client.send(big, { binary: true });
      await waitFor(() => received.length === 3, 'the 1 MB echo', 30_000);
      expect(received[2]!.isBinary).toBe(true);
      const sha = (x: Buffer) => createHash('sha256').update(x).digest('hex');
      expect(received[2]!.data.length).toBe(big.length);
      expect(sha(received[2]!.data)).toBe(sha(big));
      // The upgrade request carried the forwarding headers too.
      expect(upgrades[0]).toMatchObject({ 'x-forwarded-for': '127.0.0.1', upgrade: 'websocket' });
      const clientClosed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
      client.close(1000, 'done');
      expect(await clientClosed).toBe(1000);
      expect(await serverClosed).toBe(1000);
    } finally {
      client.terminate();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    }
  });
});

describe('HTTP listeners: limits', () => {
  it('431 for a head over max_header_size, 413 with a JSON body over max_body_size, 504 past request_timeout', async () => {
    const [b] = await backends('limits');
    let slowTimer: NodeJS.Timeout | undefined;
    const slow = await httpPeer('slow', (_req, res) => {
      // Answers long after the listener's request_timeout.
      slowTimer = setTimeout(() => res.end('too late'), 5_000);
    });
    t.peers.push(slow);
    const lb = await start(
      httpConfig(
        {
          http: { max_header_size: '16k', request_timeout: '500ms' },
          routes: [
            { name: 'upload', match: { path_prefix: '/upload' }, pool: 'main', max_body_size: '1k' },
            { name: 'slow', match: { path_prefix: '/slow' }, pool: 'slow' },
          ],
          pool: 'main',
        },
        { main: { backends: [{ address: b!.address }] }, slow: { backends: [{ address: slow.address }] } },
      ),
    );
    const base = `http://127.0.0.1:${lb.address('front').port}`;
    try {
      const big = await curl1(['-H', `X-Big: ${'a'.repeat(20 * 1024)}`], `${base}/`);
      expect(big.status).toBe(431);
      // Just under the limit is fine.
      const fits = await curl1(['-H', `X-Big: ${'a'.repeat(12 * 1024)}`], `${base}/`);
      expect(fits.status).toBe(200);

      const body = join(t.dir, 'body.bin');
      await writeFile(body, randomBytes(2048));
      const before = b!.requests;
      const tooLarge = await curl1(['--data-binary', `@${body}`], `${base}/upload`);
      expect(tooLarge.status).toBe(413);
      expect(JSON.parse(tooLarge.body)).toEqual({ error: { status: 413, code: 'payload_too_large', message: expect.any(String) } });
      expect(b!.requests).toBe(before); // never reached the backend
      const small = await curl1(['--data-binary', 'x'.repeat(1000)], `${base}/upload`);
      expect(echoed(small)).toMatchObject({ method: 'POST', url: '/upload' });

      const late = await curl1([], `${base}/slow`);
      expect(late.status).toBe(504);
      expect(JSON.parse(late.body)).toEqual({ error: { status: 504, code: 'gateway_timeout', message: expect.any(String) } });
    } finally {
      clearTimeout(slowTimer);
    }
  });
});

describe('HTTP listeners: keep-alive and route counters', () => {
  it('50 sequential requests from one curl reuse a few backend connections, and the route counts them all', async () => {
    const [b] = await backends('ka');
    const lb = await start(httpConfig({ routes: [{ name: 'all', pool: 'main' }] }, { main: { backends: [{ address: b!.address }] } }));
    const base = `http://127.0.0.1:${lb.address('front').port}`;
    const urls = Array.from({ length: 50 }, (_, i) => `${base}/item/${i}`);
    const responses = await curl([], ...urls);
    expect(responses.map((r) => r.status)).toEqual(urls.map(() => 200));
    expect(responses.map((r) => echoed(r).url)).toEqual(urls.map((_, i) => `/item/${i}`));
    expect(b!.requests).toBe(50);
    // Few connections: each request either reused one or opened one, and the backend saw
    // exactly the opened ones.
    const backend = lb.stats().pools[0]!.backends[0]!;
    expect(b!.connections).toBeLessThanOrEqual(5);
    expect(backend.connects).toBe(b!.connections);
    expect(backend.conns_reused + backend.connects).toBe(50);
    const route = lb.stats().listeners[0]!.routes.find((r) => r.name === 'all')!;
    expect(route).toMatchObject({ listener: 'front', pool: 'main', responses_2xx: 50, responses_4xx: 0, responses_5xx: 0, retries: 0 });
    // Cumulative buckets: non-decreasing, the last (+Inf) is every request.
    const buckets = route.latency_buckets;
    expect(buckets.every((n, i) => i === 0 || n >= buckets[i - 1]!)).toBe(true);
    expect(buckets.at(-1)).toBe(50);
    expect(route.latency_us_sum).toBeGreaterThan(0);
  });
});

describe('HTTP listeners: access log', () => {
  it('logs one access line per request with its route, status, method and path', async () => {
    const [b] = await backends('logged');
    const lines: (Record<string, unknown> & { event: string })[] = [];
    const lb = await start(
      httpConfig(
        { access_log: true, routes: [{ name: 'api', match: { path_prefix: '/api/' }, pool: 'main' }] },
        { main: { backends: [{ address: b!.address }] } },
      ),
      (event, fields = {}) => lines.push({ event, ...fields }),
    );
    const base = `http://127.0.0.1:${lb.address('front').port}`;
    const got = await curl([], `${base}/api/a?q=1`, `${base}/api/b`, `${base}/elsewhere`);
    expect(got.map((r) => r.status)).toEqual([200, 200, 404]);
    await curl1(['-X', 'DELETE'], `${base}/api/c`);
    const access = () => lines.filter((l) => l.event === 'access');
    await waitFor(() => access().length >= 4, 'four access lines');
    const common = { listener: 'front', client: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as string };
    expect(access()).toEqual([
      expect.objectContaining({ ...common, pool: 'main', backend: b!.address, http: { route: 'api', method: 'GET', path: '/api/a', status: 200, head_ms: expect.any(Number) as number } }),
      expect.objectContaining({ ...common, pool: 'main', backend: b!.address, http: { route: 'api', method: 'GET', path: '/api/b', status: 200, head_ms: expect.any(Number) as number } }),
      expect.objectContaining({ ...common, pool: '', backend: '', http: { route: '', method: 'GET', path: '/elsewhere', status: 404, head_ms: expect.any(Number) as number } }),
      expect.objectContaining({ ...common, pool: 'main', backend: b!.address, http: { route: 'api', method: 'DELETE', path: '/api/c', status: 200, head_ms: expect.any(Number) as number } }),
    ]);
    // The connection itself is not logged again.
    await lb.close({ drainMs: 0 });
    expect(access()).toHaveLength(4);
  });

  it('counts the body bytes of each request and response in its access line', async () => {
    const [b] = await backends('bytes');
    const lines: Record<string, unknown>[] = [];
    const lb = await start(httpConfig({ access_log: true, pool: 'main' }, { main: { backends: [{ address: b!.address }] } }), (event, fields = {}) => {
      if (event === 'access') lines.push(fields);
    });
    const r = await curl1(['--data-binary', 'x'.repeat(500)], `http://127.0.0.1:${lb.address('front').port}/upload`);
    expect(r.status).toBe(200);
    await waitFor(() => lines.length === 1, 'the access line');
    expect(lines[0]).toMatchObject({ bytes_in: 500, bytes_out: Buffer.byteLength(r.body), ended: 'completed', http: { method: 'POST', path: '/upload', status: 200 } });
    expect(lines[0]!.duration_ms).toBeGreaterThanOrEqual((lines[0]!.http as { head_ms: number }).head_ms);
  });
});
