/**
 * The `grpc` active check: its codec, probes against real gRPC servers
 * (@grpc/grpc-js with a hand-written grpc.health.v1.Health service: generic
 * service definitions, no proto loader, no codegen) and non-gRPC peers, its
 * configuration, and a balancer whose checks take a NOT_SERVING backend out.
 * Polls with generous deadlines; never sleeps as synchronisation.
 */
import { rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../ts/config/validate.js';
import { ConfigError } from '../ts/errors.js';
import type { ResolvedHealthCheck, SwitchyardConfig } from '../ts/index.js';
import { Switchyard } from '../ts/index.js';
import { decodeHealthResponse, encodeHealthRequest } from '../ts/health/grpc.js';
import { probe } from '../ts/health/probes.js';
import { TestCa } from './certs.js';
import { peer, waitFor } from './helpers.js';

const SERVING = 1;
const NOT_SERVING = 2;
const UNKNOWN = 0;

/** Everything a test started, stopped after it even when it fails. */
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** The test's own decoder of HealthCheckRequest (independent of the product's encoder). */
function readHealthRequest(buf: Buffer): { service: string } {
  if (buf.length === 0) return { service: '' };
  if (buf[0] !== 0x0a) throw new Error(`unexpected tag ${buf[0]}`);
  let len = 0;
  let shift = 0;
  let i = 1;
  for (;;) {
    const b = buf[i++]!;
    len |= (b & 0x7f) << shift;
    shift += 7;
    if (b < 0x80) break;
  }
  if (i + len !== buf.length) throw new Error(`length ${len} does not match ${buf.length - i} bytes`);
  return { service: buf.subarray(i).toString('utf8') };
}

/** grpc.health.v1.Health as a grpc-js generic service definition. */
const HEALTH_SERVICE: grpc.ServiceDefinition = {
  check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: (r: { service: string }) => Buffer.from(r.service),
    requestDeserialize: readHealthRequest,
    // UNKNOWN (0) is the default: an empty message.
    responseSerialize: (r: { status: number }) => (r.status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, r.status])),
    responseDeserialize: (b: Buffer) => ({ status: b[1] ?? 0 }),
  },
};

/** A tiny service that names the backend, to see where a new client connection lands. */
const WHO_SERVICE: grpc.ServiceDefinition = {
  am: {
    path: '/test.Who/Am',
    requestStream: false,
    responseStream: false,
    requestSerialize: () => Buffer.alloc(0),
    requestDeserialize: () => ({}),
    responseSerialize: (id: string) => Buffer.from(id),
    responseDeserialize: (b: Buffer) => b.toString(),
  },
};

interface CallSeen {
  service: string;
  authority: string;
  deadline: number;
  userAgent: string;
}

interface HealthBackend {
  id: string;
  address: string;
  port: number;
  /** Service name ("" = the whole server) → serving status; a missing name answers NOT_FOUND. */
  statuses: Map<string, number>;
  /** Every Check call received. */
  calls: CallSeen[];
}

/** A real grpc-js server with the health service (unless `statuses` is null) and Who/Am, on a free port of 127.0.0.1. */
async function healthServer(id: string, statuses: Record<string, number> | null, creds = grpc.ServerCredentials.createInsecure()): Promise<HealthBackend> {
  const server = new grpc.Server();
  const b = { id, statuses: new Map(Object.entries(statuses ?? {})), calls: [] as CallSeen[] } as HealthBackend;
  // null: a gRPC server without the health service.
  if (statuses) server.addService(HEALTH_SERVICE, {
    check: (call: grpc.ServerUnaryCall<{ service: string }, { status: number }>, cb: grpc.sendUnaryData<{ status: number }>) => {
      const deadline = call.getDeadline();
      b.calls.push({
        service: call.request.service,
        authority: call.getHost(),
        deadline: deadline instanceof Date ? deadline.getTime() : deadline,
        userAgent: String(call.metadata.get('user-agent')[0] ?? ''),
      });
      const status = b.statuses.get(call.request.service);
      if (status === undefined) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else cb(null, { status });
    },
  });
  server.addService(WHO_SERVICE, { am: (_call: unknown, cb: grpc.sendUnaryData<string>) => cb(null, id) });
  b.port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, port) => (err ? reject(err) : resolve(port))));
  b.address = `127.0.0.1:${b.port}`;
  closers.push(() => server.forceShutdown());
  return b;
}

