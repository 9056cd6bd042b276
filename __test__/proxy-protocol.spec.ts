/**
 * PROXY protocol v1/v2 in both directions against real peers: Switchyard's pools write the
 * header to HAProxy (`accept-proxy`) and nginx (`listen … proxy_protocol`), which report the
 * client they were told about; HAProxy (`send-proxy`, `send-proxy-v2`, health checks with
 * LOCAL headers) sends it to Switchyard's listeners, on TCP and on HTTP listeners; raw sockets
 * send what no balancer would (untrusted sources, garbage, truncated and oversized headers,
 * headers split across writes) and each of those closes that connection only, counted in the
 * stats, the `proxy_refused` events and `/metrics`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Switchyard, type SwitchyardConfig } from '../ts/index.js';
import { levelOf } from '../ts/log.js';
import { httpPeer } from './fixtures/http-peers.js';
import {
  curlFrom,
  ending,
  haproxy,
  haproxyShowingAddress,
  hasHaproxy,
  hasNginx,
  nginxShowingAddress,
  readBytes,
  v1Header,
  v2Declaring,
  v2Header,
  V2_LOCAL,
  type Daemon,
  type Ending,
} from './fixtures/proxy-peers.js';
import { connect, drain, echo, refusedPort, waitFor } from './helpers.js';
import { stopAll } from './processes.js';
import { parseExposition, promtoolCheckMetrics, sample } from './prometheus.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-proxy-'));

/** What the running test started; stopped after it, passed or failed. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c().catch(() => {})));
  await stopAll();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Line = Record<string, unknown> & { event: string; level?: string };

/** A balancer for `config` (closed after the test), its log lines collected. */
async function start(config: SwitchyardConfig): Promise<{ lb: Switchyard; logs: Line[] }> {
  const logs: Line[] = [];
  // The level a line logger would write it with (the caller's, else the event's own).
  const lb = await Switchyard.start(config, { logger: (event, fields = {}, level = levelOf(event)) => logs.push({ event, ...fields, level }) });
  cleanups.push(() => lb.close({ drainMs: 0 }));
  return { lb, logs };
}

/** Keep `p` (a peer or a process) until the end of the test. */
function kept<T extends Daemon | { close(): Promise<void> }>(p: T): T {
  cleanups.push(() => ('kill' in p ? p.kill() : p.close()));
  return p;
}

/** A listener's PROXY counters as the stats report them. */
function proxyStats(lb: Switchyard, listener: string) {
  return lb.stats().listeners.find((l) => l.name === listener)?.proxy;
}

/** A raw connection to `port` with Nagle off, so each write leaves as its own segment. */
async function raw(port: number): Promise<net.Socket> {
  const s = await connect(port);
  s.setNoDelay(true);
  return s;
}

/** Send `header` + `payload` to an echoing path and end: resolves with what came back. */
async function throughEcho(port: number, header: Buffer, payload: Buffer): Promise<Buffer> {
  const s = await raw(port);
  const back = ending(s);
  s.end(Buffer.concat([header, payload]));
  return (await back).received;
}

/** Write `bytes` on a new connection to `port` (no end): resolves when the other side closes it. */
async function sendAndWaitClose(port: number, bytes: Buffer | string): Promise<Ending> {
  const s = await raw(port);
  const end = ending(s);
  s.write(bytes);
  return end;
}

describe('sending: a pool with proxy_protocol tells the backend who the client is', () => {
  /** Two pools (`v1`, `v2`) to `backend`, each behind its own TCP listener; curl through both. */
  async function curlThroughBoth(backend: string): Promise<void> {
    const { lb } = await start({
      workers: 2,
      listeners: { v1: { address: '127.0.0.1:0', pool: 'v1' }, v2: { address: '127.0.0.1:0', pool: 'v2' } },
      pools: {
        v1: { proxy_protocol: 'v1', backends: [{ address: backend }] },
        v2: { proxy_protocol: 'v2', backends: [{ address: backend }] },
      },
    });
    for (const version of ['v1', 'v2']) {
      const port = lb.address(version).port;
      const { body, localPort } = await curlFrom(`http://127.0.0.1:${port}/`);
      // The backend saw curl's own address and port, and the listener curl connected to.
      expect(body.trim(), `${version} through ${backend}`).toBe(`127.0.0.1:${localPort} 127.0.0.1:${port}`);
    }
  }

  it.skipIf(!hasHaproxy)('v1 and v2 to HAProxy (bind … accept-proxy): it reports curl as the source and the listener as the destination', async () => {
    const port = await refusedPort();
    kept(await haproxyShowingAddress(dir, port));
    await curlThroughBoth(`127.0.0.1:${port}`);
  });

  it.skipIf(!hasNginx)('v1 and v2 to nginx (listen … proxy_protocol): $proxy_protocol_addr:port is curl, the server address the listener', async () => {
    const port = await refusedPort();
    kept(await nginxShowingAddress(dir, port));
    await curlThroughBoth(`127.0.0.1:${port}`);
  });
});

