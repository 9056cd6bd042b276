// Backends by DNS name and from SRV records, against a real DNS server: dnsmasq (Debian package
// dnsmasq-base) on a loopback port, answering from a hosts file the test rewrites (SIGHUP makes
// dnsmasq re-read it) with a 1 s TTL, and from --srv-host records. Backends listen on 127.0.0.2 and
// 127.0.0.3 (all of 127.0.0.0/8 is loopback on Linux) and answer with their tag.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, Switchyard, type BackendEvent, type SwitchyardConfig } from '../ts/index.js';
import { connect, readLine, refusedPort, waitFor } from './helpers.js';

const DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'].find((p) => spawnSync(p, ['--version']).status === 0);
const dir = mkdtempSync(join(tmpdir(), 'switchyard-dns-'));

/** What a test started; stopped after it, passed or failed. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c().catch(() => {})));
});

interface Dns {
  port: number;
  server: string;
  /** Replace the hosts file (`ip name` lines) and make dnsmasq re-read it. */
  hosts(lines: string[]): void;
}

/** Start dnsmasq answering from a hosts file (and `srv` as --srv-host values); stopped after the test. */
async function dnsmasq(lines: string[], srv: string[] = []): Promise<Dns> {
  const hostsFile = join(dir, `hosts-${Math.random().toString(36).slice(2)}`);
  const write = (l: string[]) => writeFileSync(hostsFile, `${l.join('\n')}\n`, { mode: 0o644 });
  write(lines);
  for (let attempt = 0; ; attempt++) {
    // A port nothing listens on (dnsmasq binds UDP and TCP on it; a clash makes it exit: retried).
    const port = await refusedPort();
    const args = ['--no-daemon', '--conf-file=/dev/null', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, '--local-ttl=1', '--pid-file=', '--user=root', ...srv.map((s) => `--srv-host=${s}`)];
    const child: ChildProcess = spawn(DNSMASQ!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    });
    const server = `127.0.0.1:${port}`;
    const r = new Resolver({ timeout: 500, tries: 1 });
    r.setServers([server]);
    // Ready when it answers (a port taken meanwhile makes it exit: try another). REFUSED is an answer.
    const down = (e: { code?: string }) => (e.code === 'ECONNREFUSED' || e.code === 'ETIMEOUT' ? undefined : 'up');
    const ready = await waitFor(async () => (child.exitCode !== null ? 'exited' : await r.resolve4('x.test').then(() => 'up', down)), 'dnsmasq answering');
    if (ready === 'up') return { port, server, hosts: (l) => (write(l), child.kill('SIGHUP')) };
    if (attempt >= 2) throw new Error(`dnsmasq did not start: ${stderr}`);
  }
}

/** Tagged TCP servers on `ips`, all on one port (a name's addresses share the port of its backend entry). */
async function taggedOn(ips: string[], tag = (ip: string) => ip): Promise<{ port: number; accepted: Map<string, number> }> {
  for (;;) {
    const accepted = new Map<string, number>();
    const servers: net.Server[] = [];
    const sockets = new Set<net.Socket>();
    let port = 0;
    try {
      for (const ip of ips) {
        const server = net.createServer((s) => {
          accepted.set(ip, (accepted.get(ip) ?? 0) + 1);
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {});
          s.write(`${tag(ip)}\n`);
          s.pipe(s);
        });
        servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, ip, resolve);
        });
        port = (server.address() as AddressInfo).port;
      }
    } catch {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      continue; // the port was free on the first address only: pick another
    }
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      return Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    });
    return { port, accepted };
  }
}

async function start(config: SwitchyardConfig, logs: { event: string; fields: Record<string, unknown> }[] = []): Promise<Switchyard> {
  const lb = await Switchyard.start(config, { logger: (event, fields = {}) => logs.push({ event, fields }) });
  cleanups.push(() => lb.close({ drainMs: 0 }));
  return lb;
}

