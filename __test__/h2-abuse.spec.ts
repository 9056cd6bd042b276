/**
 * HTTP/2 abuse against Switchyard, the protection proof of the HTTP/2 issue: an abusive raw-frame
 * client (fixtures/h2-abuse.ts: rapid reset, CONTINUATION flood, PING and SETTINGS floods) runs
 * next to a well-behaved grpc-js client on the same listener, in front of three grpc-js
 * backends over h2c. Every good call must succeed, the abusive connection must end (or its cost
 * stay bounded), and Switchyard must serve afterwards. Also the per-connection limits: more
 * streams than `http.max_concurrent_streams` at once, and a header list above
 * `http.max_header_size`.
 */
import http2 from 'node:http2';
import { rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Switchyard } from '../ts/index.js';
import type { SwitchyardConfig } from '../ts/index.js';
import { TestCa } from './certs.js';
import { EchoClient, grpcPeers, METHODS, type GrpcError, type GrpcPeer } from './fixtures/grpc-servers.js';
import { continuationFlood, H2_ERROR, openStreams, pingFlood, rapidReset, settingsFlood, type AbuseResult, type H2Target } from './fixtures/h2-abuse.js';
import { waitFor } from './helpers.js';

/** What the current test started, stopped after it whatever happened. */
const started = { lbs: [] as Switchyard[], peers: [] as GrpcPeer[], clients: [] as EchoClient[], dirs: [] as string[] };
afterEach(async () => {
  for (const c of started.clients) c.close();
  await Promise.all(started.lbs.map((lb) => lb.close({ drainMs: 0 })));
  await Promise.all(started.peers.map((p) => p.close()));
  await Promise.all(started.dirs.map((d) => rm(d, { recursive: true, force: true })));
  Object.assign(started, { lbs: [], peers: [], clients: [], dirs: [] });
});

/** A gRPC call's head for the raw client: POST to the Echo service's unary method. */
const GRPC_HEAD = { method: 'POST', path: METHODS.unary, grpc: true } as const;

/** A balancer (h2c listener `front`, `http` settings added; TLS listener `secure` when `tls`) over three grpc-js backends spoken to over h2c. */
async function setup(http: Record<string, unknown> = {}, tls?: TestCa): Promise<{ lb: Switchyard; peers: GrpcPeer[]; port: number; client: EchoClient }> {
  const peers = await grpcPeers(3);
  started.peers.push(...peers);
  const listeners: Record<string, unknown> = { front: { address: '127.0.0.1:0', protocol: 'http', pool: 'grpc', http: { h2c: true, ...http } } };
  if (tls) {
    const leaf = tls.leaf(['h2.example.test']);
    listeners.secure = { address: '127.0.0.1:0', protocol: 'http', pool: 'grpc', http, tls: { certificates: [{ cert: leaf.chain, key: leaf.key }] } };
  }
  // The HTTP/2 fields are not in the typed config yet, hence the loose object.
  const config = { workers: 2, listeners, pools: { grpc: { http2: true, connect_timeout: '1s', backends: peers.map((p) => ({ address: p.address })) } } } as unknown as SwitchyardConfig;
  const lb = await Switchyard.start(config);
  started.lbs.push(lb);
  const port = lb.address('front').port;
  const client = new EchoClient(`127.0.0.1:${port}`);
  started.clients.push(client);
  return { lb, peers, port, client };
}

/** What the well-behaved client did. */
interface GoodRun {
  ok: number;
  /** Calls answered while the attack was running. */
  duringAttack: number;
  failures: { code: number; details: string }[];
}

/**
 * Unary calls from `client`, `concurrency` at a time, each checked for its echoed payload: 20
 * before `attack` starts, then on while it runs, until it ended and at least `total` answered.
 * Resolves with the attack's result and the good client's tally.
 */
