// /metrics naming and the newer families, against a real balancer with a plain and a
// TLS-terminating listener: connect time as a _sum/_count summary, _ratio shares,
// build_info, TLS handshake/failure counters, certificate expiry (re-read on rotation),
// open/max file descriptors; promtool accepts every scrape without a lint warning.
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Switchyard, type SwitchyardConfig } from '../ts/index.js';
import { TestCa, type Leaf } from './certs.js';
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
      else exported.add(name!);
    }
    const documented = documentedMetrics();
    expect(exported.size).toBeGreaterThan(30);
    expect([...exported].filter((n) => !documented.has(n))).toEqual([]);
    expect([...documented].filter((n) => !exported.has(n))).toEqual([]);
  });
});