/** One Who/Am call on a new channel (so a new TCP connection through the balancer). */
async function whoAmI(port: number): Promise<string> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      client.makeUnaryRequest('/test.Who/Am', () => Buffer.alloc(0), (b: Buffer) => b.toString(), {}, { deadline: Date.now() + 10_000 }, (err, v) =>
        err ? reject(err) : resolve(v!),
      ),
    );
  } finally {
    client.close();
  }
}

/** The resolved check for a raw `health_check` section. */
function resolved(check: object): ResolvedHealthCheck {
  return validateConfig({ listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { health_check: check, backends: [{ address: '127.0.0.1:1' }] } } }, 'test').pools[0]!
    .health_check!;
}

function issues(check: object): { path: string; message: string }[] {
  try {
    validateConfig({ listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { health_check: check, backends: [{ address: '10.0.0.1:80' }] } } }, 'test');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

const hex = (b: Buffer) => b.toString('hex');

describe('grpc health codec', () => {
  it('encodes HealthCheckRequest in a gRPC frame: empty, short and ≥128-byte service names', () => {
    expect(hex(encodeHealthRequest(''))).toBe('0000000000');
    expect(hex(encodeHealthRequest('svc.A'))).toBe(`0000000007${'0a05'}${hex(Buffer.from('svc.A'))}`);
    // 127 bytes still fit one varint byte; 128 and 200 need two (low 7 bits | 0x80, then the rest).
    const n127 = 'a'.repeat(127);
    expect(hex(encodeHealthRequest(n127))).toBe(`00${(2 + 127).toString(16).padStart(8, '0')}0a7f${hex(Buffer.from(n127))}`);
    const n128 = 'b'.repeat(128);
    expect(hex(encodeHealthRequest(n128))).toBe(`00${(3 + 128).toString(16).padStart(8, '0')}0a8001${hex(Buffer.from(n128))}`);
    const n200 = 'c'.repeat(200);
    expect(hex(encodeHealthRequest(n200))).toBe(`00000000cb0ac801${hex(Buffer.from(n200))}`);
    // The test server's own decoder reads them back.
    for (const s of ['', 'svc.A', n127, n128, n200, 'x'.repeat(20_000)]) expect(readHealthRequest(encodeHealthRequest(s).subarray(5)).service).toBe(s);
  });

  it('decodes HealthCheckResponse: statuses, the empty UNKNOWN, unknown fields, and broken frames', () => {
    expect(decodeHealthResponse(Buffer.from('000000000208' + '01', 'hex'))).toEqual({ status: SERVING });
    expect(decodeHealthResponse(Buffer.from('00000000020802', 'hex'))).toEqual({ status: NOT_SERVING });
    expect(decodeHealthResponse(Buffer.from('0000000000', 'hex'))).toEqual({ status: UNKNOWN });
    // A field this reader does not know (field 2, length-delimited "hi"; field 3 fixed32) is skipped.
    expect(decodeHealthResponse(Buffer.from('000000000b' + '12026869' + '1d01020304' + '0801', 'hex'))).toEqual({ status: SERVING });
    expect(decodeHealthResponse(Buffer.alloc(0))).toEqual({ error: 'no response message' });
    expect(decodeHealthResponse(Buffer.from('000000', 'hex'))).toEqual({ error: 'truncated gRPC frame' });
    expect(decodeHealthResponse(Buffer.from('00000000050801', 'hex'))).toEqual({ error: 'truncated response message' });
    expect(decodeHealthResponse(Buffer.from('01000000020801', 'hex'))).toMatchObject({ error: expect.stringMatching(/compressed/) });
    expect(decodeHealthResponse(Buffer.from('000000000208', 'hex'))).toEqual({ error: 'truncated response message' });
    expect(decodeHealthResponse(Buffer.from('000000000108', 'hex'))).toEqual({ error: 'malformed HealthCheckResponse' });
  });
});

describe('grpc check configuration', () => {
  it('resolves defaults, the service, the authority and TLS from health_check.tls', () => {
    expect(resolved({ type: 'grpc' })).toMatchObject({ type: 'grpc', http: null, grpc: { service: '', authority: null }, tls: null });
    expect(resolved({ type: 'grpc', grpc: { service: 'svc.A', authority: 'api.internal:50051', tls: true }, tls: { sni: 'api.internal' } })).toMatchObject({
      grpc: { service: 'svc.A', authority: 'api.internal:50051' },
      tls: { sni: 'api.internal', verify: true, ca: null },
    });
    expect(resolved({ type: 'tcp' }).grpc).toBeNull();
  });

  it('reports bad fields with their path and value, and sections that do not apply', () => {
    const found = issues({ type: 'grpc', grpc: { service: 'has space', tls: 'yes', authority: '', colour: 1 }, tls: { verify: false } });
    const at = (path: string) => found.filter((i) => i.path === path).map((i) => i.message).join('; ');
    expect(at('pools.p.health_check.grpc.service')).toMatch(/expected a service name .*got "has space"/);
    expect(at('pools.p.health_check.grpc.tls')).toMatch(/expected true or false, got "yes"/);
    expect(at('pools.p.health_check.grpc.authority')).toMatch(/:authority .*got ""/);
    expect(at('pools.p.health_check.grpc.colour')).toMatch(/unknown key "colour" \(allowed: service, tls, authority\)/);
    expect(at('pools.p.health_check.tls')).toMatch(/or grpc with grpc.tls: true; the type is "grpc" without grpc.tls/);
    expect(issues({ type: 'http', grpc: { service: 'a' } })).toEqual([{ path: 'pools.p.health_check.grpc', message: 'applies only to type grpc, but the type is "http"' }]);
    expect(issues({ type: 'gprc' })[0]).toMatchObject({ path: 'pools.p.health_check.type', message: expect.stringMatching(/tcp, http, tls, grpc.*got "gprc"/) });
    expect(issues({ type: 'grpc', grpc: { service: '' } })).toEqual([]);
  });
});

describe('grpc probes', () => {
  const check = (grpcSection: object = {}, over: object = {}) => resolved({ type: 'grpc', interval: '5s', timeout: '3s', grpc: grpcSection, ...over });

  it('passes only for SERVING; NOT_SERVING, UNKNOWN and an unknown service fail with the reason', async () => {
    const long = `svc.${'l'.repeat(196)}`;
    const b = await healthServer('a', { '': SERVING, 'svc.A': NOT_SERVING, 'svc.U': UNKNOWN, [long]: SERVING });
    const before = Date.now();
    expect(await probe(b.address, check())).toMatchObject({ ok: true, reason: 'grpc health: SERVING' });
    expect(await probe(b.address, check({ service: 'svc.A' }))).toMatchObject({ ok: false, reason: 'grpc health: NOT_SERVING' });
    expect(await probe(b.address, check({ service: 'svc.U' }))).toMatchObject({ ok: false, reason: 'grpc health: UNKNOWN' });
    // Trailers-Only answer: grpc-status 5 in the headers.
    expect(await probe(b.address, check({ service: 'nope' }))).toMatchObject({ ok: false, reason: 'grpc-status 5 (NOT_FOUND): unknown service' });
    // A 200-byte name (two-byte varint length) arrives intact.
    expect(await probe(b.address, check({ service: long }))).toMatchObject({ ok: true, reason: 'grpc health: SERVING' });
    expect(b.calls.map((c) => c.service)).toEqual(['', 'svc.A', 'svc.U', 'nope', long]);
    // What the server saw: the default authority (ip:port), the check's deadline (grpc-timeout 3000m), our user agent.
    const first = b.calls[0]!;
    expect(first.authority).toBe(b.address);
    expect(first.userAgent).toMatch(/^switchyard-health-check/);
    expect(first.deadline).toBeGreaterThanOrEqual(before + 3_000 - 50);
    expect(first.deadline).toBeLessThanOrEqual(Date.now() + 3_000);
    b.statuses.set('', NOT_SERVING);
    expect(await probe(b.address, check({}, { port: b.port }))).toMatchObject({ ok: false, reason: 'grpc health: NOT_SERVING' });
    await probe(b.address, check({ authority: 'api.internal:50051' }));
    expect(b.calls.at(-1)!.authority).toBe('api.internal:50051');
  });

  it('fails peers that are not gRPC health servers, with reasons', async () => {
    const noHealth = await healthServer('plain', null);
    expect(await probe(noHealth.address, check())).toMatchObject({ ok: false, reason: expect.stringMatching(/^grpc-status 12 \(UNIMPLEMENTED\)/) });

    const closes = await peer((s) => s.destroy());
    closers.push(() => closes.close());
    const r1 = await probe(closes.address, check());
    expect(r1.ok).toBe(false);
    expect(r1.reason).toMatch(/^(connection closed before a response|connection reset)$/);

    const h1 = http.createServer((_req, res) => res.end('hello'));
    const h1Address = await listen(h1);
    const r2 = await probe(h1Address, check());
    expect(r2.ok).toBe(false);
    // Node's HTTP/1.1 server answers the h2 preface with a 400, which nghttp2 rejects.
    expect(r2.reason).toMatch(/^HTTP\/2: .*\(not an HTTP\/2 server\?\)$|^connection (closed before a response|reset)$/);

    // An HTTP/2 server that is not a gRPC server: 404, then 200 text/html, then a stream reset.
    let mode: 'status' | 'html' | 'reset' = 'status';
    const h2 = http2.createServer();
    h2.on('stream', (stream) => {
      stream.on('error', () => {}); // the refused stream's own error, expected
      if (mode === 'status') stream.respond({ ':status': 404 }, { endStream: true });
      else if (mode === 'html') stream.respond({ ':status': 200, 'content-type': 'text/html' }, { endStream: true });
      else stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    });
    const h2Address = await listen(h2);
    expect(await probe(h2Address, check())).toMatchObject({ ok: false, reason: 'HTTP 404 (not a gRPC answer)' });
    mode = 'html';
    expect(await probe(h2Address, check())).toMatchObject({ ok: false, reason: 'not a gRPC answer (content-type "text/html")' });
    mode = 'reset';
    expect((await probe(h2Address, check())).reason).toMatch(/stream reset by the backend.*REFUSED_STREAM|code 7/);
  });

  it('a silent backend fails after the timeout, and the check leaves no connection open', async () => {
    // The peer is half-open capable: the client's FIN (end) is what shows the check let go.
    let open = 0;
    const silent = await peer((s) => {
      open++;
      let gone = false;
      const bye = () => {
        if (!gone) open--;
        gone = true;
      };
      s.on('end', bye);
      s.on('error', bye);
      s.resume();
    });
    closers.push(() => silent.close());
    const r = await probe(silent.address, check({}, { interval: '300ms', timeout: '300ms' }));
    expect(r).toMatchObject({ ok: false, reason: 'timeout after 300 ms' });
    expect(r.duration_ms).toBeGreaterThanOrEqual(290);
    await waitFor(() => silent.accepted === 1 && open === 0, 'the check to close its connection');
    // Also after a successful check: the session is closed, not kept.
    let sessions = 0;
    const h2 = http2.createServer();
    h2.on('session', (s) => {
      sessions++;
      s.on('close', () => sessions--);
    });
    h2.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from('00000000020801', 'hex'));
    });
    const h2Address = await listen(h2);
    expect(await probe(h2Address, check())).toMatchObject({ ok: true, reason: 'grpc health: SERVING' });
    await waitFor(() => sessions === 0, 'the session to be closed');
  });

  it('grpc.tls: HTTP/2 over TLS with the CA and SNI of health_check.tls; a backend without h2 in ALPN fails', async () => {
    const ca = new TestCa();
    closers.push(() => rmSync(ca.dir, { recursive: true, force: true }));
    const leaf = ca.leaf(['grpc.internal']);
    const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(leaf.chain), private_key: readFileSync(leaf.key) }]);
    const b = await healthServer('tls', { '': SERVING }, creds);
    const tlsCheck = check({ tls: true }, { tls: { ca: ca.cert, sni: 'grpc.internal' } });
    expect(await probe(b.address, tlsCheck)).toMatchObject({ ok: true, reason: 'grpc health: SERVING' });
    // Without the CA the chain is not trusted.
    expect((await probe(b.address, { ...tlsCheck, tls: { ...tlsCheck.tls!, ca: null } })).reason).toMatch(/^TLS: /);
    // Servers without h2: HTTPS (Node offers only http/1.1 and refuses h2 with an alert) and plain TLS (no ALPN at all).
    const tlsOptions = { cert: readFileSync(leaf.chain), key: readFileSync(leaf.key) };
    const refuses = await listen(https.createServer({ ...tlsOptions, ALPNProtocols: ['http/1.1'] }, (_req, res) => res.end('ok')));
    expect(await probe(refuses, tlsCheck)).toMatchObject({ ok: false, reason: 'TLS: the backend did not agree to HTTP/2 (alert no_application_protocol)' });
    const ignores = await listen(tls.createServer(tlsOptions, (s) => s.end()));
    expect(await probe(ignores, tlsCheck)).toMatchObject({ ok: false, reason: 'TLS: the backend did not agree to HTTP/2 (ALPN: none)' });
  });
});