describe('receiving from HAProxy', () => {
  it.skipIf(!hasHaproxy || !hasNginx)(
    'send-proxy and send-proxy-v2 (with LOCAL health checks) in front of a TCP listener: the original client reaches nginx through a v2 pool',
    async () => {
      const nginxPort = await refusedPort();
      kept(await nginxShowingAddress(dir, nginxPort));
      const trusted = { trusted: ['127.0.0.1/32'] };
      const { lb } = await start({
        workers: 2,
        listeners: {
          from_v1: { address: '127.0.0.1:0', pool: 'nginx', proxy_protocol: trusted },
          from_v2: { address: '127.0.0.1:0', pool: 'nginx', proxy_protocol: trusted },
        },
        pools: { nginx: { proxy_protocol: 'v2', backends: [{ address: `127.0.0.1:${nginxPort}` }] } },
      });
      const [f1, f2] = [await refusedPort(), await refusedPort()];
      kept(
        await haproxy(
          dir,
          `listen f1
  mode tcp
  bind 127.0.0.1:${f1}
  server s1 127.0.0.1:${lb.address('from_v1').port} send-proxy check inter 100ms
listen f2
  mode tcp
  bind 127.0.0.1:${f2}
  server s2 127.0.0.1:${lb.address('from_v2').port} send-proxy-v2 check inter 100ms
`,
          [f1, f2],
        ),
      );
      // curl → HAProxy → (PROXY v1 / v2) → Switchyard → (PROXY v2) → nginx: nginx names curl's port.
      for (const front of [f1, f2]) {
        const { body, localPort } = await curlFrom(`http://127.0.0.1:${front}/`);
        // The destination relayed too: the address curl connected to (HAProxy's), as HAProxy declared it.
        expect(body.trim(), `through HAProxy port ${front}`).toBe(`127.0.0.1:${localPort} 127.0.0.1:${front}`);
      }
      // HAProxy's checks: v1 ones send a TCP4 line with their own addresses (accepted), v2 ones LOCAL.
      const v2 = await waitFor(() => {
        const p = proxyStats(lb, 'from_v2');
        return p && p.accepted > 0 && p.local > 0 ? p : null;
      }, 'an accepted header and a LOCAL health check on from_v2');
      expect(v2).toMatchObject({ untrusted: 0, invalid: 0, timeout: 0 });
      expect(proxyStats(lb, 'from_v1')).toMatchObject({ local: 0, untrusted: 0, invalid: 0, timeout: 0 });
      expect(proxyStats(lb, 'from_v1')!.accepted).toBeGreaterThan(0);
    },
  );

  it('an HTTP listener takes the declared client for X-Forwarded-For and its access log (raw v1, v2, TCP6; and HAProxy send-proxy-v2)', async () => {
    const backend = kept(await httpPeer('echo'));
    const { lb, logs } = await start({
      workers: 2,
      listeners: {
        front: { address: '127.0.0.1:0', protocol: 'http', pool: 'web', access_log: true, proxy_protocol: { trusted: ['127.0.0.1/32'] } },
      },
      pools: { web: { backends: [{ address: backend.address }] } },
    });
    const port = lb.address('front').port;
    const request = (path: string) => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n`);
    /** What the backend received for one raw request (its echoed JSON). */
    async function forwarded(header: Buffer, path: string): Promise<{ url: string; headers: Record<string, string> }> {
      const s = await raw(port);
      const done = ending(s);
      s.write(Buffer.concat([header, request(path)]));
      const text = (await done).received.toString();
      expect(text, `response to ${path}`).toMatch(/^HTTP\/1\.1 200 /);
      return JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as { url: string; headers: Record<string, string> };
    }
    const cases = [
      { path: '/v1', header: v1Header('203.0.113.7', 40000, '127.0.0.1', port), client: '203.0.113.7:40000', xff: '203.0.113.7' },
      { path: '/v2', header: v2Header('198.51.100.9', 40001, '127.0.0.1', port), client: '198.51.100.9:40001', xff: '198.51.100.9' },
      { path: '/v1-tcp6', header: v1Header('2001:db8::7', 40002, '2001:db8::1', port), client: '[2001:db8::7]:40002', xff: '2001:db8::7' },
    ];
    for (const c of cases) {
      const got = await forwarded(c.header, c.path);
      expect(got.url).toBe(c.path);
      expect(got.headers['x-forwarded-for'], c.path).toBe(c.xff);
    }
    const access = () => logs.filter((l) => l.event === 'access' && l.listener === 'front');
    await waitFor(() => access().length >= cases.length, 'an access line per raw request');
    for (const c of cases) expect(access().map((l) => l.client)).toContain(c.client);

    if (!hasHaproxy) return;
    const f = await refusedPort();
    kept(await haproxy(dir, `listen f\n  mode tcp\n  bind 127.0.0.1:${f}\n  server s 127.0.0.1:${port} send-proxy-v2\n`, [f]));
    const { body, localPort } = await curlFrom(`http://127.0.0.1:${f}/via-haproxy`);
    expect((JSON.parse(body) as { headers: Record<string, string> }).headers['x-forwarded-for']).toBe('127.0.0.1');
    // Switchyard's access log names curl's own port, not HAProxy's.
    await waitFor(() => access().some((l) => l.client === `127.0.0.1:${localPort}`), `an access line for curl's 127.0.0.1:${localPort}`);
  });
});

