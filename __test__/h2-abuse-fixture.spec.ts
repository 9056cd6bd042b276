/**
 * The abusive HTTP/2 client (fixtures/h2-abuse.ts) checked before it is used against
 * Switchyard: against raw servers whose reaction is known exactly (a GOAWAY, a close), and
 * against a real HTTP/2 stack, HAProxy (`mode http`, `bind … proto h2` over h2c and
 * `ssl … alpn h2` over TLS) in front of a Node HTTP/1.1 server. Its requests must be
 * well-formed enough to be answered, its attacks frames HAProxy accepts as valid (no
 * PROTOCOL_ERROR or COMPRESSION_ERROR) or stops as abuse, and it must stop on GOAWAY or close
 * without throwing.
 */
import { writeFileSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCa } from './certs.js';
import { continuationFlood, frame, FRAME, H2_ERROR, h2Request, PREFACE, pingFlood, rapidReset, settingsFlood, type AbuseResult, type H2Target } from './fixtures/h2-abuse.js';
import { httpPeer, type HttpPeer } from './fixtures/http-peers.js';
import { haproxy, hasHaproxy, type Daemon } from './fixtures/proxy-peers.js';
import { refusedPort } from './helpers.js';
import { stopAll } from './processes.js';

/** A raw TCP server on 127.0.0.1 calling `onConn` for each connection; closed by `close()`. */
async function rawServer(onConn: (s: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Errors that mean the fixture wrote something malformed (HAProxy answers abuse otherwise). */
const MALFORMED: number[] = [H2_ERROR.PROTOCOL_ERROR, H2_ERROR.COMPRESSION_ERROR, H2_ERROR.FRAME_SIZE_ERROR];
const wellFormed = (r: AbuseResult): boolean => r.goaway === undefined || !MALFORMED.includes(r.goaway.errorCode);

describe('h2-abuse fixture against raw servers', () => {
  it('stops at a GOAWAY and reports its code and last stream id', async () => {
    // answers the preface with GOAWAY(last 7, ENHANCE_YOUR_CALM) and then reads everything
    const goaway = Buffer.alloc(8);
    goaway.writeUInt32BE(7, 0);
    goaway.writeUInt32BE(H2_ERROR.ENHANCE_YOUR_CALM, 4);
    let received = 0;
    const srv = await rawServer((s) => {
      s.once('data', () => s.write(Buffer.concat([frame(FRAME.SETTINGS, 0, 0), frame(FRAME.GOAWAY, 0, 0, goaway)])));
      s.on('data', (d: Buffer) => (received += d.length));
    });
    try {
      const r = await rapidReset({ port: srv.port }, { maxFrames: 1_000_000, maxMs: 20_000, settleMs: 500 });
      expect(r.goaway).toEqual({ lastStreamId: 7, errorCode: H2_ERROR.ENHANCE_YOUR_CALM });
      // it stopped long before its bound
      expect(r.framesSent).toBeLessThan(1_000_000);
      expect(received).toBeGreaterThanOrEqual(PREFACE.length);
    } finally {
      await srv.close();
    }
  });

  it('stops without throwing when the peer resets the connection, reading or not', async () => {
    // reads the preface, then resets: later writes fail with EPIPE/ECONNRESET
    const srv = await rawServer((s) => s.once('data', () => s.resetAndDestroy()));
    try {
      for (const attack of [rapidReset, continuationFlood, pingFlood, settingsFlood]) {
        const r = await attack({ port: srv.port }, { maxFrames: 10_000_000, maxMs: 20_000, settleMs: 500 });
        expect(r.closed, attack.name).toBe(true);
        expect(r.framesSent, attack.name).toBeLessThan(10_000_000);
      }
    } finally {
      await srv.close();
    }
  });

  it('respects backpressure: a peer that never reads holds the flood at the time bound', async () => {
    const srv = await rawServer((s) => s.pause());
    try {
      const r = await pingFlood({ port: srv.port }, { maxFrames: 50_000_000, maxMs: 1_500, settleMs: 200 });
      // the kernel buffers fill and it waits for drain instead of queueing 50M frames in memory
      expect(r.framesSent).toBeLessThan(50_000_000);
      expect(r.closed).toBe(false);
      expect(r.goaway).toBeUndefined();
    } finally {
      await srv.close();
    }
  });
});

describe.skipIf(!hasHaproxy)('h2-abuse fixture against HAProxy (mode http, proto h2)', () => {
  let dir = '';
  let backend: HttpPeer;
  let hap: Daemon;
  let h2c: H2Target;
  let h2tls: H2Target;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-h2abuse-'));
    backend = await httpPeer('b1', (req, res) => {
      req.resume();
      req.once('end', () => res.end('ok'));
    });
    const ca = new TestCa();
    const leaf = ca.leaf(['localhost']);
    const pem = join(dir, 'haproxy.pem'); // HAProxy wants the chain and the key in one file
    writeFileSync(pem, readFileSync(leaf.chain, 'utf8') + readFileSync(leaf.key, 'utf8'));
    const [plain, secure] = [await refusedPort(), await refusedPort()];
    hap = await haproxy(
      dir,
      `frontend h2c
  mode http
  bind 127.0.0.1:${plain} proto h2
  bind 127.0.0.1:${secure} ssl crt ${pem} alpn h2
  default_backend app
backend app
  mode http
  server b1 ${backend.address}
`,
      [plain, secure],
    );
    h2c = { port: plain };
    h2tls = { port: secure, tls: { ca: readFileSync(ca.cert), servername: 'localhost' } };
  });

  afterAll(async () => {
    await hap?.kill();
    await backend?.close();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends well-formed requests: a GET and a gRPC-style POST are answered 200, over h2c and TLS with ALPN h2', async () => {
    const before = backend.requests;
    for (const target of [h2c, h2tls]) {
      for (const head of [{}, { method: 'POST' as const, path: '/pkg.Svc/Call', grpc: true }]) {
        const r = await h2Request(target, head);
        expect(r, JSON.stringify({ target, head })).toMatchObject({ status: 200, complete: true, closed: false });
        expect(r.goaway).toBeUndefined();
      }
    }
    expect(backend.requests - before).toBe(4);
  });

  it('rapid reset: thousands of HEADERS + RST_STREAM pairs, all valid frames, and HAProxy still serves', async () => {
    for (const target of [h2c, h2tls]) {
      const r = await rapidReset(target, { maxFrames: 20_001, maxMs: 60_000 });
      // HAProxy 2.6 absorbs rapid resets (newer ones may answer ENHANCE_YOUR_CALM); a malformed
      // frame or header block would end in PROTOCOL_ERROR / COMPRESSION_ERROR instead
      expect(wellFormed(r), JSON.stringify(r)).toBe(true);
      if (!r.goaway && !r.closed) expect(r.framesSent).toBe(20_001);
      expect((await h2Request(target)).status).toBe(200);
    }
  });

  it('CONTINUATION flood: HAProxy ends the connection (GOAWAY or close) long before the bound', async () => {
    for (const fragmentBytes of [1024, 0]) {
      const r = await continuationFlood(h2c, { maxFrames: 2_000_000, maxMs: 60_000 }, {}, fragmentBytes);
      expect(r.goaway !== undefined || r.closed, JSON.stringify(r)).toBe(true);
      expect(r.framesSent).toBeLessThan(2_000_000);
    }
    expect((await h2Request(h2c)).status).toBe(200);
  });

  it('PING and SETTINGS floods while not reading: the answers are read afterwards, as ACKs', async () => {
    for (const attack of [pingFlood, settingsFlood]) {
      const r = await attack(h2c, { maxFrames: 20_000, maxMs: 60_000, settleMs: 2_000 });
      expect(wellFormed(r), JSON.stringify(r)).toBe(true);
      expect(r.framesSent, attack.name).toBeGreaterThan(1);
      // every ACK is 9 bytes or more: what was read holds at least some of them
      expect(r.acksReceived, attack.name).toBeGreaterThan(0);
      expect(r.bytesRead).toBeGreaterThanOrEqual(9 * r.acksReceived);
    }
  });
});
