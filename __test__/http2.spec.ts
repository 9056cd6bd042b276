/**
 * HTTP/2 on HTTP listeners with real clients: curl with `--http2-prior-knowledge` through a
 * plain listener that accepts h2c, curl `--http2` through a TLS listener (ALPN h2), HTTP/1.1
 * clients still served on both, the streams of one HTTP/2 connection (Node's http2 client)
 * balanced one by one over HTTP/1.1 and over HTTP/2 backends, h2 to TLS backends by ALPN,
 * and a listener without h2c refusing a prior-knowledge client promptly. gRPC end to end is
 * in grpc.spec.ts.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Switchyard } from '../ts/index.js';
import type { ListenerConfig, PoolConfig, SwitchyardConfig } from '../ts/config/types.js';
import { TestCa } from './certs.js';
import { httpPeer, stoppedAfterEach, type Echoed, type HttpPeer } from './fixtures/http-peers.js';
import { h2cServer, type H2cServer } from './fixtures/grpc-servers.js';
import { tally } from './helpers.js';

/** What a test started (stopped after it whatever happened). */
const t = stoppedAfterEach();

/** Start in-process HTTP/1.1 echo backends named `ids` (kept for `afterEach`). */
async function backends(...ids: string[]): Promise<HttpPeer[]> {
  const peers = await Promise.all(ids.map((id) => httpPeer(id)));
  t.peers.push(...peers);
  return peers;
}

/** Start a balancer (kept for `afterEach`); resolves with it and its `front` port. */
async function start(config: SwitchyardConfig): Promise<{ lb: Switchyard; port: number }> {
  const lb = await Switchyard.start(config);
  t.lbs.push(lb);
  return { lb, port: lb.address('front').port };
}

/**
 * An `http` listener `front` (with `listener` settings: `http`, `tls`) whose default route is
 * pool `main` over `addresses` (with `pool` settings).
 */
function h2Config(addresses: string[], listener: Partial<ListenerConfig> = {}, pool: Partial<PoolConfig> = {}): SwitchyardConfig {
  return {
    workers: 2,
    listeners: { front: { address: '127.0.0.1:0', protocol: 'http', pool: 'main', ...listener } },
    pools: { main: { connect_timeout: '1s', ...pool, backends: addresses.map((address) => ({ address })) } },
  };
}

/** What curl reports for one transfer. */
interface Transfer {
  /** curl's `%{http_version}`: `2`, `1.1`, … */
  version: string;
  status: number;
  body: string;
}

/** Marks the line curl's `-w` prints after the body. */
const MARK = '\n--curl-w--';

/** One curl transfer (`args` before `url`); rejects with curl's exit code and stderr on a transport failure. */
async function curlVersion(args: string[], url: string): Promise<Transfer> {
  const { stdout } = await promisify(execFile)('curl', ['-sS', '--noproxy', '*', '--max-time', '15', '-w', `${MARK} %{http_version} %{response_code}`, ...args, url]);
  const at = stdout.lastIndexOf(MARK);
  const [version, status] = stdout.slice(at + MARK.length).trim().split(' ');
  return { version: version!, status: Number(status), body: stdout.slice(0, at) };
}

/** The echo backend's JSON in a curl body. */
const echoedBy = (r: Transfer): Echoed => JSON.parse(r.body) as Echoed;

/** `n` GET requests at once on ONE HTTP/2 session to `port` (prior knowledge); resolves with each response's status and body. */
async function onOneSession(port: number, n: number): Promise<{ status: number; body: string }[]> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  try {
    return await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          new Promise<{ status: number; body: string }>((resolve, reject) => {
            const req = session.request({ ':path': `/stream/${i}` });
            let status = 0;
            let body = '';
            req.setEncoding('utf8');
            req.on('response', (h) => (status = Number(h[':status'])));
            req.on('data', (d: string) => (body += d));
            req.on('end', () => resolve({ status, body }));
            req.on('error', reject);
            req.end();
          }),
      ),
    );
  } finally {
    session.close();
  }
}

