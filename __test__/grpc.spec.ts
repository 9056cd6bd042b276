/**
 * gRPC through Switchyard, the proof of the HTTP/2 issue: one real grpc-js client channel
 * (one HTTP/2 connection) in front of real grpc-js servers, balanced per call, not per
 * connection. Unary spread (round robin, least connections; a TLS channel too), streaming both ways intact,
 * a slow reader (flow control must push back to the server, not buffer in Switchyard), a
 * backend killed mid-run, grpc-timeout, a pool with no backend, and custom statuses with
 * trailing metadata. Raw HTTP/2 (Node's http2) checks what grpc-js would hide: that
 * Switchyard's own refusals are gRPC Trailers-Only answers, not HTTP errors.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Switchyard } from '../ts/index.js';
import type { ListenerHttpConfig, PoolConfig, SwitchyardConfig } from '../ts/config/types.js';
import { EchoClient, grpcPeers, METHODS, rawGrpcCall, readStream, silentH2, type GrpcError, type GrpcPeer, type SilentH2 } from './fixtures/grpc-servers.js';
import { TestCa } from './certs.js';
import { refusedPort, tally, waitFor } from './helpers.js';

/** gRPC status codes the tests name. */
const OK = 0;
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;
const UNAVAILABLE = 14;

/** What the current test started, stopped after it whatever happened. */
const started = { lbs: [] as Switchyard[], peers: [] as GrpcPeer[], silent: [] as SilentH2[], clients: [] as EchoClient[] };
afterEach(async () => {
  for (const c of started.clients) c.close();
  await Promise.all(started.lbs.map((lb) => lb.close({ drainMs: 0 })));
  await Promise.all([...started.peers.map((p) => p.close()), ...started.silent.map((s) => s.close())]);
  started.lbs = [];
  started.peers = [];
  started.silent = [];
  started.clients = [];
});

/** Start `n` gRPC servers (stopped after the test). */
async function servers(n: number): Promise<GrpcPeer[]> {
  const peers = await grpcPeers(n);
  started.peers.push(...peers);
  return peers;
}

/** Pool settings of these tests. */
type PoolExtra = Partial<PoolConfig>;

/**
 * An `http` listener `front` accepting h2c (prior knowledge) whose default route is pool
 * `grpc`, which speaks HTTP/2 (h2c) to `backends`; `pool` and `http` add settings.
 */
function grpcConfig(backends: string[], pool: PoolExtra = {}, http: ListenerHttpConfig = {}): SwitchyardConfig {
  return {
    workers: 2,
    listeners: { front: { address: '127.0.0.1:0', protocol: 'http', pool: 'grpc', http: { h2c: true, ...http } } },
    pools: { grpc: { http2: true, connect_timeout: '1s', ...pool, backends: backends.map((address) => ({ address })) } },
  };
}

/** Start a balancer and a grpc-js client (one channel) on its front listener. */
async function front(config: SwitchyardConfig): Promise<{ lb: Switchyard; port: number; client: EchoClient }> {
  const lb = await Switchyard.start(config);
  started.lbs.push(lb);
  const port = lb.address('front').port;
  const client = new EchoClient(`127.0.0.1:${port}`);
  started.clients.push(client);
  return { lb, port, client };
}

const sha256 = (parts: Buffer[]): string => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest('hex');

