// TLS termination and SNI passthrough, driven by real clients: openssl s_client, curl, Node's tls.
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, Switchyard, validateConfig } from '../ts/index.js';
import type { SwitchyardConfig } from '../ts/index.js';
import { TestCa, type Leaf } from './certs.js';
import { closedByPeer, connect, drain, echo, send, waitFor } from './helpers.js';

const run = promisify(execFile);
const MB = 1024 * 1024;


/** Run `openssl s_client` against the balancer; returns its output (never throws). */
function sClient(port: number, args: string[], input = ''): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', () => resolve(out));
    child.stdin.end(input);
  });
}

/** The subject CN of the certificate the server presented. */
async function servedCn(port: number, servername?: string): Promise<string> {
  const out = await sClient(port, servername ? ['-servername', servername] : ['-noservername']);
  return /subject=.*CN\s*=\s*([^\s,/]+)/.exec(out)?.[1] ?? `(no certificate: ${out.slice(0, 300)})`;
}

let ca: TestCa;
let a: Leaf, wild: Leaf, fallback: Leaf, rsa: Leaf;
let web: http.Server;
let webAddress = '';

beforeAll(async () => {
  ca = new TestCa();
  a = ca.leaf(['a.example.com']);
  wild = ca.leaf(['*.wild.example.com']);
  fallback = ca.leaf(['default.example.com']);
  rsa = ca.leaf(['rsa.example.com'], { rsa: true });
  web = http.createServer((req, res) => res.end(`hello over ${req.headers.host}\n`));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webAddress = `127.0.0.1:${(web.address() as AddressInfo).port}`;
});
afterAll(() => web.close());

function tlsConfig(backend: string, tlsOpts: Record<string, unknown> = {}): SwitchyardConfig {
  return {
    workers: 2,
    listeners: {
      front: {
        address: '127.0.0.1:0',
        pool: 'web',
        tls: {
          certificates: [
            { cert: fallback.chain, key: fallback.key },
            { cert: a.chain, key: a.key },
            { cert: wild.chain, key: wild.key },
            { cert: rsa.chain, key: rsa.key },
          ],
          ...tlsOpts,
        },
      },
    },
    pools: { web: { backends: [{ address: backend }] } },
  } as SwitchyardConfig;
}

