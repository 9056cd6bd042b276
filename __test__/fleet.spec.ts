/**
 * A fleet on one machine: network namespaces as hosts on a bridge, a Switchyard per host
 * (`ip netns exec NS node dist/cli.js start`), real keepalived moving a virtual IP between two of
 * them, and a real etcd holding the pool's members. Proves: both nodes map 10,000 client keys
 * identically (real connections from 10,000 source addresses); a backend put under the etcd
 * prefix reaches every node quickly; an etcd outage changes nothing that runs; killing the active
 * node's Switchyard moves the VIP (keepalived checks /readyz) and clients through the VIP recover
 * after the failover gap, served by the standby's freebind listener. Numbers are reported, not
 * asserted tightly. Every namespace is removed afterwards, also on failure.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from './cli-process.js';
import { HAS_ETCD, startEtcd, type EtcdServer } from './etcd.js';
import { taggedOn, waitFor, type Peer } from './helpers.js';
import { ip, Lan, netnsUnavailable, type Host } from './netns.js';
import { stopAll, track } from './processes.js';

const run = promisify(execFile);
const FIXTURES = join(import.meta.dirname, 'fixtures');
const HAS_KEEPALIVED = (await run('keepalived', ['--version']).then(() => true, () => false));
const WHY_NOT = process.platform !== 'linux' ? 'not Linux' : !HAS_ETCD ? 'etcd is not installed (Debian etcd-server)' : !HAS_KEEPALIVED ? 'keepalived is not installed' : await netnsUnavailable();
if (WHY_NOT) console.warn(`fleet.spec.ts skipped: network namespaces cannot be used here: ${WHY_NOT}`);

const KEYS = 10_000;
const ADMIN_PORT = 9901;
/** The admin API listens on each node's LAN address, so it needs a token (the probes do not). */
const TOKEN = 'fleet-test-token-0123456789';

