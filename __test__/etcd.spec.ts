/**
 * A pool's backends from an etcd prefix, against a real etcd: listed before the balancer starts,
 * then watched (each put or delete reaches the pool without polling), bad values reported and
 * skipped, an etcd outage keeps everything that runs and the watch resumes after it; the admin API
 * and /metrics say where the pool's members came from and when they last changed.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, Switchyard, validateConfig, type SwitchyardConfig } from '../ts/index.js';
import { readLine, connect, tagged, waitFor, type Peer } from './helpers.js';
import { HAS_ETCD, startEtcd, type EtcdServer } from './etcd.js';
import { stopAll } from './processes.js';
import { startCli } from './cli-process.js';
import { sourcesOf } from '../ts/membership.js';

const PREFIX = '/switchyard/pools/web/';
const run = promisify(execFile);

function config(endpoint: string, prefix = PREFIX): SwitchyardConfig {
  return {
    workers: 1,
    listeners: { front: { address: '127.0.0.1:0', pool: 'web' } },
    pools: { web: { algorithm: 'round_robin', connect_timeout: '1s', backends_from: { etcd: prefix } } },
    etcd: { endpoints: [endpoint], dial_timeout: '2s' },
    admin: { address: '127.0.0.1:0' },
  };
}

/** The backends that answered `n` connections (their ids). */
async function answering(port: number, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const s = await connect(port);
    seen.add(await readLine(s));
    s.destroy();
  }
  return seen;
}

describe('etcd configuration', () => {
  it('a pool may take its backends from an etcd prefix; the etcd section is then required', () => {
    const raw = { listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { backends_from: { etcd: PREFIX } } } };
    expect(() => validateConfig(raw, 's')).toThrow(/etcd: missing: a pool has backends_from.etcd/);
    const both = { ...raw, pools: { p: { backends_from: { etcd: PREFIX, srv: '_http._tcp.x.internal' } } }, etcd: { endpoints: ['http://127.0.0.1:2379'] } };
    expect(() => validateConfig(both, 's')).toThrow(/pools.p.backends_from: expected one of srv, etcd, got both/);
    const badUrl = { ...raw, etcd: { endpoints: ['127.0.0.1:2379'] } };
    expect(() => validateConfig(badUrl, 's')).toThrow(/etcd.endpoints\[0\]: expected a client URL/);
    expect(validateConfig({ ...raw, etcd: { endpoints: ['http://127.0.0.1:2379'] } }, 's').etcd).toEqual({ endpoints: ['http://127.0.0.1:2379'], dial_timeout_ms: 5_000, shared_health: null });
  });

  it("a pool's membership sources: addresses written in the file, DNS names, an etcd prefix", () => {
    const pools = {
      mixed: { backends: [{ address: '10.0.0.1:80' }, { address: 'api.internal:80' }], backends_from: { etcd: PREFIX } },
      named: { backends: [{ address: 'api.internal:80' }] },
      plain: { backends: [{ address: '10.0.0.1:80' }] },
    };
    const listeners = Object.fromEntries(Object.keys(pools).map((p, i) => [p, { address: `127.0.0.1:${8000 + i}`, pool: p }]));
    const c = validateConfig({ listeners, pools, etcd: { endpoints: ['http://127.0.0.1:2379'] } }, 's');
    expect(Object.fromEntries(c.pools.map((p) => [p.name, sourcesOf(p)]))).toEqual({ mixed: ['file', 'dns', 'etcd'], named: ['dns'], plain: ['file'] });
  });
});