describe('TLS termination', () => {
  it('serves the right certificate per SNI (exact, wildcard, RSA), and the default otherwise', async () => {
    const lb = await Switchyard.start(tlsConfig(webAddress));
    try {
      const port = lb.address('front').port;
      expect(await servedCn(port, 'a.example.com')).toBe('a.example.com');
      expect(await servedCn(port, 'x.wild.example.com')).toBe('*.wild.example.com');
      expect(await servedCn(port, 'rsa.example.com')).toBe('rsa.example.com');
      expect(await servedCn(port, 'unknown.example.org')).toBe('default.example.com');
      expect(await servedCn(port)).toBe('default.example.com');
      // A wildcard covers one label only.
      expect(await servedCn(port, 'a.b.wild.example.com')).toBe('default.example.com');
      const t = lb.stats().listeners[0]!.tls!;
      expect(t.handshakes).toBeGreaterThanOrEqual(6);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('curl gets the backend response end to end, verifying the chain', async () => {
    const lb = await Switchyard.start(tlsConfig(webAddress, { alpn: ['http/1.1'] }));
    try {
      const port = lb.address('front').port;
      const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--cacert', ca.cert, '--resolve', `a.example.com:${port}:127.0.0.1`, `https://a.example.com:${port}/`]);
      expect(stdout).toBe(`hello over a.example.com:${port}\n`);
      expect(lb.stats().listeners[0]!.tls!.alpn['http/1.1']).toBe(1);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('strict_sni refuses clients without SNI or with an unknown name, and counts them', async () => {
    const lb = await Switchyard.start(tlsConfig(webAddress, { strict_sni: true }));
    try {
      const port = lb.address('front').port;
      expect(await servedCn(port, 'a.example.com')).toBe('a.example.com');
      expect(await servedCn(port, 'unknown.example.org')).toMatch(/^\(no certificate/);
      expect(await servedCn(port)).toMatch(/^\(no certificate/);
      await waitFor(() => lb.stats().listeners[0]!.tls!.failures_sni >= 2, 'failures_sni to count');
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('negotiates ALPN, TLS 1.2 and 1.3, and enforces min_version', async () => {
    const lb = await Switchyard.start(tlsConfig(webAddress, { alpn: ['h2', 'http/1.1'] }));
    const strict = await Switchyard.start(tlsConfig(webAddress, { min_version: '1.3' }));
    try {
      const port = lb.address('front').port;
      expect(await sClient(port, ['-servername', 'a.example.com', '-alpn', 'h2'])).toContain('ALPN protocol: h2');
      expect(await sClient(port, ['-servername', 'a.example.com', '-alpn', 'foo,http/1.1'])).toContain('ALPN protocol: http/1.1');
      expect(await sClient(port, ['-servername', 'a.example.com', '-tls1_2'])).toMatch(/Protocol\s*:\s*TLSv1\.2/);
      expect(await sClient(port, ['-servername', 'a.example.com', '-tls1_3'])).toMatch(/TLSv1\.3/);
      const t = lb.stats().listeners[0]!.tls!;
      expect(t.tls12).toBeGreaterThanOrEqual(1);
      expect(t.tls13).toBeGreaterThanOrEqual(1);
      const refused = await sClient(strict.address('front').port, ['-servername', 'a.example.com', '-tls1_2']);
      expect(refused).toContain('Cipher is (NONE)');
      expect(strict.stats().listeners[0]!.tls!.handshakes).toBe(0);
    } finally {
      await lb.close({ drainMs: 0 });
      await strict.close({ drainMs: 0 });
    }
  });

  it('resumes sessions (openssl -sess_out / -sess_in reports Reused)', async () => {
    const lb = await Switchyard.start(tlsConfig(webAddress));
    try {
      const port = lb.address('front').port;
      const sess = join(ca.dir, 'session.pem');
      const first = await sClient(port, ['-servername', 'a.example.com', '-tls1_2', '-sess_out', sess]);
      expect(first).toContain('New, ');
      const second = await sClient(port, ['-servername', 'a.example.com', '-tls1_2', '-sess_in', sess]);
      expect(second).toContain('Reused, ');
      expect(lb.stats().listeners[0]!.tls!.resumed).toBe(1);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('reloads a changed certificate for new handshakes while an earlier connection keeps transferring', async () => {
    const backend = await echo();
    const live = ca.leaf(['reload.example.com'], { file: 'reload-v1' });
    const next = ca.leaf(['reload-v2.example.com', 'reload.example.com'], { file: 'reload-v2' });
    const lb = await Switchyard.start({
      workers: 2,
      listeners: { front: { address: '127.0.0.1:0', pool: 'p', tls: { certificates: [{ cert: live.chain, key: live.key }] } } },
      pools: { p: { backends: [{ address: backend.address }] } },
    });
    try {
      const port = lb.address('front').port;
      const old = tls.connect({ port, host: '127.0.0.1', servername: 'reload.example.com', ca: [readFileSync(ca.cert)] });
      await new Promise((r) => old.once('secureConnect', r));
      expect(old.getPeerCertificate().subject.CN).toBe('reload.example.com');
      const got = drain(old as unknown as net.Socket);
      const sending = send(old as unknown as net.Socket, 16 * MB, { chunk: 64 * 1024, end: true, pauseEvery: 4 });
      // Swap the files under the running balancer (key first, then the chain).
      copyFileSync(next.key, live.key);
      copyFileSync(next.chain, live.chain);
      await waitFor(async () => (await servedCn(port, 'reload.example.com')) === 'reload-v2.example.com', 'the new certificate to be served');
      const sent = await sending;
      const result = await got;
      expect(result.length).toBe(16 * MB);
      expect(result.sha256).toBe(sent);
    } finally {
      await lb.close({ drainMs: 0 });
      await backend.close();
    }
  });

  it('a broken certificate on reload keeps the old one in force', async () => {
    const live = ca.leaf(['keep.example.com'], { file: 'keep' });
    const lb = await Switchyard.start(tlsConfig(webAddress));
    try {
      await lb.update({
        listeners: { front: { address: '127.0.0.1:0', pool: 'web', tls: { certificates: [{ cert: live.chain, key: live.key }] } } },
        pools: { web: { backends: [{ address: webAddress }] } },
      });
      const port = lb.address('front').port;
      expect(await servedCn(port, 'keep.example.com')).toBe('keep.example.com');
      writeFileSync(live.chain, 'garbage\n');
      // The watcher's reload fails in the data plane; the served certificate does not change.
      await new Promise((r) => setTimeout(r, 1500)); // give the watcher time to see the change (not a synchronisation point)
      expect(await servedCn(port, 'keep.example.com')).toBe('keep.example.com');
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });

  it('closes and counts random bytes or plaintext HTTP sent to a TLS port, without harm', async () => {
    const lb = await Switchyard.start(tlsConfig(webAddress, { handshake_timeout: '2s' }));
    try {
      const port = lb.address('front').port;
      for (const junk of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255))]) {
        const s = await connect(port);
        const closed = closedByPeer(s);
        s.write(junk);
        await closed;
        s.destroy();
      }
      await waitFor(() => lb.stats().listeners[0]!.tls!.failures_protocol >= 2, 'protocol failures to count');
      expect(await servedCn(port, 'a.example.com')).toBe('a.example.com'); // still serving
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});

describe('TLS to backends', () => {
  let tlsBackend: net.Server;
  let backendAddress = '';
  beforeAll(async () => {
    const leaf = ca.leaf(['backend.internal']);
    tlsBackend = tls.createServer({ cert: readFileSync(leaf.chain), key: readFileSync(leaf.key) }, (s) => s.end(`secure hello to ${s.servername}\n`));
    await new Promise<void>((r) => tlsBackend.listen(0, '127.0.0.1', r));
    backendAddress = `127.0.0.1:${(tlsBackend.address() as AddressInfo).port}`;
  });
  afterAll(() => tlsBackend.close());

  async function through(backend_tls: Record<string, unknown>): Promise<{ text: string; errors: number }> {
    const lb = await Switchyard.start({
      workers: 1,
      listeners: { front: { address: '127.0.0.1:0', pool: 'p' } },
      pools: { p: { retries: 0, backend_tls, backends: [{ address: backendAddress }] } },
    } as SwitchyardConfig);
    try {
      const s = await connect(lb.address('front').port);
      const got = await drain(s);
      return { text: got.text, errors: lb.stats().pools[0]!.backends[0]!.tls_errors };
    } finally {
      await lb.close({ drainMs: 0 });
    }
  }

  it('verifies the backend against the configured CA and sends the SNI', async () => {
    const r = await through({ ca: ca.cert, sni: 'backend.internal' });
    expect(r.text).toBe('secure hello to backend.internal\n');
  });

  it('refuses a backend whose certificate another CA signed (verification is on by default)', async () => {
    const other = new TestCa('Another CA');
    const r = await through({ ca: other.cert, sni: 'backend.internal' });
    expect(r.text).toBe('');
    expect(r.errors).toBe(1);
  });

  it('refuses a name mismatch, and verify: false accepts anything', async () => {
    expect((await through({ ca: ca.cert, sni: 'wrong.internal' })).text).toBe('');
    // Without an sni the balancer presents the backend's IP, which TLS never sends as SNI.
    expect((await through({ verify: false })).text).toBe('secure hello to false\n');
  });
});

describe('TLS passthrough routed by SNI', () => {
  it('routes two names to two pools; the backend sees the original ClientHello', async () => {
    const servers: tls.Server[] = [];
    const backendFor = async (tag: string, leaf: Leaf) => {
      const s = tls.createServer({ cert: readFileSync(leaf.chain), key: readFileSync(leaf.key), ALPNProtocols: ['x-test'] }, (c) =>
        c.end(`${tag} saw servername=${c.servername} alpn=${c.alpnProtocol}\n`),
      );
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      servers.push(s);
      return `127.0.0.1:${(s.address() as AddressInfo).port}`;
    };
    const lb = await Switchyard.start({
      workers: 2,
      listeners: { edge: { address: '127.0.0.1:0', pool: 'other', sni_routes: { 'a.example.com': 'alpha', '*.wild.example.com': 'beta' } } },
      pools: {
        alpha: { backends: [{ address: await backendFor('alpha', a) }] },
        beta: { backends: [{ address: await backendFor('beta', wild) }] },
        other: { backends: [{ address: await backendFor('other', fallback) }] },
      },
    });
    try {
      const port = lb.address('edge').port;
      const hello = (servername: string) =>
        new Promise<string>((resolve, reject) => {
          const c = tls.connect({ port, host: '127.0.0.1', servername, ca: [readFileSync(ca.cert)], ALPNProtocols: ['x-test'], checkServerIdentity: () => undefined });
          let out = '';
          c.on('data', (d: Buffer) => (out += d.toString()));
          c.on('end', () => resolve(out));
          c.on('error', reject);
        });
      // End-to-end verification succeeds only if the backend got our exact ClientHello (the
      // handshake transcript covers it), and the backend reports the SNI and ALPN we sent.
      expect(await hello('a.example.com')).toBe('alpha saw servername=a.example.com alpn=x-test\n');
      expect(await hello('x.wild.example.com')).toBe('beta saw servername=x.wild.example.com alpn=x-test\n');
      expect(await hello('elsewhere.example.org')).toBe('other saw servername=elsewhere.example.org alpn=x-test\n');
      // Not TLS at all: closed and counted.
      const s = await connect(port);
      const closed = closedByPeer(s);
      s.write('GET / HTTP/1.0\r\n\r\n');
      await closed;
      s.destroy();
      const t = lb.stats().listeners[0]!.tls!;
      expect(t.sni_routed).toBe(3);
      await waitFor(() => lb.stats().listeners[0]!.tls!.sni_not_tls === 1, 'sni_not_tls to count');
    } finally {
      await lb.close({ drainMs: 0 });
      servers.forEach((s) => s.close());
    }
  });
});

describe('bad TLS input', () => {
  const cfg = (cert: string, key: string, strict = false) => ({
    listeners: { web: { address: '127.0.0.1:0', pool: 'p', tls: { certificates: [{ cert, key }], strict } } },
    pools: { p: { backends: [{ address: '127.0.0.1:1' }] } },
  });
  const issue = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('names the file for a missing file, garbage PEM and a key that does not match', () => {
    expect(issue(() => validateConfig(cfg('/nonexistent/cert.pem', a.key), 's'))).toMatch(/listeners\.web\.tls\.certificates\[0\]\.cert: \/nonexistent\/cert\.pem: no such file/);
    const garbage = join(ca.dir, 'garbage.pem');
    writeFileSync(garbage, 'not a pem\n');
    expect(issue(() => validateConfig(cfg(garbage, a.key), 's'))).toContain(`${garbage}: not a readable PEM certificate`);
    expect(issue(() => validateConfig(cfg(a.chain, wild.key), 's'))).toContain(`${wild.key}: this key does not match the certificate ${a.chain}`);
  });

  it('warns about an expired certificate, or refuses it with strict', () => {
    const old = ca.leaf(['old.example.com'], { expired: true });
    const r = validateConfig(cfg(old.chain, old.key), 's');
    expect(r.listeners[0]!.tls!.certificates[0]!.expired).toBe(true);
    expect(issue(() => validateConfig(cfg(old.chain, old.key, true), 's'))).toContain('expired on 2020-02-01');
  });
});