async function nextToGoodClient<T>(client: EchoClient, attack: () => Promise<T>, total = 200, concurrency = 10): Promise<{ attack: T; good: GoodRun }> {
  const good: GoodRun = { ok: 0, duringAttack: 0, failures: [] };
  let attacking = false;
  let attackDone = false;
  let n = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!(attackDone && good.ok + good.failures.length >= total)) {
      const payload = `call-${n++}`;
      try {
        const reply = await client.unary({ payload });
        if (reply.payload !== payload) throw Object.assign(new Error(`echoed ${reply.payload}`), { code: -1, details: `echoed ${reply.payload} for ${payload}` });
        good.ok++;
        if (attacking) good.duringAttack++;
      } catch (e) {
        const err = e as GrpcError;
        good.failures.push({ code: err.code, details: err.details });
      }
    }
  });
  try {
    await waitFor(() => good.ok + good.failures.length >= 20, 'the good client to get going');
    attacking = true;
    return { attack: await attack(), good };
  } finally {
    attacking = false;
    attackDone = true;
    await Promise.all(loops);
  }
}

/** Requests Switchyard sent to the pool's backends so far. */
const backendRequests = (lb: Switchyard): number => lb.stats().pools[0]!.backends.reduce((sum, b) => sum + b.total, 0);

/** A short line on an attack's outcome for the log. */
const summary = (r: AbuseResult): string =>
  `${r.framesSent} frames in ${r.ms} ms, ${r.goaway ? `GOAWAY code ${r.goaway.errorCode} last stream ${r.goaway.lastStreamId}` : 'no GOAWAY'}, closed ${r.closed}, ${r.resetsReceived} resets ${JSON.stringify(r.resetCodes)}, error ${r.error ?? '-'}`;

/** An attack ended by Switchyard: a GOAWAY (ENHANCE_YOUR_CALM when one was read) or a close, long before its bound. */
function cutOff(r: AbuseResult, maxFrames: number): void {
  expect(r.goaway !== undefined || r.closed, summary(r)).toBe(true);
  // A GOAWAY can be lost when the flood's next write fails first (EPIPE): the close shows then.
  if (r.goaway) expect(r.goaway.errorCode, summary(r)).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
  expect(r.framesSent).toBeLessThan(maxFrames);
  expect(r.ms).toBeLessThan(5_000);
}

/** Every good call succeeded, at least `total`. */
function allGood(good: GoodRun, total = 200): void {
  expect(good.failures).toEqual([]);
  expect(good.ok).toBeGreaterThanOrEqual(total);
}