/** Listen on a free port of 127.0.0.1; closed after the test. */
async function listen(server: http.Server | https.Server | http2.Http2Server | tls.Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        (server as http.Server).closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  return `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

function lbConfig(addresses: string[], check: object): SwitchyardConfig {
  return {
    workers: 2,
    listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
    pools: {
      main: {
        // Passive ejection off: what is measured is the active check.
        passive: { consecutive_failures: 0 },
        health_check: { type: 'grpc', interval: '100ms', timeout: '100ms', rise: 2, fall: 3, ...check },
        backends: addresses.map((address) => ({ address })),
      },
    },
  } as SwitchyardConfig;
}

async function startLb(config: SwitchyardConfig): Promise<Switchyard> {
  const lb = await Switchyard.start(config);
  closers.push(() => lb.close({ drainMs: 0 }));
  return lb;
}

describe('grpc health checks drive the data plane', () => {
  it('a NOT_SERVING backend is taken out while the other stays up, and returns when SERVING again', async () => {
    const a = await healthServer('a', { '': SERVING });
    const b = await healthServer('b', { '': SERVING });
    const lb = await startLb(lbConfig([a.address, b.address], {}));
    const health = () => lb.stats().pools[0]!.backends.map((x) => x.health);
    await waitFor(() => health().every((h) => h === 'up'), 'both backends to be checked up');
    const port = lb.address('front').port;

    b.statuses.set('', NOT_SERVING);
    await waitFor(() => health()[1] === 'down', 'b to be marked down');
    expect(health()[0]).toBe('up');
    const bState = lb.health().find((h) => h.address === b.address)!;
    expect(bState.last).toMatchObject({ ok: false, reason: 'grpc health: NOT_SERVING' });
    expect(lb.health().find((h) => h.address === a.address)!.last).toMatchObject({ ok: true, reason: 'grpc health: SERVING' });
    // New gRPC connections through the balancer all land on a.
    for (let i = 0; i < 6; i++) expect(await whoAmI(port)).toBe('a');

    b.statuses.set('', SERVING);
    await waitFor(() => health()[1] === 'up', 'b to rise again');
    expect(health()[0]).toBe('up');
    const seen = new Set<string>();
    await waitFor(async () => seen.add(await whoAmI(port)).size === 2, 'calls to reach both backends again');
  });

  it('grpc.service checks that service: its own status counts, an unknown service is down with NOT_FOUND', async () => {
    // a serves svc.A although the whole server says NOT_SERVING; b does not know svc.A.
    const a = await healthServer('a', { '': NOT_SERVING, 'svc.A': SERVING });
    const b = await healthServer('b', { '': SERVING, 'svc.A': SERVING });
    const lb = await startLb(lbConfig([a.address, b.address], { grpc: { service: 'svc.A' } }));
    const health = () => lb.stats().pools[0]!.backends.map((x) => x.health);
    await waitFor(() => health().every((h) => h === 'up'), 'both backends up by svc.A');
    b.statuses.delete('svc.A');
    await waitFor(() => health()[1] === 'down', 'b (svc.A unknown) to be marked down');
    expect(lb.health().find((h) => h.address === b.address)!.last!.reason).toMatch(/NOT_FOUND/);
    expect(health()[0]).toBe('up');
    expect(a.calls.every((c) => c.service === 'svc.A')).toBe(true);
  });

  it('backends that are not gRPC servers are marked down', async () => {
    const closes = await peer((s) => s.destroy());
    closers.push(() => closes.close());
    const h1Address = await listen(http.createServer((_req, res) => res.end('hello')));
    const good = await healthServer('good', { '': SERVING });
    const lb = await startLb(lbConfig([closes.address, h1Address, good.address], {}));
    const health = () => lb.stats().pools[0]!.backends.map((x) => x.health);
    await waitFor(() => health().join() === 'down,down,up', 'the two non-gRPC backends down, the gRPC one up');
    for (const h of lb.health().slice(0, 2)) expect(h.last!.ok).toBe(false);
  });
});
