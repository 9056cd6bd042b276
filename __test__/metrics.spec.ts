// /metrics naming and the newer families, against a real balancer with a plain and a
// TLS-terminating listener: connect time as a _sum/_count summary, _ratio shares,
// build_info, TLS handshake/failure counters, certificate expiry (re-read on rotation),
// open/max file descriptors; per HTTP route the responses by status class, the latency
// histogram and retries, per HTTP backend keep-alive reuse and 5xx responses; promtool accepts
// every scrape without a lint warning.
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS_SECONDS } from '../ts/admin/metrics.js';
import { Switchyard, type SwitchyardConfig } from '../ts/index.js';
import { TestCa, type Leaf } from './certs.js';
import { httpPeer, type HttpPeer } from './fixtures/http-peers.js';
import { closedByPeer, connect, drain, echo, send, waitFor, type Peer } from './helpers.js';
import { parseExposition, promtoolCheckMetrics, sample, type PromSample } from './prometheus.js';

let ca: TestCa;
let live: Leaf;
let expired: Leaf;
let peers: Peer[] = [];
let lb: Switchyard | undefined;

beforeAll(async () => {
  ca = new TestCa();
  live = ca.leaf(['metrics.example.com', 'www.metrics.example.com'], { file: 'live' });
  expired = ca.leaf(['metrics.example.com'], { expired: true, file: 'old' });
  peers = await Promise.all([echo(), echo()]);
});

afterEach(async () => {
  await lb?.close({ drainMs: 0 });
  lb = undefined;
});

afterAll(async () => {
  for (const p of peers) await p.close();
});

function config(): SwitchyardConfig {
  return {
    workers: 2,
    listeners: {
      front: { address: '127.0.0.1:0', pool: 'main' },
      secure: { address: '127.0.0.1:0', pool: 'main', tls: { certificates: [{ cert: live.chain, key: live.key }] } },
    },
    pools: { main: { connect_timeout: '1s', backends: peers.map((p) => ({ address: p.address })) } },
    admin: { address: '127.0.0.1:0' },
  };
}

/** GET /metrics; every scrape must pass promtool's parser and linter. */
async function scrape(): Promise<{ text: string; samples: PromSample[] }> {
  const r = await fetch(`http://${lb!.adminAddress()!.address}/metrics`);
  expect(r.status).toBe(200);
  const text = await r.text();
  const check = promtoolCheckMetrics(text);
  expect(check.output).toBe('');
  expect(check.status).toBe(0);
  return { text, samples: parseExposition(text) };
}

/** One plain connection through the front listener, echoed back whole. */
async function roundTrip(port: number): Promise<void> {
  const s = await connect(port);
  const got = drain(s);
  await send(s, 100, { end: true });
  expect((await got).length).toBe(100);
}

/** A completed TLS handshake on the secure listener (then closed). */
function handshake(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'metrics.example.com', ca: [readFileSync(ca.cert)] }, () => {
      s.end();
      resolve();
    });
    s.on('error', reject);
  });
}

/** The notAfter of a PEM file as openssl prints it, in seconds since the epoch. */
function opensslNotAfter(file: string): number {
  const out = execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', file], { encoding: 'utf8' });
  return Date.parse(out.trim().replace(/^notAfter=/, '')) / 1000;
}