describe('refusals', () => {
  it('untrusted, garbage, truncated and oversized headers close only their own connection; a header split across writes and a parallel client are served', async () => {
    const unreached = kept(await echo());
    const reached = kept(await echo());
    const { lb, logs } = await start({
      workers: 2,
      listeners: {
        untrusting: { address: '127.0.0.1:0', pool: 'unreached', proxy_protocol: { trusted: ['10.0.0.0/8'] } },
        guarded: { address: '127.0.0.1:0', pool: 'reached', proxy_protocol: { trusted: ['127.0.0.1/32', '::1'], timeout: '300ms' } },
      },
      pools: { unreached: { backends: [{ address: unreached.address }] }, reached: { backends: [{ address: reached.address }] } },
    });
    const untrusting = lb.address('untrusting').port;
    const guarded = lb.address('guarded').port;
    const header = (port: number) => v1Header('192.0.2.10', 41000, '127.0.0.1', port);

    // A client that stays connected through all the refusals.
    const steady = await raw(guarded);
    steady.write(Buffer.concat([header(guarded), Buffer.from('ping-1')]));
    expect((await readBytes(steady, 6)).toString()).toBe('ping-1');

    const split = async () => {
      const s = await raw(guarded);
      const back = drain(s);
      const whole = Buffer.concat([v2Header('192.0.2.11', 41001, '127.0.0.1', guarded), Buffer.from('hello')]);
      await new Promise((r) => s.write(whole.subarray(0, 10), r));
      await new Promise((r) => setImmediate(r));
      s.end(whole.subarray(10));
      return (await back).text;
    };
    const payload = randomBytes(64 * 1024);
    const [untrusted, garbage, truncated, oversized, splitBack, parallelBack] = await Promise.all([
      sendAndWaitClose(untrusting, Buffer.concat([v1Header('192.0.2.12', 41002, '127.0.0.1', untrusting), Buffer.from('hello')])),
      sendAndWaitClose(guarded, Buffer.from('GET / HTTP/1.1\r\nHost: app.example\r\n\r\n')),
      sendAndWaitClose(guarded, v2Header('192.0.2.13', 41003, '127.0.0.1', guarded).subarray(0, 20)),
      sendAndWaitClose(guarded, Buffer.concat([v2Declaring(65535), randomBytes(512)])),
      split(),
      throughEcho(guarded, header(guarded), payload),
    ]);
    for (const [what, e] of Object.entries({ untrusted, garbage, truncated, oversized })) {
      expect(e.received.length, `${what}: bytes sent back before the close`).toBe(0);
    }
    // The truncated header was given its 300 ms (closed by the timeout, not at once).
    expect(truncated.ms).toBeGreaterThanOrEqual(250);
    expect(splitBack).toBe('hello');
    expect(parallelBack.equals(payload)).toBe(true);
    // The steady client still works.
    steady.write('ping-2');
    expect((await readBytes(steady, 6)).toString()).toBe('ping-2');
    steady.destroy();

    const want = { guarded: { accepted: 3, local: 0, untrusted: 0, invalid: 2, timeout: 1 }, untrusting: { accepted: 0, local: 0, untrusted: 1, invalid: 0, timeout: 0 } };
    await waitFor(() => JSON.stringify(proxyStats(lb, 'guarded')) === JSON.stringify(want.guarded), 'the guarded counters').catch(() => {});
    expect(proxyStats(lb, 'guarded')).toEqual(want.guarded);
    expect(proxyStats(lb, 'untrusting')).toEqual(want.untrusting);
    // Never forwarded: only the three good connections reached a backend.
    expect(unreached.accepted).toBe(0);
    expect(reached.accepted).toBe(3);

    // One warning per listener (rate-limited), naming the source and why.
    const event = await waitFor(() => lb.events().find((e) => e.kind === 'proxy_refused' && e.address === 'untrusting'), 'a proxy_refused event of untrusting');
    expect(event.reason).toContain('127.0.0.1');
    await waitFor(() => lb.events().find((e) => e.kind === 'proxy_refused' && e.address === 'guarded'), 'a proxy_refused event of guarded');
    const warned = logs.filter((l) => l.event.includes('proxy_refused'));
    expect(warned.length).toBeGreaterThan(0);
    expect(warned.every((l) => l.level === 'warn'), JSON.stringify(warned)).toBe(true);
  });

  it('a burst of refusals gives at most one proxy_refused event a second per listener, and every one is counted', async () => {
    const backend = kept(await echo());
    const { lb } = await start({
      workers: 2,
      listeners: { edge: { address: '127.0.0.1:0', pool: 'main', proxy_protocol: { trusted: ['127.0.0.1/32'] } } },
      pools: { main: { backends: [{ address: backend.address }] } },
    });
    const port = lb.address('edge').port;
    const started = Date.now();
    const n = 40;
    for (let i = 0; i < n; i++) {
      await sendAndWaitClose(port, 'not a proxy header at all\r\n');
    }
    await waitFor(() => proxyStats(lb, 'edge')?.invalid === n, `${n} invalid headers counted`).catch(() => {});
    expect(proxyStats(lb, 'edge')).toEqual({ accepted: 0, local: 0, untrusted: 0, invalid: n, timeout: 0 });
    const seconds = (Date.now() - started) / 1000;
    const events = await waitFor(() => {
      const e = lb.events().filter((x) => x.kind === 'proxy_refused' && x.address === 'edge');
      return e.length > 0 ? e : null;
    }, 'a proxy_refused event');
    // The data plane reports at most one a second (with the count since the last); the control
    // plane may add one folded summary per report. Either way: far fewer than the refusals.
    expect(events.length).toBeLessThanOrEqual(2 * (Math.ceil(seconds) + 1));
    expect(events.length).toBeLessThan(n);
    expect(backend.accepted).toBe(0);
  });
});