describe('HTTP/2 abuse next to a well-behaved gRPC client (h2c listener, three grpc-js backends)', () => {
  it('rapid reset: the attacker gets GOAWAY(ENHANCE_YOUR_CALM) after 20 reset streams, at most those reach a backend (none did here); 200+ good calls all succeed', async () => {
    const { lb, port, client } = await setup();
    const target: H2Target = { port };
    const maxFrames = 1_000_000;
    const before = backendRequests(lb);
    const { attack, good } = await nextToGoodClient(client, () => rapidReset(target, { maxFrames, maxMs: 10_000 }, GRPC_HEAD));
    const calls = good.ok + good.failures.length;
    const forAttack = backendRequests(lb) - before - calls;
    console.log(`rapid reset at full speed: ${summary(attack)}; ${Math.floor(attack.framesSent / 2)} streams opened and reset; backend requests for them: ${forAttack}; good client ${good.ok} ok (${good.duringAttack} during the attack)`);
    cutOff(attack, maxFrames);
    allGood(good);
    // h2 stops a connection after 20 streams reset before they were served: of however many
    // the attacker wrote, at most that many (and the one that tipped it) were ever processed.
    expect(forAttack).toBeGreaterThanOrEqual(0);
    expect(forAttack).toBeLessThanOrEqual(21);
    expect(lb.stats().listeners[0]!.routes[0]!.http2_requests - calls).toBeLessThanOrEqual(21);

    // The threshold, exactly: 10 reset streams are a client changing its mind (the connection
    // stays open); 30 get the GOAWAY, whose last stream id says how far the server read.
    const few = await rapidReset(target, { maxFrames: 1 + 2 * 10, settleMs: 1_000 }, GRPC_HEAD);
    expect(few).toMatchObject({ closed: false });
    expect(few.goaway).toBeUndefined();
    const many = await rapidReset(target, { maxFrames: 1 + 2 * 30, settleMs: 5_000 }, GRPC_HEAD);
    console.log(`rapid reset, 30 streams: ${summary(many)}`);
    expect(many.goaway?.errorCode).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    expect(many.goaway!.lastStreamId).toBeLessThan(2 * 30);
    expect(backendRequests(lb) - before - calls).toBeLessThanOrEqual(21 + 10 + 30);
    // Switchyard serves on.
    expect((await client.unary({ payload: 'after' })).payload).toBe('after');
  });

  it('CONTINUATION flood (1 KiB fragments, then empty frames): the attacker is cut off within milliseconds; 200+ good calls all succeed', async () => {
    const { port, client } = await setup();
    const target: H2Target = { port };
    const maxFrames = 1_000_000;
    for (const fragmentBytes of [1024, 0]) {
      const { attack, good } = await nextToGoodClient(client, () => continuationFlood(target, { maxFrames, maxMs: 10_000 }, GRPC_HEAD, fragmentBytes));
      console.log(`CONTINUATION flood, ${fragmentBytes} B fragments: ${summary(attack)}; good client ${good.ok} ok`);
      cutOff(attack, maxFrames);
      allGood(good);
    }
    // A flood that stops once past the limit (30 KiB of header block, one write, where
    // max_header_size is 16 KiB) reads the GOAWAY for sure, no write failing first:
    // ENHANCE_YOUR_CALM, and no stream was opened (last stream id 0).
    const bounded = await continuationFlood(target, { maxFrames: 30, settleMs: 5_000 }, GRPC_HEAD);
    console.log(`CONTINUATION flood, 30 × 1 KiB: ${summary(bounded)}`);
    expect(bounded.goaway).toEqual({ errorCode: H2_ERROR.ENHANCE_YOUR_CALM, lastStreamId: 0 });
    expect((await client.unary({ payload: 'after' })).payload).toBe('after');
  });

  it('PING and SETTINGS floods from a client that does not read: every frame is answered once it reads again, no good call fails', async () => {
    const { port, client } = await setup();
    const target: H2Target = { port };
    for (const flood of [pingFlood, settingsFlood]) {
      const { attack, good } = await nextToGoodClient(client, () => flood(target, { maxFrames: 5_000_000, maxMs: 1_500, settleMs: 3_000 }));
      console.log(`${flood.name}: ${summary(attack)}; ${attack.acksReceived} ACKs (${attack.bytesRead} B) read afterwards; good client ${good.ok} ok (${good.duringAttack} during the flood)`);
      allGood(good);
      // h2 answers each (it stops reading while its answers cannot be written: the flood is
      // held by TCP backpressure, not queued), and none is dropped.
      expect(attack.goaway).toBeUndefined();
      expect(attack.acksReceived).toBe(attack.framesSent);
    }
    expect((await client.unary({ payload: 'after' })).payload).toBe('after');
  });
});