describe('/metrics', () => {
  it('exports connect time as a _sum/_count summary that grows with every connect', async () => {
    lb = await Switchyard.start(config());
    const port = lb.address('front').port;
    for (let i = 0; i < 4; i++) await roundTrip(port);
    const first = await scrape();
    expect(first.text).toMatch(/^# TYPE switchyard_backend_connect_seconds summary$/m);
    expect(first.text).not.toContain('switchyard_backend_connect_time_seconds');
    let count = 0;
    for (const p of peers) {
      const labels = { pool: 'main', backend: p.address };
      const n = sample(first.samples, 'switchyard_backend_connect_seconds_count', labels);
      expect(n).toBe(sample(first.samples, 'switchyard_backend_connections_total', labels));
      const sum = sample(first.samples, 'switchyard_backend_connect_seconds_sum', labels);
      expect(sum).toBeGreaterThan(0); // a loopback connect still takes microseconds
      expect(sum / n).toBeLessThan(1); // under the 1 s connect timeout
      count += n;
    }
    expect(count).toBe(4);

    for (let i = 0; i < 6; i++) await roundTrip(port);
    const second = await scrape();
    for (const p of peers) {
      const labels = { pool: 'main', backend: p.address };
      expect(sample(second.samples, 'switchyard_backend_connect_seconds_count', labels)).toBeGreaterThan(sample(first.samples, 'switchyard_backend_connect_seconds_count', labels));
      expect(sample(second.samples, 'switchyard_backend_connect_seconds_sum', labels)).toBeGreaterThanOrEqual(sample(first.samples, 'switchyard_backend_connect_seconds_sum', labels));
    }
  });

  it('names shares _ratio and reports build_info with the package version', async () => {
    lb = await Switchyard.start(config());
    const { text, samples } = await scrape();
    expect(text).not.toMatch(/^switchyard_pool_share_(min|max)[{ ]/m);
    expect(sample(samples, 'switchyard_pool_share_min_ratio', { pool: 'main' })).toBeCloseTo(0.5);
    expect(sample(samples, 'switchyard_pool_share_max_ratio', { pool: 'main' })).toBeCloseTo(0.5);
    for (const p of peers) expect(sample(samples, 'switchyard_backend_share_ratio', { pool: 'main', backend: p.address })).toBeCloseTo(0.5);
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(sample(samples, 'switchyard_build_info', { version: pkg.version, node_version: process.version, platform: process.platform, arch: process.arch })).toBe(1);
  });

  it('counts TLS handshakes, versions and failures per listener', async () => {
    lb = await Switchyard.start(config());
    const port = lb.address('secure').port;
    await handshake(port);
    await handshake(port);
    const garbage = await connect(port);
    const closed = closedByPeer(garbage);
    garbage.write('GET / HTTP/1.1\r\nHost: not-a-client-hello\r\n\r\n');
    await closed;
    garbage.destroy();
    const at = { listener: 'secure', pool: 'main' };
    const { samples } = await waitFor(async () => {
      const s = await scrape();
      return sample(s.samples, 'switchyard_listener_tls_failures_total', { ...at, reason: 'protocol' }) >= 1 && sample(s.samples, 'switchyard_listener_tls_handshakes_total', at) >= 2 ? s : null;
    }, 'the handshakes and the protocol failure to be counted');
    expect(sample(samples, 'switchyard_listener_tls_handshakes_total', at)).toBe(2);
    expect(sample(samples, 'switchyard_listener_tls_version_total', { ...at, version: '1.3' }) + sample(samples, 'switchyard_listener_tls_version_total', { ...at, version: '1.2' })).toBe(2);
    expect(sample(samples, 'switchyard_listener_tls_failures_total', { ...at, reason: 'sni' })).toBe(0);
    // The plain listener has no TLS series at all.
    expect(samples.filter((s) => s.name.startsWith('switchyard_listener_tls_') && s.labels.listener === 'front')).toEqual([]);
  });

  it('exports certificate expiry per listener and follows a rotated file', async () => {
    // The balancer watches this copy; overwriting it is a rotation.
    const dir = ca.dir;
    const chain = `${dir}/rotating.chain.pem`;
    const key = `${dir}/rotating.key`;
    copyFileSync(live.chain, chain);
    copyFileSync(live.key, key);
    const c = config();
    c.listeners.secure!.tls = { certificates: [{ cert: chain, key }] };
    lb = await Switchyard.start(c);
    const labels = { listener: 'secure', name: 'metrics.example.com', cert: chain };
    const before = await scrape();
    expect(sample(before.samples, 'switchyard_certificate_expiry_timestamp_seconds', labels)).toBe(opensslNotAfter(live.cert));
    expect(before.samples.filter((s) => s.name === 'switchyard_certificate_expiry_timestamp_seconds')).toHaveLength(1);

    copyFileSync(expired.key, key);
    copyFileSync(expired.chain, chain);
    const after = await waitFor(async () => {
      const s = await scrape();
      return sample(s.samples, 'switchyard_certificate_expiry_timestamp_seconds', labels) !== opensslNotAfter(live.cert) ? s : null;
    }, 'the rotated certificate to show');
    expect(sample(after.samples, 'switchyard_certificate_expiry_timestamp_seconds', labels)).toBe(opensslNotAfter(expired.cert));
  });

  it('counts HTTP requests per route: status classes, a latency histogram whose counts are the requests, retries, reuse', async () => {
    // api: 200 for /api/ok, 404 for the rest; flaky: one backend always 503 (its requests are
    // retried on the other), one 200.
    const byPath = (req: { url?: string }, res: { statusCode: number; end(b: string): void }) => {
      res.statusCode = req.url === '/api/ok' ? 200 : req.url === '/api/boom' ? 500 : 404;
      res.end('x');
    };
    const http: HttpPeer[] = [];
    try {
      http.push(await httpPeer('a', (req, res) => byPath(req, res)), await httpPeer('b', (req, res) => byPath(req, res)));
      http.push(await httpPeer('bad', (req, res) => req.resume().once('end', () => ((res.statusCode = 503), res.end('down')))));
      http.push(await httpPeer('good', (req, res) => req.resume().once('end', () => res.end('up'))));
      const [a, b, bad, good] = http as [HttpPeer, HttpPeer, HttpPeer, HttpPeer];
      lb = await Switchyard.start({
        workers: 2,
        listeners: {
          web: {
            address: '127.0.0.1:0',
            protocol: 'http',
            routes: [
              { name: 'api', match: { path_prefix: '/api/' }, pool: 'api' },
              { name: 'flaky', match: { path_prefix: '/flaky/' }, pool: 'flaky' },
            ],
          },
        },
        pools: {
          api: { backends: [{ address: a.address }, { address: b.address }] },
          flaky: { retries: 2, backends: [{ address: bad.address }, { address: good.address }] },
        },
        admin: { address: '127.0.0.1:0' },
      });
      const base = `http://127.0.0.1:${lb.address('web').port}`;
      const get = async (path: string) => {
        const r = await fetch(base + path);
        await r.arrayBuffer();
        return r.status;
      };
      for (let i = 0; i < 6; i++) expect(await get('/api/ok')).toBe(200);
      for (let i = 0; i < 3; i++) expect(await get('/api/missing')).toBe(404);
      for (let i = 0; i < 2; i++) expect(await get('/api/boom')).toBe(500);
      for (let i = 0; i < 4; i++) expect(await get('/flaky/x')).toBe(200);
      expect(await get('/elsewhere')).toBe(404); // no route

      // The data plane's buckets are the bounds /metrics names, plus +Inf.
      for (const r of lb.stats().listeners[0]!.routes) expect(r.latency_buckets).toHaveLength(LATENCY_BUCKETS_SECONDS.length + 1);

      const { text, samples } = await scrape();
      expect(text).toMatch(/^# TYPE switchyard_route_request_duration_seconds histogram$/m);
      const api = { listener: 'web', route: 'api', pool: 'api' };
      const flaky = { listener: 'web', route: 'flaky', pool: 'flaky' };
      const cls = (at: Record<string, string>, c: string) => sample(samples, 'switchyard_route_responses_total', { ...at, class: c });
      expect([cls(api, '1xx'), cls(api, '2xx'), cls(api, '3xx'), cls(api, '4xx'), cls(api, '5xx')]).toEqual([0, 6, 0, 3, 2]);
      expect([cls(flaky, '2xx'), cls(flaky, '5xx')]).toEqual([4, 0]);
      expect(sample(samples, 'switchyard_listener_no_route_total', { listener: 'web' })).toBe(1);

      // The histogram: cumulative buckets ending in +Inf = _count = the requests of the route.
      for (const [at, requests] of [[api, 11], [flaky, 4]] as const) {
        const buckets = samples.filter((x) => x.name === 'switchyard_route_request_duration_seconds_bucket' && x.labels.route === at.route);
        expect(buckets.map((x) => x.labels.le)).toEqual([...LATENCY_BUCKETS_SECONDS.map(String), '+Inf']);
        for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
        expect(buckets.at(-1)!.value).toBe(requests);
        expect(sample(samples, 'switchyard_route_request_duration_seconds_count', at)).toBe(requests);
        const sum = sample(samples, 'switchyard_route_request_duration_seconds_sum', at);
        expect(sum).toBeGreaterThan(0);
        expect(sum / requests).toBeLessThan(5); // loopback answers, not the 60s request timeout
      }

      // Every 503 of the bad backend was retried on the good one.
      const retries = sample(samples, 'switchyard_route_retries_total', flaky);
      expect(retries).toBeGreaterThanOrEqual(1);
      expect(retries).toBe(sample(samples, 'switchyard_backend_responses_5xx_total', { pool: 'flaky', backend: bad.address }));
      expect(sample(samples, 'switchyard_route_retries_total', api)).toBe(0);
      expect(sample(samples, 'switchyard_backend_responses_5xx_total', { pool: 'flaky', backend: good.address })).toBe(0);
      expect(sample(samples, 'switchyard_backend_responses_5xx_total', { pool: 'api', backend: a.address }) + sample(samples, 'switchyard_backend_responses_5xx_total', { pool: 'api', backend: b.address })).toBe(2);

      // Per backend of an HTTP pool: requests = new connections + reused ones; sequential
      // requests reuse kept-alive connections.
      let requests = 0;
      let reused = 0;
      for (const p of [a, b]) {
        const at = { pool: 'api', backend: p.address };
        const total = sample(samples, 'switchyard_backend_connections_total', at);
        const r = sample(samples, 'switchyard_backend_connections_reused_total', at);
        expect(sample(samples, 'switchyard_backend_connect_seconds_count', at) + r).toBe(total);
        expect(sample(samples, 'switchyard_backend_connections_idle', at)).toBeGreaterThanOrEqual(0);
        requests += total;
        reused += r;
      }
      expect(requests).toBe(a.requests + b.requests);
      expect(requests).toBe(11);
      expect(reused).toBeGreaterThan(0);
    } finally {
      await lb?.close({ drainMs: 0 });
      lb = undefined;
      for (const p of http) await p.close();
    }
  });

  it('exports open and maximum file descriptors, and open ones follow connections', async () => {
    lb = await Switchyard.start(config());
    const before = await scrape();
    const limit = Number(execFileSync('sh', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim());
    expect(sample(before.samples, 'process_max_fds')).toBe(limit);
    const open0 = sample(before.samples, 'process_open_fds');
    expect(open0).toBeGreaterThan(0);
    expect(open0).toBeLessThan(limit);

    // 40 connections through the balancer, all in this process: the client socket, the
    // accepted one, the one to the backend and the backend's accepted one.
    const port = lb.address('front').port;
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 40; i++) held.push(await connect(port));
      await waitFor(() => lb!.stats().connections_active === 40, '40 connections to be open');
      const during = await scrape();
      expect(sample(during.samples, 'process_open_fds')).toBeGreaterThanOrEqual(open0 + 120);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

/**
 * Metric names the Metrics table of docs/admin.md names. A row may abbreviate: in
 * `a_b_in_total` / `_out_total` the short form replaces as many trailing `_words` of the
 * row's full name as it has.
 */
function documentedMetrics(): Set<string> {
  const doc = readFileSync(new URL('../docs/admin.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Metrics'), doc.indexOf('\n## ', doc.indexOf('## Metrics') + 1));
  const names = new Set<string>();
  for (const row of section.split('\n').filter((l) => l.startsWith('| `'))) {
    const cell = row.split(/(?<!\\)\|/)[1]!;
    const tokens = [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\{.*\}$/, ''));
    const full = tokens.filter((t) => !t.startsWith('_'));
    for (const f of full) names.add(f);
    for (const short of tokens.filter((t) => t.startsWith('_'))) {
      const n = short.split('_').length - 1;
      for (const f of full) names.add(f.split('_').slice(0, -n).join('_') + short);
    }
  }
  return names;
}

describe('docs/admin.md', () => {
  it('names every metric family /metrics exports, and no other', async () => {
    lb = await Switchyard.start(config());
    const { text } = await scrape();
    const exported = new Set<string>();
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      if (type === 'summary') exported.add(`${name}_sum`).add(`${name}_count`);
      else if (type === 'histogram') exported.add(`${name}_bucket`).add(`${name}_sum`).add(`${name}_count`);
      else exported.add(name!);
    }
    const documented = documentedMetrics();
    expect(exported.size).toBeGreaterThan(30);
    expect([...exported].filter((n) => !documented.has(n))).toEqual([]);
    expect([...documented].filter((n) => !exported.has(n))).toEqual([]);
  });
});