/** The tag of the backend one new connection through `port` reaches. */
async function through(port: number): Promise<string> {
  const s = await connect(port);
  try {
    return await readLine(s);
  } finally {
    s.destroy();
  }
}

const addresses = (lb: Switchyard, pool = 'api') =>
  lb.config.pools
    .find((p) => p.name === pool)!
    .backends.map((b) => b.address)
    .sort();

describe.skipIf(!DNSMASQ)(`backends by DNS name${DNSMASQ ? '' : ' (skipped: dnsmasq is not installed; Debian package "dnsmasq-base")'}`, () => {
  it('spreads traffic over every address of a name, follows the records within a few TTLs, and keeps the last addresses when the name stops resolving', async () => {
    const dns = await dnsmasq(['127.0.0.2 api.test', '127.0.0.3 api.test']);
    const backends = await taggedOn(['127.0.0.2', '127.0.0.3']);
    const events: BackendEvent[] = [];
    const logs: { event: string; fields: Record<string, unknown> }[] = [];
    const lb = await start(
      {
        dns: { servers: [dns.server], min_ttl: '100ms', max_ttl: '1s' },
        listeners: { web: { address: '127.0.0.1:0', pool: 'api' } },
        pools: { api: { backends: [{ address: `api.test:${backends.port}`, weight: 2 }] } },
      },
      logs,
    );
    lb.on('backend', (e) => events.push(e));
    const a2 = `127.0.0.2:${backends.port}`;
    const a3 = `127.0.0.3:${backends.port}`;
    expect(addresses(lb)).toEqual([a2, a3]);
    expect(lb.config.pools[0]!.backends.map((b) => b.weight)).toEqual([2, 2]);
    const port = lb.address('web').port;

    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) seen.add(await through(port));
    expect([...seen].sort()).toEqual(['127.0.0.2', '127.0.0.3']);

    // Runtime state of an address that stays survives the re-resolution.
    await lb.setWeight('api', a2, 7);
    dns.hosts(['127.0.0.2 api.test']);
    await waitFor(() => addresses(lb).length === 1, 'the pool to follow the hosts file', 30_000);
    expect(addresses(lb)).toEqual([a2]);
    expect(lb.config.pools[0]!.backends[0]!.weight).toBe(7);
    expect(events).toContainEqual(expect.objectContaining({ pool: 'api', address: a3, kind: 'removed' }));
    expect(lb.stats().pools.find((p) => p.name === 'api')?.backends.map((b) => b.address)).toEqual([a2]);

    const before = backends.accepted.get('127.0.0.3') ?? 0;
    for (let i = 0; i < 8; i++) expect(await through(port)).toBe('127.0.0.2');
    expect(backends.accepted.get('127.0.0.3') ?? 0).toBe(before);

    // The name disappears: a warning, and the last good address stays in service.
    dns.hosts(['127.0.0.9 other.test']);
    await waitFor(() => logs.find((l) => l.event === 'dns.resolve_failed' && l.fields.name === 'api.test'), 'the failed resolution to be logged', 30_000);
    expect(logs.find((l) => l.event === 'dns.resolve_failed')!.fields.kept).toEqual([a2]);
    expect(addresses(lb)).toEqual([a2]);
    expect(await through(port)).toBe('127.0.0.2');

    // It comes back with both addresses: the new one is added with the declared weight.
    dns.hosts(['127.0.0.2 api.test', '127.0.0.3 api.test']);
    await waitFor(() => addresses(lb).length === 2, 'the name to resolve again', 30_000);
    expect(lb.config.pools[0]!.backends.find((b) => b.address === a3)!.weight).toBe(2);
    expect(events).toContainEqual(expect.objectContaining({ address: a3, kind: 'added' }));
  });

  it('takes backends, ports, weights and backups from SRV records', async () => {
    const one = await taggedOn(['127.0.0.2'], () => 'one');
    const two = await taggedOn(['127.0.0.3'], () => 'two');
    const spare = await taggedOn(['127.0.0.4'], () => 'spare');
    const dns = await dnsmasq(
      ['127.0.0.2 t1.test', '127.0.0.3 t2.test', '127.0.0.4 t3.test'],
      [`_app._tcp.srv.test,t1.test,${one.port},0,10`, `_app._tcp.srv.test,t2.test,${two.port},0,30`, `_app._tcp.srv.test,t3.test,${spare.port},1,5`],
    );
    const lb = await start({
      dns: { servers: [dns.server], family: 'ipv4' },
      listeners: { web: { address: '127.0.0.1:0', pool: 'api' } },
      pools: { api: { backends_from: { srv: '_app._tcp.srv.test' } } },
    });
    const got = lb.config.pools[0]!.backends.map(({ address, weight, backup }) => ({ address, weight, backup }));
    expect(got.sort((a, b) => a.address.localeCompare(b.address))).toEqual([
      { address: `127.0.0.2:${one.port}`, weight: 10, backup: false },
      { address: `127.0.0.3:${two.port}`, weight: 30, backup: false },
      { address: `127.0.0.4:${spare.port}`, weight: 5, backup: true },
    ]);
    // Weighted round robin over the primaries (10:30); the backup gets nothing while they are up.
    const counts = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const tag = await through(lb.address('web').port);
      counts.set(tag, (counts.get(tag) ?? 0) + 1);
    }
    expect(counts.get('spare')).toBeUndefined();
    // 10:30 by weight (20:20 if the weights were lost); loose bounds, the exact interleave is the selector's.
    expect(counts.get('one')).toBeGreaterThanOrEqual(6);
    expect(counts.get('two')).toBeGreaterThanOrEqual(26);
  });

  it('refuses to start when a name does not resolve, naming the field and the name', async () => {
    const dns = await dnsmasq(['127.0.0.2 api.test']);
    const config: SwitchyardConfig = {
      dns: { servers: [dns.server], timeout: '500ms' },
      listeners: { web: { address: '127.0.0.1:0', pool: 'api' } },
      pools: { api: { backends: [{ address: '127.0.0.2:1' }, { address: 'missing.test:80' }] } },
    };
    const err = await Switchyard.start(config, { source: 'dns.yaml' }).then(
      async (lb) => {
        await lb.close({ drainMs: 0 });
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([{ path: 'pools.api.backends[1].address', message: expect.stringContaining('"missing.test" did not resolve') }]);
    expect((err as ConfigError).message).toContain('dns.yaml');
  });

  it('re-resolves the names of a reloaded configuration; a reload whose name fails changes nothing', async () => {
    const dns = await dnsmasq(['127.0.0.2 a.test', '127.0.0.3 b.test']);
    const backends = await taggedOn(['127.0.0.2', '127.0.0.3']);
    const base = (name: string): SwitchyardConfig => ({
      dns: { servers: [dns.server] },
      listeners: { web: { address: '127.0.0.1:0', pool: 'api' } },
      pools: { api: { backends: [{ address: `${name}:${backends.port}` }] } },
    });
    const lb = await start(base('a.test'));
    await lb.drain('api', `127.0.0.2:${backends.port}`);
    await expect(lb.update(base('nowhere.test'))).rejects.toThrow(/pools\.api\.backends\[0\]\.address: "nowhere\.test" did not resolve/);
    expect(addresses(lb)).toEqual([`127.0.0.2:${backends.port}`]);
    // The same declaration again keeps the drain set at runtime; another name replaces the backend.
    await lb.update(base('a.test'));
    expect(lb.config.pools[0]!.backends[0]!.state).toBe('drain');
    await lb.update(base('b.test'));
    expect(addresses(lb)).toEqual([`127.0.0.3:${backends.port}`]);
    expect(await through(lb.address('web').port)).toBe('127.0.0.3');
  });
});