describe.skipIf(WHY_NOT !== null)('a fleet in network namespaces', () => {
  const lan = new Lan();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-fleet-'));
  const prefix = `/fleet-${lan.id}/web/`;
  const vip = lan.addr(100);
  let etcd: EtcdServer;
  let a: Host, b: Host, c: Host;
  const nodes = new Map<string, CliProcess>();
  const backends: Peer[] = [];

  beforeAll(async () => {
    await lan.up();
    [a, b, c] = [await lan.host('a', 2), await lan.host('b', 3), await lan.host('c', 10)];
    // Host c owns 10.212.0.0/16 (any source address in it is local there); the nodes route it back to c.
    await ip('-n', c.ns, 'route', 'add', 'local', '10.212.0.0/16', 'dev', 'lo');
    for (const h of [a, b]) await ip('-n', h.ns, 'route', 'add', '10.212.0.0/16', 'via', c.ip);
    etcd = await startEtcd(lan.self);
    for (const id of ['k1', 'k2', 'k3', 'k4']) backends.push(await taggedOn(id, lan.self));
    for (const [i, p] of backends.slice(0, 3).entries()) await etcd.client.put(`${prefix}${i}`).value(p.address);
  }, 60_000);

  afterAll(async () => {
    await stopAll();
    await etcd?.destroy();
    await Promise.all(backends.map((p) => p.close()));
    await lan.down();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /** Start a Switchyard in `h`: the VIP listener (freebind), a direct one on its own address, admin on its address. */
  function startNode(h: Host): CliProcess {
    const cfg = {
      workers: 1,
      listeners: {
        vip: { address: `${vip}:8080`, pool: 'web', freebind: true },
        direct: { address: `${h.ip}:8081`, pool: 'web' },
      },
      pools: { web: { algorithm: 'maglev', hash_key: 'source_ip', connect_timeout: '1s', backends_from: { etcd: prefix } } },
      etcd: { endpoints: [etcd.endpoint] },
      admin: { address: `${h.ip}:${ADMIN_PORT}`, token: TOKEN },
    };
    const file = join(dir, `${h.ns}.json`);
    writeFileSync(file, JSON.stringify(cfg));
    const cli = startCli(['start', '-c', file], { netns: h.ns });
    nodes.set(h.ns, cli);
    return cli;
  }

  const poolOf = async (h: Host) => ((await (await fetch(`http://${h.ip}:${ADMIN_PORT}/api/pools/web`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { pool: { backends: { address: string }[]; membership: { sources: string[] } } }).pool;

  /** The backend each of the 10,000 source addresses of host c reaches through `h`'s direct listener. */
  async function keyedAnswers(h: Host): Promise<(string | null)[]> {
    const { stdout } = await run('ip', ['netns', 'exec', c.ns, process.execPath, join(FIXTURES, 'keyed-client.mjs'), h.ip, '8081', String(KEYS)], { maxBuffer: 8 << 20 });
    return JSON.parse(stdout) as (string | null)[];
  }

  it('two nodes map 10,000 keys identically, follow etcd within a second, and keep running through an etcd outage', async () => {
    for (const h of [a, b]) await startNode(h).port('direct');

    const [fromA, fromB] = [await keyedAnswers(a), await keyedAnswers(b)];
    expect(fromA.filter((x) => x === null)).toHaveLength(0);
    expect(new Set(fromA)).toEqual(new Set(['k1', 'k2', 'k3']));
    const differ = fromA.filter((x, i) => x !== fromB[i]).length;
    expect(differ).toBe(0);

    // A backend put under the prefix reaches both nodes.
    const t0 = Date.now();
    await etcd.client.put(`${prefix}3`).value(backends[3]!.address);
    const arrived = await Promise.all(
      [a, b].map(async (h) => {
        await waitFor(async () => (await poolOf(h)).backends.some((x) => x.address === backends[3]!.address), `the new backend on ${h.ns}`, 10_000);
        return Date.now() - t0;
      }),
    );
    console.log(`etcd put → every node: ${Math.max(...arrived)} ms (a ${arrived[0]} ms, b ${arrived[1]} ms; polled every 20 ms over the admin API)`);
    expect((await poolOf(a)).membership.sources).toEqual(['etcd']);

    // etcd goes away: the nodes keep their pools and keep serving.
    await etcd.kill();
    for (const h of [a, b]) await waitFor(() => nodes.get(h.ns)!.events('etcd.disconnected').length > 0, `${h.ns} to notice the etcd outage`);
    for (const h of [a, b]) expect((await poolOf(h)).backends).toHaveLength(4);
    const after = await keyedAnswers(a);
    expect(after.filter((x) => x === null)).toHaveLength(0);
    expect(new Set(after)).toEqual(new Set(['k1', 'k2', 'k3', 'k4']));
  }, 120_000);

  it('keepalived moves the VIP when the active node fails /readyz; clients recover through the standby', async () => {
    // The keepalived.conf of docs/fleet.md, with this LAN's addresses: the documented file is the tested one.
    const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'fleet.md'), 'utf8');
    const template = /# \/etc\/keepalived\/keepalived\.conf on host A[^\n]*\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(template, 'the keepalived.conf block of docs/fleet.md').toBeTruthy();
    const conf = (self: Host, peer: Host, priority: number) =>
      template!
        .replaceAll('10.0.0.100', vip)
        .replaceAll('10.0.0.2', self.ip)
        .replaceAll('10.0.0.3', peer.ip)
        .replace('router_id sy-a', `router_id ${self.ns}`)
        .replace('priority 150', `priority ${priority}`);
    for (const [self, peer, prio] of [[a, b, 150], [b, a, 100]] as const) {
      const file = join(dir, `ka-${self.ns}.conf`);
      writeFileSync(file, conf(self, peer, prio));
      const child = spawn('ip', ['netns', 'exec', self.ns, 'keepalived', '-n', '-l', '-D', '-G', '-P', '-f', file, '-p', join(dir, `ka-${self.ns}.pid`), '-r', join(dir, `vrrp-${self.ns}.pid`)], { stdio: 'ignore' });
      void track(child);
    }
    await waitFor(async () => (await lan.addresses(a)).includes(vip), 'the VIP on node a (keepalived MASTER)', 30_000);
    expect(await lan.addresses(b)).not.toContain(vip);

    // A client loop through the VIP: one connection every 50 ms, 300 ms to answer.
    const results: { t: number; ok: boolean }[] = [];
    let looping = true;
    const loop = (async () => {
      while (looping) {
        const started = Date.now();
        results.push({ t: started, ok: await askOnce(vip, 8080, 300) });
        await new Promise((r) => setTimeout(r, Math.max(0, 50 - (Date.now() - started))));
      }
    })();
    try {
      await waitFor(() => results.filter((r) => r.ok).length >= 5, 'the client loop to be served through the VIP');
      const killedAt = Date.now();
      await nodes.get(a.ns)!.kill();
      await waitFor(async () => (await lan.addresses(b)).includes(vip), 'the VIP to move to node b', 30_000);
      const back = await waitFor(() => results.find((r) => r.t > killedAt && r.ok), 'a client served after the failover', 30_000);
      // After recovery: 20 more answers in a row, no error.
      await waitFor(() => results.filter((r) => r.t > back.t).length >= 20, '20 more client attempts');
      const lastBefore = [...results].reverse().find((r) => r.t <= killedAt && r.ok)!;
      const failed = results.filter((r) => r.t > killedAt && r.t < back.t).length;
      console.log(`failover: VIP moved a → b; gap ${back.t - lastBefore.t} ms between the last answer before the kill and the first after (${failed} failed attempts, 50 ms apart)`);
      expect(results.filter((r) => r.t > back.t).every((r) => r.ok)).toBe(true);
      expect(await lan.addresses(a)).not.toContain(vip);
    } finally {
      looping = false;
      await loop;
    }
  }, 120_000);
});

/** One connection to host:port; true if a backend's line arrives within `ms`. */
function askOnce(host: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    s.on('data', (d) => done(/^k\d\n/.test(d.toString())));
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}