describe('gRPC: one client channel, balanced per call', () => {
  it('300 unary calls with the default algorithm: each of 3 backends receives 100 ± 10, over one client connection', async () => {
    const peers = await servers(3);
    const { lb, client } = await front(grpcConfig(peers.map((p) => p.address), { keepalive: { http2_connections: 4, http2_streams: 100 } }));
    const ids: string[] = [];
    const connects = () => lb.stats().pools[0]!.backends.map((b) => b.connects);
    let afterFirstBatch: number[] = [];
    // Ten at a time: several streams share the one connection at once.
    for (let batch = 0; batch < 30; batch++) {
      const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => client.unary({ payload: `${batch}.${i}` })));
      replies.forEach((r, i) => expect(r.payload).toBe(`${batch}.${i}`));
      ids.push(...replies.map((r) => r.id));
      if (batch === 0) afterFirstBatch = connects();
    }
    const byId = tally(ids);
    console.log('unary calls per backend (round robin):', byId);
    for (const p of peers) {
      expect(p.calls).toBeGreaterThanOrEqual(90);
      expect(p.calls).toBeLessThanOrEqual(110);
      expect(byId[p.id]).toBe(p.calls); // each answer came from the backend that counted it
    }
    const stats = lb.stats();
    // One client connection carried all 300 calls.
    expect(stats.listeners[0]!.accepted).toBe(1);
    // Multiplexed to the backends too: at most http2_connections each, opened by the first
    // burst, then reused by the other 290 calls (no connection per call).
    console.log('backend connections (http2_connections 4) after the first batch / at the end:', afterFirstBatch, connects());
    for (const b of stats.pools[0]!.backends) {
      expect(b.connects).toBeGreaterThanOrEqual(1);
      expect(b.connects).toBeLessThanOrEqual(4);
    }
    expect(connects()).toEqual(afterFirstBatch);
  });

  it('least_connections under 60 concurrent calls (each held 100 ms): no backend idle', async () => {
    const peers = await servers(3);
    const { lb, client } = await front(grpcConfig(peers.map((p) => p.address), { algorithm: 'least_connections' }));
    // Two waves of 60 calls in flight at once on the one connection.
    for (let wave = 0; wave < 2; wave++) {
      const replies = await Promise.all(Array.from({ length: 60 }, () => client.unary({ hold_ms: 100 })));
      expect(replies).toHaveLength(60);
    }
    const calls = peers.map((p) => p.calls);
    console.log('unary calls per backend (least_connections, 120 calls):', calls);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(120);
    // Streams in flight are what least_connections counts: every backend takes a real share.
    for (const n of calls) expect(n).toBeGreaterThanOrEqual(20);
    expect(lb.stats().listeners[0]!.accepted).toBe(1);
  });

  it('least_connections counts streams in flight: a slow backend (500 ms per call) gets far fewer of 150 calls than its third', async () => {
    const peers = await servers(3);
    const [slow, ...fast] = peers;
    slow!.delayMs = 500;
    const { client } = await front(grpcConfig(peers.map((p) => p.address), { algorithm: 'least_connections' }));
    // Ten loops of back-to-back calls: the slow backend's calls stay in flight, so it is
    // the busiest whenever a call is placed; by round robin it would get 50.
    let placed = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (placed < 150) {
          placed++;
          await client.unary({});
        }
      }),
    );
    const calls = peers.map((p) => p.calls);
    console.log('least_connections with one slow backend (slow first):', calls);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(150);
    expect(slow!.calls).toBeGreaterThanOrEqual(1);
    expect(slow!.calls).toBeLessThan(25);
    for (const p of fast) expect(p.calls).toBeGreaterThan(50);
  });
});

describe('gRPC: over TLS', () => {
  it('a grpc-js TLS channel to a TLS listener (ALPN h2) is balanced per call over h2c backends', async () => {
    const ca = new TestCa();
    try {
      const leaf = ca.leaf(['grpc.example.test']);
      const peers = await servers(3);
      const plain = grpcConfig(peers.map((p) => p.address));
      const config = { ...plain, listeners: { front: { ...plain.listeners.front!, http: {}, tls: { certificates: [{ cert: leaf.chain, key: leaf.key }] } } } };
      const lb = await Switchyard.start(config);
      started.lbs.push(lb);
      const credentials = grpc.credentials.createSsl(readFileSync(ca.cert));
      const client = new EchoClient(`127.0.0.1:${lb.address('front').port}`, { 'grpc.ssl_target_name_override': 'grpc.example.test', 'grpc.default_authority': 'grpc.example.test' }, credentials);
      started.clients.push(client);
      const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => client.unary({ payload: String(i) })));
      expect(replies.map((r) => r.payload)).toEqual(replies.map((_, i) => String(i)));
      expect(peers.map((p) => p.calls)).toEqual([10, 10, 10]);
      const listener = lb.stats().listeners[0]!;
      expect(listener.accepted).toBe(1);
      expect(listener.tls!.alpn.h2).toBe(1);
    } finally {
      await rm(ca.dir, { recursive: true, force: true });
    }
  });
});