describe('HTTP/2 per-connection limits (h2c listener, three grpc-js backends)', () => {
  it('max_concurrent_streams 10: 30 streams opened at once get 20 REFUSED_STREAM resets (not queued), the connection lives on; other clients are unaffected', async () => {
    const { lb, port, client } = await setup({ max_concurrent_streams: 10 });
    const before = backendRequests(lb);
    const { attack: r, good } = await nextToGoodClient(client, () => openStreams({ port }, 30, {}, 10_000));
    console.log(`30 streams at once, limit 10: ${summary(r)}; ${r.answered.length} answered; good client ${good.ok} ok`);
    allGood(good);
    expect(r.resetCodes).toEqual({ [H2_ERROR.REFUSED_STREAM]: 20 });
    expect(r.answered).toHaveLength(10);
    expect(r.goaway).toBeUndefined();
    expect(r.closed).toBe(false);
    // The refused streams never reached a backend.
    expect(backendRequests(lb) - before - good.ok).toBe(10);
  });

  it('a header list above max_header_size (8k) is refused with 431 on that stream only; the same connection and other clients are served', async () => {
    const { lb, port, client } = await setup({ max_header_size: '8k' });
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    try {
      /** One request on `session` with `extra` headers; its :status, or its reset code. */
      const ask = (extra: Record<string, string>): Promise<{ status?: number; rst?: number }> =>
        new Promise((resolve) => {
          const req = session.request({ ':method': 'POST', ':path': METHODS.unary, 'content-type': 'application/grpc', te: 'trailers', ...extra });
          req.on('response', (h) => resolve({ status: Number(h[':status']) }));
          req.on('error', () => {});
          req.on('close', () => resolve({ rst: req.rstCode }));
          req.end();
        });
      const before = backendRequests(lb);
      const { attack: big, good } = await nextToGoodClient(client, () => ask({ 'x-big': 'a'.repeat(20_000) }));
      console.log('20 kB header list, limit 8k:', big);
      allGood(good);
      expect(big).toEqual({ status: 431 });
      expect(session.closed || session.destroyed).toBe(false);
      expect(backendRequests(lb) - before).toBe(good.ok);
      // The same connection carries a normal call afterwards (a gRPC answer, HTTP 200).
      expect(await ask({})).toEqual({ status: 200 });

      // grpc-js with oversized metadata sees the 431 as a failed call (hyper's refusal comes
      // before Switchyard's handler, so it is HTTP, not a gRPC status).
      const md = new grpc.Metadata();
      md.set('x-big', 'a'.repeat(20_000));
      const err = await new Promise<grpc.ServiceError | null>((resolve) => client.client.makeUnaryRequest(METHODS.unary, (x: Buffer) => x, (x: Buffer) => x, Buffer.from('{}'), md, {}, (e) => resolve(e)));
      console.log('grpc-js call with 20 kB metadata:', err?.code, err?.details);
      expect(err?.code).not.toBe(grpc.status.OK);
      expect(err?.details).toMatch(/431/);
      expect((await client.unary({ payload: 'after' })).payload).toBe('after');
    } finally {
      session.destroy();
    }
  });
});

describe('HTTP/2 abuse over TLS (ALPN h2)', () => {
  it('rapid reset and a CONTINUATION flood on a TLS listener are cut off while a grpc-js client over TLS makes 200+ good calls', async () => {
    const ca = new TestCa();
    started.dirs.push(ca.dir);
    const { lb } = await setup({}, ca);
    const port = lb.address('secure').port;
    const cert = readFileSync(ca.cert);
    const client = new EchoClient(`127.0.0.1:${port}`, { 'grpc.ssl_target_name_override': 'h2.example.test' }, grpc.credentials.createSsl(cert));
    started.clients.push(client);
    const target: H2Target = { port, tls: { ca: cert, servername: 'h2.example.test' } };
    const maxFrames = 1_000_000;
    for (const attack of [() => rapidReset(target, { maxFrames, maxMs: 10_000 }, GRPC_HEAD), () => continuationFlood(target, { maxFrames, maxMs: 10_000 }, GRPC_HEAD)]) {
      const { attack: r, good } = await nextToGoodClient(client, attack);
      console.log(`over TLS: ${summary(r)}; good client ${good.ok} ok`);
      cutOff(r, maxFrames);
      allGood(good);
    }
    expect(lb.stats().listeners.find((l) => l.name === 'secure')!.tls!.alpn.h2).toBeGreaterThanOrEqual(3);
  });
});