describe('HTTP/2 clients: curl through h2c and TLS listeners', () => {
  it('curl --http2-prior-knowledge through a plain listener with h2c is served over HTTP/2; an HTTP/1.1 curl on the same listener still is', async () => {
    const [a, b] = await backends('h2c-a', 'h2c-b');
    const { port } = await start(h2Config([a!.address, b!.address], { http: { h2c: true } }));
    const url = `http://127.0.0.1:${port}/items?id=7`;

    const h2 = await curlVersion(['--http2-prior-knowledge', '-H', 'X-Kept: end-to-end'], url);
    expect([h2.version, h2.status]).toEqual(['2', 200]);
    const seen = echoedBy(h2);
    expect(['h2c-a', 'h2c-b']).toContain(seen.id);
    // The HTTP/1.1 backend got an ordinary request: path, a Host from :authority, the
    // client's headers and the forwarding ones.
    expect(seen).toMatchObject({ method: 'GET', url: '/items?id=7', headers: { host: `127.0.0.1:${port}`, 'x-kept': 'end-to-end', 'x-forwarded-proto': 'http', 'x-forwarded-for': '127.0.0.1' } });

    const h1 = await curlVersion(['--http1.1'], url);
    expect([h1.version, h1.status]).toEqual(['1.1', 200]);
    expect(['h2c-a', 'h2c-b']).toContain(echoedBy(h1).id);
    expect(a!.requests + b!.requests).toBe(2);
  });

  it('curl --http2 through a TLS listener negotiates h2 by ALPN; --http1.1 gets HTTP/1.1; tls.alpn [http/1.1] turns h2 off', async () => {
    const ca = new TestCa();
    try {
      const leaf = ca.leaf(['h2.example.test']);
      const [b] = await backends('tls-h2');
      const tls = { certificates: [{ cert: leaf.chain, key: leaf.key }] };
      const { lb, port } = await start(h2Config([b!.address], { tls }));
      const resolve = ['--cacert', ca.cert, '--resolve', `h2.example.test:${port}:127.0.0.1`];
      const url = `https://h2.example.test:${port}/secure`;

      const h2 = await curlVersion(['--http2', ...resolve], url);
      expect([h2.version, h2.status]).toEqual(['2', 200]);
      expect(echoedBy(h2)).toMatchObject({ id: 'tls-h2', url: '/secure', headers: { 'x-forwarded-proto': 'https', host: `h2.example.test:${port}` } });
      // -k as well (the form): no verification, still h2.
      const insecure = await curlVersion(['--http2', '-k', '--resolve', `h2.example.test:${port}:127.0.0.1`], url);
      expect([insecure.version, insecure.status]).toEqual(['2', 200]);

      const h1 = await curlVersion(['--http1.1', ...resolve], url);
      expect([h1.version, h1.status]).toEqual(['1.1', 200]);
      const alpn = lb.stats().listeners[0]!.tls!.alpn;
      expect(alpn.h2).toBe(2);
      expect(alpn['http/1.1']).toBe(1);

      // An explicit tls.alpn replaces the default offer: HTTP/1.1 only.
      const only11 = await Switchyard.start({ ...h2Config([b!.address], { tls: { ...tls, alpn: ['http/1.1'] } }) });
      t.lbs.push(only11);
      const port11 = only11.address('front').port;
      const down = await curlVersion(['--http2', '--cacert', ca.cert, '--resolve', `h2.example.test:${port11}:127.0.0.1`], `https://h2.example.test:${port11}/`);
      expect([down.version, down.status]).toEqual(['1.1', 200]);
    } finally {
      await rm(ca.dir, { recursive: true, force: true });
    }
  });

  it('a plain listener without h2c answers a prior-knowledge client with an error or a close, promptly (no hang)', async () => {
    const [b] = await backends('no-h2c');
    const { port } = await start(h2Config([b!.address]));
    const t0 = Date.now();
    const outcome = await curlVersion(['--http2-prior-knowledge'], `http://127.0.0.1:${port}/`).then(
      (r) => ({ exit: 0, status: r.status }),
      (e: { code?: number; stderr?: string }) => ({ exit: e.code ?? -1, status: 0, stderr: e.stderr }),
    );
    console.log('prior knowledge to a listener without h2c:', outcome, `${Date.now() - t0} ms`);
    // Not served, and not left waiting: curl's --max-time (exit 28) never fires.
    expect(outcome.status).not.toBe(200);
    expect(outcome.exit).not.toBe(28);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(b!.requests).toBe(0);
    // HTTP/1.1 still works there.
    expect((await curlVersion([], `http://127.0.0.1:${port}/`)).status).toBe(200);
  });
});