describe('gRPC: streaming', () => {
  it('a server-streaming call (1000 × 1 KiB) and a bidirectional call (messages echoed in order) pass through intact', async () => {
    const peers = await servers(3);
    const { client } = await front(grpcConfig(peers.map((p) => p.address)));

    const down = await readStream(client.serverStream({ n: 1000, size: 1024 }));
    expect(down.status.code).toBe(OK);
    expect([down.messages, down.bytes]).toEqual([1000, 1000 * 1024]);
    // The server's hash of what it sent arrives in its trailers (trailers pass through too).
    expect(down.status.metadata.get('x-sha256')).toEqual([down.sha256]);

    const call = client.bidi();
    const echoedBack: Buffer[] = [];
    const sent: Buffer[] = [];
    const done = readStream(call);
    call.on('data', (m: Buffer) => echoedBack.push(m));
    // Interleaved: each message waits for its echo before the next, so both directions are
    // open at once for the whole call; sizes vary from 1 byte to 64 KiB.
    const ended = done.then((r) => Promise.reject(new Error(`the call ended early: ${r.status.code} ${r.status.details}`)));
    ended.catch(() => {}); // raced below; unobserved once the call ends normally
    for (let i = 0; i < 200; i++) {
      const m = randomBytes(1 + ((i * 7919) % (64 * 1024)));
      sent.push(m);
      const echo = new Promise((resolve) => call.once('data', resolve));
      call.write(m);
      await Promise.race([echo, ended]);
    }
    call.end();
    const result = await done;
    expect(result.status.code).toBe(OK);
    expect(result.status.metadata.get('x-count')).toEqual(['200']);
    expect(echoedBack.map((m) => m.length)).toEqual(sent.map((m) => m.length));
    expect(result.sha256).toBe(sha256(sent));
  });

  it('a slow reader: a server stream of 80 MiB stalls at the server while the client pauses (no unbounded buffering), then completes intact', async () => {
    const peers = await servers(1);
    const [server] = peers;
    const { client } = await front(grpcConfig([server!.address]));
    await client.unary({}); // connections up before the baseline
    const rssBefore = process.memoryUsage().rss;
    const total = 5120 * 16 * 1024;
    const call = client.serverStream({ n: 5120, size: 16 * 1024 });
    call.on('error', () => {}); // the outcome is read from 'status' below
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    const sha = createHash('sha256');
    let bytes = 0;
    call.on('data', (m: Buffer) => {
      sha.update(m);
      bytes += m.length;
    });
    // Read the first message, then stop reading: grpc-js stops taking data from its HTTP/2
    // stream (its buffer is full), so only flow control stands between the server and
    // Switchyard's memory.
    await new Promise<void>((resolve) =>
      call.once('data', () => {
        call.pause();
        resolve();
      }),
    );
    // The server's writes stop completing and stay stopped: it has waited for 'drain' for a
    // whole second (a state observed, not a sleep: if Switchyard kept reading from the backend,
    // 'drain' would come within milliseconds).
    await waitFor(() => server!.stream.blocked && Date.now() - server!.stream.blockedSince >= 1_000, 'the backend to be held up by flow control', 30_000);
    const writtenWhilePaused = server!.stream.written;
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    console.log(`slow reader: server wrote ${(writtenWhilePaused / 2 ** 20).toFixed(1)} MiB of ${total / 2 ** 20} MiB while the client paused; RSS +${(rssGrowth / 2 ** 20).toFixed(1)} MiB`);
    // Windows and buffers on the way, not the stream: far below the 80 MiB the server would
    // have written into an unbounded buffer.
    expect(writtenWhilePaused).toBeLessThan(16 * 2 ** 20);
    expect(rssGrowth).toBeLessThan(64 * 2 ** 20);
    expect(server!.stream.done).toBe(false);

    // Reading again drains it all, intact and in order.
    call.resume();
    const end = await status;
    expect(end.code).toBe(OK);
    expect(bytes).toBe(total);
    expect(end.metadata.get('x-sha256')).toEqual([sha.digest('hex')]);
    expect(server!.stream.done).toBe(true);
  });
});