describe('counters in stats(), GET /api/listeners and /metrics', () => {
  it('switchyard_listener_proxy_protocol_total counts each result per listener; listeners without proxy_protocol have none', async () => {
    const backend = kept(await echo());
    const { lb } = await start({
      workers: 2,
      listeners: {
        edge: { address: '127.0.0.1:0', pool: 'main', proxy_protocol: { trusted: ['127.0.0.1/32'], timeout: '300ms' } },
        closed: { address: '127.0.0.1:0', pool: 'main', proxy_protocol: { trusted: ['10.0.0.0/8', '::1'] } },
        plain: { address: '127.0.0.1:0', pool: 'main' },
      },
      pools: { main: { backends: [{ address: backend.address }] } },
      admin: { address: '127.0.0.1:0' },
    });
    const edge = lb.address('edge').port;
    // Two relayed clients (v1, v2), one LOCAL (served with the socket's own addresses).
    expect((await throughEcho(edge, v1Header('192.0.2.1', 1000, '127.0.0.1', edge), Buffer.from('one'))).toString()).toBe('one');
    expect((await throughEcho(edge, v2Header('192.0.2.2', 2000, '127.0.0.1', edge), Buffer.from('two'))).toString()).toBe('two');
    expect((await throughEcho(edge, V2_LOCAL, Buffer.from('local'))).toString()).toBe('local');
    // One of each refusal.
    for (const [port, bytes] of [
      [edge, Buffer.from('PROXY TCP4 not-an-address\r\n')],
      [edge, v1Header('192.0.2.3', 3000, '127.0.0.1', edge).subarray(0, 12)],
      [lb.address('closed').port, v1Header('192.0.2.4', 4000, '127.0.0.1', edge)],
    ] as const) {
      expect((await sendAndWaitClose(port, bytes)).received.length).toBe(0);
    }
    const plain = await raw(lb.address('plain').port);
    const plainBack = drain(plain);
    plain.end('plain');
    expect((await plainBack).text).toBe('plain');

    const want = {
      edge: { accepted: 2, local: 1, untrusted: 0, invalid: 1, timeout: 1 },
      closed: { accepted: 0, local: 0, untrusted: 1, invalid: 0, timeout: 0 },
    };
    const admin = `http://${lb.adminAddress()!.address}`;
    const listeners = async () => {
      const body = (await (await fetch(`${admin}/api/listeners`)).json()) as { listeners: { name: string; proxy?: unknown }[] };
      return Object.fromEntries(body.listeners.map((l) => [l.name, l]));
    };
    await waitFor(async () => JSON.stringify((await listeners()).edge?.proxy) === JSON.stringify(want.edge), 'GET /api/listeners to show the edge counters').catch(() => {});
    const byName = await listeners();
    expect(byName.edge!.proxy).toEqual(want.edge);
    expect(byName.closed!.proxy).toEqual(want.closed);
    expect(byName.plain).not.toHaveProperty('proxy');

    const r = await fetch(`${admin}/metrics`);
    expect(r.status).toBe(200);
    const text = await r.text();
    const check = promtoolCheckMetrics(text);
    expect(check.output).toBe('');
    const samples = parseExposition(text);
    for (const [listener, counts] of Object.entries(want)) {
      for (const [result, value] of Object.entries(counts)) {
        expect(sample(samples, 'switchyard_listener_proxy_protocol_total', { listener, result }), `${listener} ${result}`).toBe(value);
      }
    }
    expect(samples.filter((s) => s.name === 'switchyard_listener_proxy_protocol_total' && s.labels.listener === 'plain')).toEqual([]);
    expect(backend.accepted).toBe(4); // three through edge, one through plain
  });
});

