/**
 * Active health checks: configuration, probes against real servers, and the
 * scheduler's rise/fall, jitter and batching. Polls with generous deadlines;
 * never sleeps as synchronisation (the CI box is a loaded 2-core machine).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../ts/errors.js';
import { validateConfig } from '../ts/config/validate.js';
import type { ResolvedConfig, ResolvedHealthCheck } from '../ts/config/types.js';
import { HealthMonitor, type BackendCheckState, type HealthChange, type HealthMonitorOptions } from '../ts/health/monitor.js';
import { probe } from '../ts/health/probes.js';

async function waitFor<T>(check: () => T, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A config with one pool `p` whose backends are `addresses`, each with `check` (raw YAML-like). */
function config(addresses: string[], check: object, extra: object = {}): ResolvedConfig {
  return validateConfig(
    {
      listeners: { l: { address: '127.0.0.1:0', pool: 'p' } },
      pools: { p: { health_check: check, backends: addresses.map((address) => ({ address })), ...extra } },
    },
    'test',
  );
}

function issues(raw: object): { path: string; message: string }[] {
  try {
    validateConfig({ listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: raw } }, 'test');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

const closers: (() => Promise<void>)[] = [];
const monitors: HealthMonitor[] = [];
afterEach(async () => {
  for (const m of monitors.splice(0)) m.stop();
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function listen(server: net.Server, port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        (server as http.Server).closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An HTTP server answering every request with `status` and `body` after `delayMs`. */
function httpServer(status: number, body = '', delayMs = 0, seen: http.IncomingMessage[] = []): Promise<string> {
  const server = http.createServer((req, res) => {
    seen.push(req);
    const t = setTimeout(() => res.writeHead(status).end(body), delayMs);
    res.on('close', () => clearTimeout(t));
  });
  return listen(server);
}

/** A port nothing listens on (bound, then closed). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A monitor on `cfg` that records every batch. */
function watch(cfg: ResolvedConfig, opts: Pick<HealthMonitorOptions, 'random' | 'probe'> = {}) {
  const batches: HealthChange[][] = [];
  /** The monitor's states when each batch arrived. */
  const snapshots: BackendCheckState[][] = [];
  const log: [string, Record<string, unknown> | undefined][] = [];
  const m: HealthMonitor = new HealthMonitor({
    onChange: (b) => {
      batches.push(b);
      snapshots.push(m.states());
    },
    logger: (e, f) => log.push([e, f]),
    ...opts,
  });
  monitors.push(m);
  m.sync(cfg);
  const changes = () => batches.flat();
  return { m, batches, snapshots, log, changes };
}

const fast = { interval: '200ms', timeout: '200ms', rise: 2, fall: 2 };

describe('health_check configuration', () => {
  it('resolves defaults and deep-merges a backend override over the pool', () => {
    const r = validateConfig(
      {
        listeners: { l: { address: '127.0.0.1:0', pool: 'p' } },
        pools: {
          p: {
            health_check: { type: 'http', http: { path: '/health', headers: { 'x-a': '1' } } },
            backends: [
              { address: '10.0.0.1:80' },
              { address: '10.0.0.2:80', health_check: { port: 9000, interval: '500ms', http: { path: '/ready', headers: { 'x-b': '2' } } } },
            ],
          },
          q: { backends: [{ address: '10.0.0.3:80' }, { address: '10.0.0.4:80', health_check: { type: 'tls', tls: { sni: 'db.internal' } } }] },
        },
      },
      'test',
    );
    const [a, b] = r.pools[0]!.backends;
    expect(a!.health_check).toEqual({
      type: 'http',
      interval_ms: 2000,
      timeout_ms: 1000,
      jitter_ms: 200,
      rise: 2,
      fall: 3,
      down_interval_ms: 2000,
      port: null,
      http: { method: 'GET', path: '/health', host: null, headers: { 'x-a': '1' }, expect_status: [{ from: 200, to: 399 }], expect_body: null },
      grpc: null,
      udp: null,
      tls: null,
    });
    expect(r.pools[0]!.health_check).toEqual(a!.health_check);
    // Timeout and jitter defaults follow a shorter interval.
    expect(b!.health_check).toMatchObject({ port: 9000, interval_ms: 500, timeout_ms: 500, jitter_ms: 50, down_interval_ms: 500 });
    expect(b!.health_check!.http).toMatchObject({ path: '/ready', headers: { 'x-a': '1', 'x-b': '2' } });
    expect(r.pools[1]!.backends[0]!.health_check).toBeNull();
    expect(r.pools[1]!.backends[1]!.health_check).toMatchObject({ type: 'tls', http: null, tls: { sni: 'db.internal', verify: true, ca: null } });
  });

  it('reports every problem with its path', () => {
    const found = issues({
      health_check: {
        intervall: '2s',
        timeout: '3s',
        type: 'http',
        http: { expect_status: [200, '200-99', 'abc', 600], method: 'FETCH', path: 'health', colour: 1, headers: { Host: 'x' } },
      },
      backends: [{ address: '10.0.0.1:80', health_check: { rise: 0, tls: { verify: 'yes' } } }, { address: '10.0.0.2:80' }],
    });
    const at = (path: string) => found.filter((i) => i.path === path).map((i) => i.message);
    expect(at('pools.p.health_check.intervall')[0]).toMatch(/unknown key "intervall" \(allowed: type, interval, /);
    expect(at('pools.p.health_check.timeout')).toEqual(['must be at most interval (2000 ms), got 3000 ms']);
    expect(at('pools.p.health_check.http.expect_status[1]')[0]).toMatch(/range such as "200-399", got "200-99"/);
    expect(at('pools.p.health_check.http.expect_status[2]')[0]).toMatch(/got "abc"/);
    expect(at('pools.p.health_check.http.expect_status[3]')[0]).toMatch(/status code 100..599 .*got 600/);
    expect(at('pools.p.health_check.http.method')[0]).toMatch(/expected one of GET, HEAD, .*got "FETCH"/);
    expect(at('pools.p.health_check.http.path')[0]).toMatch(/starting with "\/".*got "health"/);
    expect(at('pools.p.health_check.http.colour')[0]).toMatch(/unknown key "colour"/);
    expect(at('pools.p.health_check.http.headers.Host')[0]).toMatch(/http\.host/);
    expect(at('pools.p.backends[0].health_check.rise')[0]).toMatch(/expected an integer 1..100, got 0/);
    expect(at('pools.p.backends[0].health_check.tls.verify')[0]).toMatch(/expected true or false, got "yes"/);
    expect(at('pools.p.backends[0].health_check.tls')[0]).toMatch(/applies only to type tls, or http with http.tls: true/);
    // The pool's timeout > interval is reported once, not again for each backend.
    expect(found.filter((i) => i.message.startsWith('must be at most interval'))).toHaveLength(1);
  });

  it('rejects sections that do not apply to the type, and bad durations', () => {
    const found = issues({
      health_check: { type: 'tcp', interval: '1s', jitter: '2s', http: { path: '/' }, down_interval: 'soon' },
      backends: [{ address: '10.0.0.1:80', health_check: { type: 'http', http: { sni: '10.0.0.1', method: 'HEAD', expect_body: 'ok' } } }],
    });
    const at = (path: string) => found.filter((i) => i.path === path).map((i) => i.message).join('; ');
    expect(at('pools.p.health_check.http')).toMatch(/applies only to type http, but the type is "tcp"/);
    expect(at('pools.p.health_check.jitter')).toMatch(/must be at most interval \(1000 ms\), got 2000 ms/);
    expect(at('pools.p.health_check.down_interval')).toMatch(/expected a duration .*got "soon"/);
    expect(at('pools.p.backends[0].health_check.http.sni')).toMatch(/not an IP address/);
    expect(at('pools.p.backends[0].health_check.http.expect_body')).toMatch(/HEAD answer has no body/);
    expect(issues({ health_check: 'yes', backends: [{ address: '10.0.0.1:80' }] })[0]).toMatchObject({ path: 'pools.p.health_check' });
  });
});

describe('probes', () => {
  const check = (over: Partial<ResolvedHealthCheck>): ResolvedHealthCheck => ({ ...config(['127.0.0.1:1'], { type: 'http' }).pools[0]!.health_check!, ...over });

  it('accepts status codes by list and range', async () => {
    const r204 = await httpServer(204);
    const r302 = await httpServer(302);
    const r404 = await httpServer(404);
    const base = check({});
    const only = (...expect_status: { from: number; to: number }[]) => check({ http: { ...base.http!, expect_status } });
    const twoXX = only({ from: 200, to: 299 }, { from: 404, to: 404 });
    expect(await probe(r204, twoXX)).toMatchObject({ ok: true, reason: 'HTTP 204' });
    expect(await probe(r404, twoXX)).toMatchObject({ ok: true, reason: 'HTTP 404' });
    expect(await probe(r302, twoXX)).toMatchObject({ ok: false, reason: 'HTTP 302' });
    expect(await probe(r302, base)).toMatchObject({ ok: true, reason: 'HTTP 302' });
  });

  it('sends the configured request, to the check port', async () => {
    const seen: http.IncomingMessage[] = [];
    const addr = await httpServer(200, 'all ok', 0, seen);
    const port = Number(addr.split(':')[1]);
    const c = config(['127.0.0.1:1'], { type: 'http', port, http: { method: 'POST', path: '/h?x=1', host: 'api.internal', headers: { 'x-check': '1' }, expect_body: 'ok' } });
    const r = await probe('127.0.0.1:1', c.pools[0]!.health_check!);
    expect(r).toMatchObject({ ok: true, reason: 'HTTP 200' });
    expect(r.duration_ms).toBeGreaterThanOrEqual(0);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/h?x=1' });
    expect(seen[0]!.headers).toMatchObject({ host: 'api.internal', 'x-check': '1', connection: 'close' });
  });

  it('reports a refused connection and a timeout', async () => {
    const refused = `127.0.0.1:${await freePort()}`;
    expect(await probe(refused, check({ type: 'tcp', http: null }))).toMatchObject({ ok: false, reason: 'connection refused' });
    const slow = await httpServer(200, '', 5_000);
    const r = await probe(slow, check({ timeout_ms: 150 }));
    expect(r).toMatchObject({ ok: false, reason: 'timeout after 150 ms' });
    expect(r.duration_ms).toBeLessThan(4_000);
  });
});

describe('HealthMonitor', () => {
  it('tcp: a refused port goes down after fall failures and comes back after rise successes', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const { m, changes, log, snapshots } = watch(config([address], { ...fast, fall: 3 }));
    expect(m.states()[0]).toMatchObject({ status: 'unknown', last: null });
    const down = await waitFor(() => changes()[0], 'backend down');
    expect(down).toMatchObject({ pool: 'p', address, up: false, reason: 'connection refused' });
    // The transition happened on the third failure, not before.
    expect(snapshots[0]![0]).toMatchObject({ status: 'down', failures: 3, successes: 0 });
    expect(log).toContainEqual(['backend.down', { pool: 'p', address, reason: 'connection refused' }]);
    await listen(net.createServer((s) => s.destroy()), port);
    const up = await waitFor(() => changes()[1], 'backend up');
    expect(up).toMatchObject({ up: true, reason: 'connected' });
    expect(snapshots[1]![0]).toMatchObject({ status: 'up', failures: 0, successes: 2 });
    expect(changes()).toHaveLength(2);
  });

  it('http: 500 goes down with "HTTP 500"; an answer after the timeout goes down with a timeout', async () => {
    const err = await httpServer(500);
    const slow = await httpServer(200, '', 5_000);
    const { changes } = watch(config([err, slow], { ...fast, type: 'http', timeout: '150ms' }));
    await waitFor(() => changes().length === 2, 'both down');
    const by = (a: string) => changes().find((c) => c.address === a);
    expect(by(err)).toMatchObject({ up: false, reason: 'HTTP 500' });
    expect(by(slow)).toMatchObject({ up: false, reason: 'timeout after 150 ms' });
  });

  it('http: expect_body decides between a wrong and a right body', async () => {
    const wrong = await httpServer(200, 'degraded');
    const right = await httpServer(200, 'status: ok');
    const { changes } = watch(config([wrong, right], { ...fast, type: 'http', http: { expect_body: 'ok' } }));
    await waitFor(() => changes().length === 2, 'both decided');
    const by = (a: string) => changes().find((c) => c.address === a);
    expect(by(wrong)).toMatchObject({ up: false, reason: 'HTTP 200 but body lacks "ok"' });
    expect(by(right)).toMatchObject({ up: true, reason: 'HTTP 200' });
  });

  it('delivers transitions of the same loop turn as one batch, and logs each', async () => {
    const refused = await freePort();
    const addresses = [1, 2, 3, 4, 5].map((i) => `127.0.0.${i}:${refused}`);
    // Real refused connects settle in whichever loop turns the kernel and libuv pick; hold the
    // results until all five are in, then release each from its own timer callback: one loop
    // turn (one timers phase), but separate callbacks with microtasks run between them, as
    // separate socket callbacks of one poll phase would be.
    const waiting: (() => void)[] = [];
    const gated: typeof probe = async (address, check, signal) => {
      const result = await probe(address, check, signal);
      await new Promise<void>((release) => {
        waiting.push(release);
        if (waiting.length === addresses.length) for (const r of waiting) setTimeout(r, 1);
      });
      return result;
    };
    const { batches, log } = watch(config(addresses, { interval: '10s', timeout: '5s', fall: 1 }), { random: () => 0, probe: gated });
    await waitFor(() => batches.flat().length === 5, 'five down');
    expect(batches).toHaveLength(1);
    expect(batches[0]!.map((c) => c.address).sort()).toEqual(addresses);
    expect(log.filter(([e]) => e === 'backend.down')).toHaveLength(5);
  });

  it('spreads the first checks of 50 backends over the interval', async () => {
    // The monitor draws each first offset from `random`; evenly spaced draws make the plan known, and the
    // assertion is that no probe starts before its planned offset (timers never fire early) -- so the probes
    // really are spread, however late a loaded machine runs them.
    const interval = 2_000;
    const draws = Array.from({ length: 50 }, (_, k) => ((k * 17) % 50) / 50);
    let drawn = 0;
    const random = () => (drawn < draws.length ? draws[drawn++]! : 0.5);
    const started: number[] = [];
    const t0 = performance.now();
    const m = new HealthMonitor({
      onChange: () => {},
      random,
      probe: async (address, check, signal) => {
        started.push(performance.now() - t0);
        return probe(address, check, signal);
      },
    });
    monitors.push(m);
    const target = await listen(net.createServer((s) => s.destroy()));
    const port = target.split(':')[1];
    const addresses = Array.from({ length: 50 }, (_, i) => `127.0.${Math.floor(i / 250)}.${(i % 250) + 1}:${port}`);
    m.sync(config(addresses, { interval: `${interval}ms` }));
    await waitFor(() => started.length >= 50, '50 first checks', 30_000);
    expect(drawn).toBeGreaterThanOrEqual(50);
    const first = started.slice(0, 50).sort((a, b) => a - b);
    const planned = draws.map((d) => d * interval).sort((a, b) => a - b);
    // The i-th earliest start is no earlier than the i-th earliest planned offset (2 ms for timer rounding).
    first.forEach((t, i) => expect(t).toBeGreaterThanOrEqual(planned[i]! - 2));
    expect(first[49]! - first[0]!).toBeGreaterThan(0.5 * interval);
  });

  it('keeps state across sync, restarts changed checks, never overlaps probes, and is silent after stop', async () => {
    const inFlight = new Map<string, number>();
    let maxInFlight = 0;
    let probes = 0;
    const batches: HealthChange[][] = [];
    const m = new HealthMonitor({
      onChange: (b) => batches.push(b),
      random: () => 0,
      probe: async (address, check, signal) => {
        probes++;
        inFlight.set(address, (inFlight.get(address) ?? 0) + 1);
        maxInFlight = Math.max(maxInFlight, inFlight.get(address)!);
        try {
          return await probe(address, check, signal);
        } finally {
          inFlight.set(address, inFlight.get(address)! - 1);
        }
      },
    });
    monitors.push(m);
    const slow = await httpServer(200, '', 5_000);
    const ok = await httpServer(200);
    const check = { type: 'http', interval: '300ms', timeout: '300ms', rise: 1, fall: 1 };
    m.sync(config([slow, ok], check));
    await waitFor(() => batches.flat().length === 2, 'both decided');
    const before = m.states().find((s) => s.address === ok)!;
    // Same checks again: nothing restarts; a changed check restarts without losing the status.
    m.sync(config([slow, ok], check));
    m.sync(config([slow, ok], { ...check, http: { path: '/other' } }));
    expect(m.states().find((s) => s.address === ok)).toMatchObject({ status: 'up', since: before.since });
    m.sync(config([ok], { ...check, http: { path: '/other' } }));
    expect(m.states().map((s) => s.address)).toEqual([ok]);
    await waitFor(() => probes >= 6, 'more probes');
    m.stop();
    expect(m.states()).toEqual([]);
    const seen = batches.length;
    const count = probes;
    await new Promise((r) => setTimeout(r, 700)); // a stopped monitor must stay quiet
    expect(batches.length).toBe(seen);
    expect(probes).toBe(count);
    expect(maxInFlight).toBe(1);
  });

  it('does not keep the process alive: its timers are unref\'d', () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const { m } = watch(config(['127.0.0.1:1', '127.0.0.1:2'], { interval: '1m', timeout: '1s' }), { random: () => 0.5 });
    expect(m.states()).toHaveLength(2);
    expect(timers()).toBe(before);
  });
});

describe('tls checks', () => {
  let dir = '';
  const pem = (name: string) => readFileSync(join(dir, name));
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-tls-'));
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:TRUE\n');
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'csr.pem', '-subj', '/CN=127.0.0.1');
    // OpenSSL 3.0 has no -not_after; negative days put notAfter in the past (expired yesterday).
    openssl('x509', '-req', '-in', 'csr.pem', '-key', 'key.pem', '-days', '-1', '-extfile', 'ext.cnf', '-out', 'expired.pem');
    openssl('x509', '-req', '-in', 'csr.pem', '-key', 'key.pem', '-days', '30', '-extfile', 'ext.cnf', '-out', 'valid.pem');
    expect(() => openssl('x509', '-in', 'expired.pem', '-noout', '-checkend', '0')).toThrow(); // really expired
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an expired certificate goes down with the TLS reason; a valid one comes up', async () => {
    const tlsServer = async (cert: string) =>
      listen(https.createServer({ key: pem('key.pem'), cert: pem(cert) }, (_req, res) => res.end('ok')));
    const expired = await tlsServer('expired.pem');
    const valid = await tlsServer('valid.pem');
    const ca = join(dir, 'valid.pem');
    const { changes } = watch(config([expired, valid], { ...fast, type: 'tls', interval: '500ms', timeout: '500ms', tls: { ca } }));
    await waitFor(() => changes().length === 2, 'both decided');
    const by = (a: string) => changes().find((c) => c.address === a);
    expect(by(expired)).toMatchObject({ up: false, reason: 'TLS: certificate has expired' });
    expect(by(valid)).toMatchObject({ up: true, reason: 'TLS handshake ok' });

    // HTTPS checks use the same TLS settings; an unknown CA is refused unless verify is off.
    const https200 = config([valid], { type: 'http', http: { tls: true, expect_body: 'ok' }, tls: { ca } }).pools[0]!.health_check!;
    expect(await probe(valid, https200)).toMatchObject({ ok: true, reason: 'HTTP 200' });
    const noCa = { ...https200, tls: { ...https200.tls!, ca: null } };
    expect((await probe(valid, noCa)).reason).toMatch(/^TLS: .*self[- ]signed/);
    expect(await probe(valid, { ...noCa, tls: { ...noCa.tls!, verify: false } })).toMatchObject({ ok: true, reason: 'HTTP 200' });
  });
});