describe.runIf(HAS_ETCD)('backends from etcd', () => {
  let etcd: EtcdServer;
  const peers: Peer[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
    for (const id of ['a', 'b', 'c', 'd']) peers.push(await tagged(id));
  });
  afterAll(async () => {
    await etcd?.destroy();
    await Promise.all(peers.map((p) => p.close()));
    await stopAll();
  });

  it('an unreachable cluster at start is a ConfigError naming the field and the endpoint', async () => {
    const err = await Switchyard.start(config('http://127.0.0.1:1', '/nowhere/')).then(
      (lb) => lb.close({ drainMs: 0 }).then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues[0]!.path).toBe('pools.web.backends_from.etcd');
    expect((err as ConfigError).issues[0]!.message).toContain('http://127.0.0.1:1');
  });

  it('lists at start, follows puts and deletes, skips bad values, keeps its members through an outage', async () => {
    const [a, b, c, d] = peers as [Peer, Peer, Peer, Peer];
    await etcd.client.put(`${PREFIX}a`).value(a.address);
    await etcd.client.put(`${PREFIX}b`).value(JSON.stringify({ address: b.address, weight: 2 }));
    const logs: { event: string; fields: Record<string, unknown> }[] = [];
    const lb = await Switchyard.start(config(etcd.endpoint), { logger: (event, fields = {}) => logs.push({ event, fields }) });
    try {
      const port = lb.address('front').port;
      const admin = `http://${lb.adminAddress()!.address}`;
      expect(await answering(port, 6)).toEqual(new Set(['a', 'b']));
      expect(Object.fromEntries(lb.config.pools[0]!.backends.map((x) => [x.address, x.weight]))).toEqual({ [a.address]: 1, [b.address]: 2 });

      // A put reaches the pool (watched, not polled); report how long it took.
      const t0 = Date.now();
      await etcd.client.put(`${PREFIX}c`).value(c.address);
      await waitFor(() => lb.config.pools[0]!.backends.some((x) => x.address === c.address), 'the new member');
      console.log(`etcd put → pool: ${Date.now() - t0} ms`);
      expect(await answering(port, 9)).toEqual(new Set(['a', 'b', 'c']));
      const pool = (await (await fetch(`${admin}/api/pools/web`)).json()) as { pool: { membership: { sources: string[]; changed_by: string; changed_at: string } } };
      expect(pool.pool.membership.sources).toEqual(['etcd']);
      expect(pool.pool.membership.changed_by).toBe('etcd');
      expect(Date.parse(pool.pool.membership.changed_at)).toBeGreaterThanOrEqual(t0 - 1000);
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      expect(metrics).toContain('switchyard_pool_membership_source{pool="web",source="etcd"} 1');
      expect(metrics).toMatch(/switchyard_pool_membership_changed_timestamp_seconds\{pool="web"\} \d/);

      // A bad value is reported and changes nothing; a delete removes the member.
      await etcd.client.put(`${PREFIX}bad`).value('not an address');
      await etcd.client.delete().key(`${PREFIX}a`);
      await waitFor(() => !lb.config.pools[0]!.backends.some((x) => x.address === a.address), 'the deleted member to go');
      const bad = logs.find((l) => l.event === 'etcd.bad_value');
      expect(bad?.fields).toMatchObject({ prefix: PREFIX, key: `${PREFIX}bad` });
      expect(String(bad?.fields.error)).toContain('not an address');
      expect(lb.config.pools[0]!.backends.map((x) => x.address).sort()).toEqual([b.address, c.address].sort());

      // Outage: everything that runs keeps running.
      await etcd.kill();
      await waitFor(() => logs.some((l) => l.event === 'etcd.disconnected'), 'the watch to notice the outage');
      expect(await answering(port, 6)).toEqual(new Set(['b', 'c']));
      expect(lb.config.pools[0]!.backends).toHaveLength(2);

      // Back: the watch resumes where it was, and a new member arrives.
      await etcd.start();
      await etcd.client.put(`${PREFIX}d`).value(d.address);
      await waitFor(() => lb.config.pools[0]!.backends.some((x) => x.address === d.address), 'the member put after the outage', 30_000);
      expect(await answering(port, 9)).toEqual(new Set(['b', 'c', 'd']));
      expect(logs.filter((l) => l.event === 'etcd.members').length).toBeGreaterThanOrEqual(3);
    } finally {
      await lb.close({ drainMs: 0 });
    }
  });
});