describe('gRPC: failures', () => {
  it('a backend killed mid-run: calls fail over; only calls in flight on it may fail', async () => {
    const peers = await servers(3);
    const { client } = await front(grpcConfig(peers.map((p) => p.address)));
    const concurrency = 10;
    const [victim, ...survivors] = peers;
    let ok = 0;
    let killedAt = 0;
    const failures: { code: number; details: string; startedAfterKill: boolean }[] = [];
    // Ten loops of back-to-back calls (each held 20 ms by the server, so calls are in flight
    // on every backend when one is killed); 150 calls are answered before the kill and at
    // least 300 after it.
    let stop = false;
    const loops = Array.from({ length: concurrency }, async () => {
      while (!stop) {
        const startedAt = Date.now();
        try {
          await client.unary({ hold_ms: 20 });
          ok++;
        } catch (e) {
          const err = e as GrpcError;
          failures.push({ code: err.code, details: err.details, startedAfterKill: killedAt > 0 && startedAt > killedAt });
        }
      }
    });
    try {
      await waitFor(() => ok >= 150, '150 calls before the kill', 60_000);
      killedAt = Date.now();
      victim!.kill();
      const okAtKill = ok;
      await waitFor(() => ok >= okAtKill + 300, '300 calls after the kill', 60_000);
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    console.log(`backend killed mid-run: ${failures.length} call(s) failed (concurrency ${concurrency}):`, failures);
    expect(failures.length).toBeLessThanOrEqual(concurrency);
    // A call that started after the kill found the backend gone: it is retried elsewhere.
    expect(failures.filter((f) => f.startedAfterKill)).toEqual([]);
    // The survivors shared the calls after the kill.
    for (const p of survivors) expect(p.calls).toBeGreaterThan(100);
  });

  it('grpc-timeout is the request timeout: a 200 ms deadline on a call nobody answers ends with DEADLINE_EXCEEDED long before request_timeout', async () => {
    const peers = await servers(1);
    const silent = await silentH2();
    started.silent.push(silent);
    // grpc-js on both ends: the deadline holds whichever side enforces it first.
    const { client } = await front(grpcConfig([peers[0]!.address], {}, { request_timeout: '60s' }));
    const t0 = Date.now();
    const err = (await client.unary({ never: true }, { deadline: Date.now() + 200 }).catch((e: unknown) => e)) as GrpcError;
    expect(err.code).toBe(DEADLINE_EXCEEDED);
    expect(Date.now() - t0).toBeLessThan(10_000);

    // A raw client that enforces nothing, to a backend that ignores grpc-timeout: only
    // Switchyard can end this call, and it must do so as a gRPC answer after ~200 ms.
    const lb = await Switchyard.start(grpcConfig([silent.address], {}, { request_timeout: '60s' }));
    started.lbs.push(lb);
    const t1 = Date.now();
    const raw = await rawGrpcCall(lb.address('front').port, METHODS.unary, {}, { 'grpc-timeout': '200m' }, 20_000);
    const took = Date.now() - t1;
    console.log(`grpc-timeout 200m, silent backend: Switchyard answered after ${took} ms`, raw.headers, raw.trailers);
    expect(raw.headers[':status']).toBe(200);
    expect(String(raw.headers['content-type'])).toMatch(/^application\/grpc/);
    expect({ ...raw.headers, ...raw.trailers }['grpc-status']).toBe(String(DEADLINE_EXCEEDED));
    expect(took).toBeGreaterThanOrEqual(150);
    expect(took).toBeLessThan(10_000);
    expect(silent.streams).toBe(1);
    // The gRPC request reached the backend as one: path, content type and `te: trailers`.
    expect(silent.headers).toMatchObject({ ':method': 'POST', ':path': METHODS.unary, 'content-type': 'application/grpc', te: 'trailers' });
    // The abandoned backend stream is reset, not left open.
    await waitFor(() => silent.closed === 1, 'the backend stream to be reset');
  });

  it('a pool whose backends are all down: the client gets UNAVAILABLE as a gRPC status (Trailers-Only), not an HTTP error', async () => {
    const dead = [await refusedPort(), await refusedPort()].map((p) => `127.0.0.1:${p}`);
    const { port, client } = await front(grpcConfig(dead, { retries: 1 }));
    const err = (await client.unary({}).catch((e: unknown) => e)) as GrpcError;
    expect(err.code).toBe(UNAVAILABLE);
    // grpc-js maps a bare HTTP 503 to UNAVAILABLE too, with this text: not what came here.
    expect(err.details).not.toMatch(/HTTP status code/);

    const raw = await rawGrpcCall(port, METHODS.unary, {});
    expect(raw.headers[':status']).toBe(200);
    expect(String(raw.headers['content-type'])).toMatch(/^application\/grpc/);
    // Trailers-Only: the status is in the one HEADERS frame, no body.
    expect(raw.headers['grpc-status']).toBe(String(UNAVAILABLE));
    expect(raw.body.length).toBe(0);
  });

  it('a custom status passes through exactly: code, message and trailing metadata, unary and after streamed messages', async () => {
    const peers = await servers(2);
    const { client } = await front(grpcConfig(peers.map((p) => p.address)));
    const ask = { status: NOT_FOUND, message: 'no widget 42 (ünïcode, 100%)', trailers: { 'x-reason': 'gone', 'x-widget': '42' } };
    const err = (await client.unary(ask).catch((e: unknown) => e)) as GrpcError;
    expect(err.code).toBe(NOT_FOUND);
    expect(err.details).toBe(ask.message);
    expect(err.metadata.get('x-reason')).toEqual(['gone']);
    expect(err.metadata.get('x-widget')).toEqual(['42']);

    const streamed = await readStream(client.serverStream({ ...ask, n: 3, size: 100 }));
    expect(streamed.messages).toBe(3);
    expect(streamed.status.code).toBe(NOT_FOUND);
    expect(streamed.status.details).toBe(ask.message);
    expect(streamed.status.metadata.get('x-reason')).toEqual(['gone']);
  });
});