describe('configuration', () => {
  /** `switchyard validate -c file`: its exit code and stderr. */
  const validate = (file: string): Promise<{ code: number; stderr: string }> =>
    promisify(execFile)(process.execPath, [CLI, 'validate', '-c', file]).then(
      ({ stderr }) => ({ code: 0, stderr }),
      (e: { code: number; stderr: string }) => e,
    );

  it('validate exits 2 naming pools.<name>.proxy_protocol when an http listener uses the pool, and a bad trusted CIDR', async () => {
    const file = join(dir, 'bad-pool.yaml');
    writeFileSync(
      file,
      `listeners:
  web: { address: "127.0.0.1:0", protocol: http, pool: sent }
pools:
  sent: { proxy_protocol: v1, backends: [ { address: "127.0.0.1:9001" } ] }
`,
    );
    const bad = await validate(file);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('pools.sent.proxy_protocol');

    const cidr = join(dir, 'bad-cidr.yaml');
    writeFileSync(
      cidr,
      `listeners:
  front: { address: "127.0.0.1:0", pool: p, proxy_protocol: { trusted: [ "10.0.0.0/33" ] } }
pools:
  p: { backends: [ { address: "127.0.0.1:9001" } ] }
`,
    );
    const badCidr = await validate(cidr);
    expect(badCidr.code).toBe(2);
    expect(badCidr.stderr).toContain('listeners.front.proxy_protocol.trusted');
    expect(badCidr.stderr).toContain('10.0.0.0/33');
  });
});