/** A TCP proxy to `port` that a test can cut (open connections reset, new ones refused) and restore. */
async function cuttableProxy(port: number): Promise<{ port: number; cut(): void; restore(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = net.connect({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

describe.runIf(HAS_ETCD)('a watch etcd cancels', () => {
  let etcd: EtcdServer;
  const peers: Peer[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
    for (const id of ['a', 'b']) peers.push(await tagged(id));
  });
  afterAll(async () => {
    await etcd?.destroy();
    await Promise.all(peers.map((p) => p.close()));
  });

  it('is recovered by listing again when its revision was compacted while the balancer was cut off', async () => {
    const [a, b] = peers as [Peer, Peer];
    const prefix = '/switchyard/pools/compacted/';
    await etcd.client.put(`${prefix}a`).value(a.address);
    const proxy = await cuttableProxy(Number(new URL(etcd.endpoint).port));
    const logs: { event: string; fields: Record<string, unknown> }[] = [];
    const lb = await Switchyard.start(config(`http://127.0.0.1:${proxy.port}`, prefix), { logger: (event, fields = {}) => logs.push({ event, fields }) });
    try {
      const addresses = () => lb.config.pools[0]!.backends.map((x) => x.address);
      expect(addresses()).toEqual([a.address]);
      await waitFor(() => logs.some((l) => l.event === 'etcd.watching'), 'the watch to be established');
      proxy.cut();
      await waitFor(() => logs.some((l) => l.event === 'etcd.disconnected'), 'the watch to lose etcd');
      // Meanwhile: a replaces b, and the history the watch would resume from is compacted away.
      await etcd.client.put(`${prefix}b`).value(b.address);
      const del = await etcd.client.delete().key(`${prefix}a`).exec();
      await run('etcdctl', ['--endpoints', etcd.endpoint, 'compact', del.header.revision]);
      proxy.restore();
      await waitFor(() => JSON.stringify(addresses()) === JSON.stringify([b.address]), 'the members after the compaction', 30_000);
      expect(logs.some((l) => l.event === 'etcd.watch_cancelled')).toBe(true);
      // And the new watch follows changes again.
      await etcd.client.put(`${prefix}a`).value(a.address);
      await waitFor(() => addresses().length === 2, 'a put after the recovery');
    } finally {
      await lb.close({ drainMs: 0 });
      await proxy.close();
    }
  }, 60_000);
});

describe.runIf(HAS_ETCD)('a whole configuration from an etcd key', () => {
  let etcd: EtcdServer;
  const peers: Peer[] = [];
  beforeAll(async () => {
    etcd = await startEtcd();
    for (const id of ['one', 'two']) peers.push(await tagged(id));
  });
  afterAll(async () => {
    await stopAll();
    await etcd?.destroy();
    await Promise.all(peers.map((p) => p.close()));
  });

  const yaml = (backend: string, pool = 'web') =>
    `listeners:\n  front: { address: "127.0.0.1:0", pool: ${pool} }\npools:\n  web:\n    backends:\n      - address: ${backend}\nadmin: { address: "127.0.0.1:0" }\n`;

  it('a missing key is a configuration error (exit 2) naming the key', async () => {
    const cli = startCli(['start', '--etcd', etcd.endpoint, '--etcd-key', '/switchyard/absent']);
    await cli.exited;
    expect(cli.child.exitCode).toBe(2);
    expect(cli.out()).toContain('no key /switchyard/absent in etcd');
  });

  it('starts from the key, applies each new value, and keeps the running one when a value is invalid', async () => {
    const [one, two] = peers as [Peer, Peer];
    const KEY = '/switchyard/config';
    await etcd.client.put(KEY).value(yaml(one.address));
    const cli = startCli(['start', '--etcd', etcd.endpoint, '--etcd-key', KEY]);
    const port = await cli.port('front');
    const admin = String((await waitFor(() => cli.events('admin.started')[0], 'the admin server')).address);
    expect(await answering(port, 2)).toEqual(new Set(['one']));

    await etcd.client.put(KEY).value(yaml(two.address));
    await waitFor(async () => (await answering(port, 1)).has('two'), 'the new value to be applied');
    const applied = (await (await fetch(`http://${admin}/api/config`)).json()) as { source: { kind: string; key: string; revision: number; last_error: unknown } };
    expect(applied.source).toMatchObject({ kind: 'etcd', key: KEY, last_error: null });

    // Invalid: a listener naming a pool that does not exist. Nothing changes; the API says why.
    await etcd.client.put(KEY).value(yaml(one.address, 'nowhere'));
    await waitFor(() => cli.events('config.reload_failed')[0], 'the refusal to be logged');
    const refused = (await (await fetch(`http://${admin}/api/config`)).json()) as { source: { revision: number; last_error: { issues: { path: string }[] } } };
    expect(refused.source.revision).toBe(applied.source.revision);
    expect(refused.source.last_error.issues.map((i) => i.path)).toContain('listeners.front.pool');
    expect(await answering(port, 3)).toEqual(new Set(['two']));

    // A YAML syntax error too.
    await etcd.client.put(KEY).value('listeners: [');
    await waitFor(() => cli.events('config.reload_failed')[1], 'the second refusal');
    expect(await answering(port, 2)).toEqual(new Set(['two']));
    await cli.kill();
  });
});