describe('HTTP/2 clients: the streams of one connection are balanced one by one', () => {
  it('30 requests on one h2c session over 3 HTTP/1.1 backends (round robin): each gets 10 ± 2, one client connection', async () => {
    const peers = await backends('rr1', 'rr2', 'rr3');
    const { lb, port } = await start(h2Config(peers.map((p) => p.address), { http: { h2c: true } }, { algorithm: 'round_robin' }));
    const responses = await onOneSession(port, 30);
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
    const byId = tally(responses.map((r) => (JSON.parse(r.body) as Echoed).id));
    console.log('h2 streams per HTTP/1.1 backend:', byId);
    for (const p of peers) {
      expect(p.requests).toBeGreaterThanOrEqual(8);
      expect(p.requests).toBeLessThanOrEqual(12);
      expect(byId[p.id]).toBe(p.requests);
    }
    expect(lb.stats().listeners[0]!.accepted).toBe(1);
  });

  it('30 requests on one h2c session over 3 HTTP/2 (h2c) backends: each gets 10 ± 2 over at most http2_connections connections each', async () => {
    const peers = await Promise.all(['up1', 'up2', 'up3'].map((id) => h2cBackend(id)));
    try {
      const { lb, port } = await start(
        h2Config(
          peers.map((p) => p.address),
          { http: { h2c: true } },
          { http2: true, keepalive: { http2_connections: 2, http2_streams: 100 } },
        ),
      );
      const responses = await onOneSession(port, 30);
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
      const byId = tally(responses.map((r) => JSON.parse(r.body).id as string));
      console.log('h2 streams per HTTP/2 backend:', byId, 'backend connections:', peers.map((p) => p.sessions));
      for (const p of peers) {
        expect(p.streams).toBeGreaterThanOrEqual(8);
        expect(p.streams).toBeLessThanOrEqual(12);
        expect(byId[p.id]).toBe(p.streams);
        // Multiplexed: at most two connections for its ~10 streams.
        expect(p.sessions).toBeGreaterThanOrEqual(1);
        expect(p.sessions).toBeLessThanOrEqual(2);
      }
      expect(lb.stats().listeners[0]!.accepted).toBe(1);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });
});

describe('HTTP/2 to TLS backends', () => {
  it('a pool with http2 and backend_tls speaks h2 to its backends, chosen by ALPN', async () => {
    const ca = new TestCa();
    const seen: { version: string; alpn: string | false | null }[] = [];
    const leaf = ca.leaf(['backend.example.test']);
    // Offers both, so the version it sees is the one Switchyard chose.
    const server = http2.createSecureServer({ key: readFileSync(leaf.key), cert: readFileSync(leaf.chain), allowHTTP1: true }, (req, res) => {
      seen.push({ version: req.httpVersion, alpn: (req.socket as TLSSocket).alpnProtocol });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'tls-backend' }));
    });
    const sockets = new Set<TLSSocket>();
    server.on('secureConnection', (socket: TLSSocket) => sockets.add(socket));
    try {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { port } = await start(h2Config([address], { http: { h2c: true } }, { http2: true, backend_tls: { sni: 'backend.example.test', ca: ca.cert } }));
      const responses = await onOneSession(port, 5);
      expect(responses.map((r) => [r.status, JSON.parse(r.body)])).toEqual(responses.map(() => [200, { id: 'tls-backend' }]));
      expect(seen).toEqual(seen.map(() => ({ version: '2.0', alpn: 'h2' })));
      expect(seen).toHaveLength(5);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(ca.dir, { recursive: true, force: true });
    }
  });
});

/** An h2c backend answering `{ id }` as JSON; counts the streams it answered. */
interface H2cBackend extends H2cServer {
  id: string;
  streams: number;
}

async function h2cBackend(id: string): Promise<H2cBackend> {
  // The handler runs only for streams, which arrive after `backend` is assigned.
  const backend: H2cBackend = Object.assign(
    await h2cServer((stream) => {
      backend.streams++;
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ id }));
    }),
    { id, streams: 0 },
  );
  return backend;
}
