/**
 * Policy rules compiled into the route tables (issue 18, "Rules, compiled"): an http listener's
 * rules (deny with a status and body, redirects, source ranges, header changes, tags, a rate
 * class answered 429) before its own routes, driven with curl; a tcp listener's rules on PROXY
 * v2 TLVs, the declared destination port, source ranges, a rate class and the ClientHello's
 * server name, driven with raw sockets and Node's TLS client; errors that name the rule; and a
 * new policy swapped in atomically by `update`.
 */
import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { ConfigError, Switchyard, definePolicy, validateConfig } from '../ts/index.js';
import type { HookFn, HookRequest, PolicyConfig, RouteStats, SwitchyardConfig } from '../ts/index.js';
import { metricsText } from '../ts/admin/metrics.js';
import { curl1, echoed, httpPeer, stoppedAfterEach } from './fixtures/http-peers.js';
import { v2Header } from './fixtures/proxy-peers.js';
import { closedByPeer, connect, readLine, tagged, waitFor, type Peer } from './helpers.js';

const t = stoppedAfterEach();

/** Start a balancer (stopped after the test). */
async function start(config: SwitchyardConfig): Promise<Switchyard> {
  const lb = await Switchyard.start(config);
  t.lbs.push(lb);
  return lb;
}

/** A route's or rule's counters from `lb.stats()`. */
function counters(lb: Switchyard, listener: string, rule: string): RouteStats {
  const r = lb.stats().listeners.find((l) => l.name === listener)?.routes.find((x) => x.name === rule);
  if (!r) throw new Error(`no rule ${rule} on ${listener}`);
  return r;
}

const httpPolicy = (deny: boolean): PolicyConfig =>
  definePolicy({
    rate_classes: { login: { limit: 3, per: '1m' } },
    rules: {
      web: [
        { name: 'scanners', match: { header: { 'user-agent': { regex: '.*sqlmap.*' } } }, ...(deny ? { deny: { status: 403, body: 'go away\n' } } : { pool: 'api' }) },
        { name: 'old-site', match: { host: 'old.example.com' }, redirect: { prefix: 'https://new.example.com', status: 301 } },
        { name: 'internal-remote', match: { path_prefix: '/internal/', source: '10.0.0.0/8' }, deny: true },
        { name: 'internal-local', match: { path_prefix: '/internal/', source: ['127.0.0.0/8', '::1'] }, pool: 'internal', tag: 'ops' },
        { name: 'login', match: { path: '/login', method: 'POST' }, rate_class: 'login', tag: 'auth' },
        { name: 'gold', match: { header: { 'x-tenant': 'gold' } }, pool: 'gold', request_headers: { set: { 'x-tier': 'gold' } } },
      ],
    },
  });

describe('policy rules on an http listener', () => {
  it('deny, redirect, source ranges, header changes, tags and a rate class run in the data plane before the routes; a new policy swaps in atomically', async () => {
    const [web, api, internal, gold] = await Promise.all(['web', 'api', 'internal', 'gold'].map((id) => httpPeer(id)));
    t.peers.push(web!, api!, internal!, gold!);
    const config = (deny: boolean): SwitchyardConfig => ({
      workers: 2,
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http', pool: 'web', routes: [{ match: { path_prefix: '/api/' }, pool: 'api' }], trace_sample: 1 } },
      pools: Object.fromEntries([web!, api!, internal!, gold!].map((p) => [p.id, { backends: [{ address: p.address }] }])),
      policy: httpPolicy(deny),
    });
    const lb = await start(config(true));
    const base = `http://127.0.0.1:${lb.address('web').port}`;

    const denied = await curl1(['-A', 'sqlmap/1.7'], `${base}/api/x`);
    expect([denied.status, denied.body]).toEqual([403, 'go away\n']);
    expect(api!.requests).toBe(0);

    const moved = await curl1(['-H', 'Host: old.example.com'], `${base}/a/b?c=1`);
    expect(moved.status).toBe(301);
    expect(moved.headers.location).toEqual(['https://new.example.com/a/b?c=1']);

    // 127.0.0.1 is not in 10.0.0.0/8: the next rule takes it, to the internal pool.
    expect(echoed(await curl1([], `${base}/internal/status`)).id).toBe('internal');
    const tiered = echoed(await curl1(['-H', 'x-tenant: gold'], `${base}/api/y`));
    expect([tiered.id, tiered.headers['x-tier']]).toEqual(['gold', 'gold']);
    // No rule matches: the listener's own routes decide.
    expect(echoed(await curl1([], `${base}/api/z`)).id).toBe('api');
    expect(echoed(await curl1([], `${base}/other`)).id).toBe('web');

    const logins = [];
    for (let i = 0; i < 4; i++) logins.push(await curl1(['-X', 'POST'], `${base}/login`));
    expect(logins.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(JSON.parse(logins[3]!.body)).toMatchObject({ error: { status: 429, code: 'rate_limited' } });
    expect(Number(logins[3]!.headers['retry-after']?.[0])).toBeGreaterThanOrEqual(1);
    expect(echoed(logins[0]!).id).toBe('web'); // a rule without a pool forwards to the listener's

    expect(counters(lb, 'web', 'scanners')).toMatchObject({ denied: 1, pool: '' });
    expect(counters(lb, 'web', 'old-site')).toMatchObject({ redirected: 1 });
    expect(counters(lb, 'web', 'internal-local')).toMatchObject({ tag: 'ops', pool: 'internal', responses_2xx: 1 });
    expect(counters(lb, 'web', 'login')).toMatchObject({ tag: 'auth', rate_limited: 1, responses_2xx: 3, responses_4xx: 1 });
    expect(counters(lb, 'web', 'internal-remote')).toMatchObject({ denied: 0, responses_2xx: 0 });
    // Sampled decisions are traced, those a rule answered itself too (no pool consulted).
    const traced = lb.traces({ listener: 'web' }).map((x) => [x.rule, x.outcome, x.status, x.pool]);
    expect(traced).toContainEqual(['scanners', 'denied', 403, '']);
    expect(traced).toContainEqual(['old-site', 'redirected', 301, '']);
    expect(traced).toContainEqual(['login', 'rate_limited', 429, '']);
    expect(traced).toContainEqual(['internal-local', 'answered', 200, 'internal']);

    // The same rule name now forwards: one update swaps the whole table.
    await lb.update(config(false));
    const allowed = await curl1(['-A', 'sqlmap/1.7'], `${base}/api/x`);
    expect([allowed.status, echoed(allowed).id]).toEqual([200, 'api']);
  });
});

/** A PROXY v2 header from `src` to `127.0.0.1:dport` carrying `tlvs` (type → text). */
function v2WithTlvs(src: string, dport: number, tlvs: [number, string][]): Buffer {
  const body = Buffer.concat(
    tlvs.map(([type, v]) => {
      const value = Buffer.from(v);
      const head = Buffer.from([type, 0, 0]);
      head.writeUInt16BE(value.length, 1);
      return Buffer.concat([head, value]);
    }),
  );
  const h = v2Header(src, 40000, '127.0.0.1', dport);
  h.writeUInt16BE(12 + body.length, 14);
  return Buffer.concat([h, body]);
}

/** Connect to `port`, send `header`, and read the backend's tag line (or how the connection ended). */
async function through(port: number, header: Buffer): Promise<string> {
  const s = await connect(port);
  try {
    s.write(header);
    // Both listen before the next tick, when the resumed socket starts to flow.
    const ended = closedByPeer(s).then((how) => `closed (${how})`);
    return await Promise.race([readLine(s).catch(() => ended), ended]);
  } finally {
    s.destroy();
  }
}

describe('policy rules on a tcp listener', () => {
  it('route by PROXY v2 TLV and declared port, deny and rate-limit by source, all before the default pool', async () => {
    const peers: Peer[] = await Promise.all(['main', 'A', 'B'].map((id) => tagged(id)));
    try {
      const [main, a, b] = peers as [Peer, Peer, Peer];
      const lb = await start({
        workers: 1,
        listeners: { edge: { address: '127.0.0.1:0', pool: 'main', proxy_protocol: { trusted: ['127.0.0.1'] }, trace_sample: 1 } },
        pools: { main: { backends: [{ address: main.address }] }, tenantA: { backends: [{ address: a.address }] }, tenantB: { backends: [{ address: b.address }] } },
        policy: definePolicy({
          rate_classes: { conn: { limit: 2, per: '1m' }, partner: { limit: 2, per: '1m', by: 'all' } },
          rules: {
            edge: [
              { name: 'blocked', match: { source: '203.0.113.0/24' }, deny: true, tag: 'abuse' },
              { name: 'tenant-a', match: { tlv: { '0xE0': 'tenant-a', authority: { regex: '.*\\.example\\.com' } } }, pool: 'tenantA', tag: 'a' },
              { name: 'tls-port', match: { port: [8443, 9443] }, pool: 'tenantB' },
              { name: 'limited', match: { source: '198.51.100.0/24' }, rate_class: 'conn' },
              { name: 'partner', match: { source: '192.0.2.128/25' }, rate_class: 'partner' },
            ],
          },
        }),
      });
      const port = lb.address('edge').port;
      const AUTH = 0x02;
      expect(await through(port, v2WithTlvs('192.0.2.1', 80, [[0xe0, 'tenant-a'], [AUTH, 'db.example.com']]))).toBe('A');
      // One condition of the rule fails (authority): the default pool.
      expect(await through(port, v2WithTlvs('192.0.2.1', 80, [[0xe0, 'tenant-a'], [AUTH, 'db.example.org']]))).toBe('main');
      expect(await through(port, v2WithTlvs('192.0.2.1', 9443, []))).toBe('B');
      expect(await through(port, v2WithTlvs('203.0.113.9', 9443, [[0xe0, 'tenant-a']]))).toMatch(/^closed/);
      const limited = [];
      for (let i = 0; i < 3; i++) limited.push(await through(port, v2WithTlvs('198.51.100.7', 80, [])));
      expect(limited).toEqual(['main', 'main', expect.stringMatching(/^closed/)]);
      // Another source has its own bucket.
      expect(await through(port, v2WithTlvs('198.51.100.8', 80, []))).toBe('main');
      // `by: all`: one bucket whatever the source.
      const partner = [];
      for (const src of ['192.0.2.130', '192.0.2.131', '192.0.2.132']) partner.push(await through(port, v2WithTlvs(src, 80, [])));
      expect(partner).toEqual(['main', 'main', expect.stringMatching(/^closed/)]);

      expect(counters(lb, 'edge', 'blocked')).toMatchObject({ denied: 1, tag: 'abuse', pool: '' });
      expect(counters(lb, 'edge', 'tenant-a')).toMatchObject({ connections: 1, tag: 'a', pool: 'tenantA' });
      expect(counters(lb, 'edge', 'limited')).toMatchObject({ connections: 3, rate_limited: 1, pool: 'main' });
      expect(b.accepted).toBe(1);
      // Decision traces name the rule that routed each connection (none: the default pool).
      const traced = lb.traces({ listener: 'edge' }).map((x) => [x.rule, x.pool, x.winner]);
      expect(traced).toContainEqual(['tenant-a', 'tenantA', a.address]);
      expect(traced).toContainEqual(['tls-port', 'tenantB', b.address]);
      expect(traced).toContainEqual([null, 'main', main.address]);
      const closed = lb.traces({ listener: 'edge' }).map((x) => [x.rule, x.outcome]);
      expect(closed).toContainEqual(['blocked', 'denied']);
      expect(closed).toContainEqual(['limited', 'rate_limited']);
      expect(metricsText(lb)).toContain('switchyard_rule_actions_total{listener="edge",rule="blocked",tag="abuse",action="denied"} 1');
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });

  it('a rule on the server name makes a plain listener read the ClientHello (passthrough) and route by it', async () => {
    const peers: Peer[] = await Promise.all(['main', 'A'].map((id) => tagged(id)));
    try {
      const [main, a] = peers as [Peer, Peer];
      const lb = await start({
        workers: 1,
        listeners: { tls: { address: '127.0.0.1:0', pool: 'main' } },
        pools: { main: { backends: [{ address: main.address }] }, a: { backends: [{ address: a.address }] } },
        policy: { rules: { tls: [{ name: 'a-names', match: { sni: ['a.example.com', '*.a.example.net'] }, pool: 'a' }] } },
      });
      const port = lb.address('tls').port;
      /** Open a TLS connection with `servername` and wait until the backend has it (it answers no TLS). */
      const hello = async (servername: string): Promise<void> => {
        const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
        s.on('error', () => {});
        await new Promise((resolve) => s.once('close', resolve));
      };
      await hello('x.a.example.net');
      await hello('a.example.com');
      await hello('b.example.com');
      await waitFor(() => a.accepted === 2 && main.accepted === 1, 'the ClientHellos at their backends (a 2, main 1)');
      expect(counters(lb, 'tls', 'a-names')).toMatchObject({ connections: 2 });
      // A client that sends no ClientHello is not TLS: closed, as on a passthrough listener.
      const s = await connect(port);
      s.end('GET / HTTP/1.0\r\n\r\n');
      expect(await closedByPeer(s)).toBeDefined();
      expect(main.accepted + a.accepted).toBe(3);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });
});

describe('a tcp rule with a hook', () => {
  it('only connections its rule matches reach the hook, which picks a pool, closes, or falls back when it throws or is slow', async () => {
    const peers: Peer[] = await Promise.all(['main', 'A', 'fb'].map((id) => tagged(id)));
    try {
      const [main, a, fb] = peers as [Peer, Peer, Peer];
      const seen: HookRequest[] = [];
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      const router: HookFn = async (req) => {
        seen.push(req);
        if (req.client.startsWith('192.0.2.1:')) return { pool: 'a' };
        if (req.client.startsWith('192.0.2.2:')) return { deny: 403 };
        if (req.client.startsWith('192.0.2.3:')) throw new Error('tenant map unavailable');
        if (req.client.startsWith('192.0.2.5:')) return { pool: 'other' }; // a pool edge does not route to
        await held; // 192.0.2.4: slower than its budget
        return { pool: 'a' };
      };
      const lb = await Switchyard.start(
        {
          workers: 1,
          listeners: { edge: { address: '127.0.0.1:0', pool: 'main', proxy_protocol: { trusted: ['127.0.0.1'] } } },
          pools: {
            main: { backends: [{ address: main.address }] },
            a: { backends: [{ address: a.address }] },
            fb: { backends: [{ address: fb.address }] },
            other: { backends: [{ address: a.address }] },
          },
          // A hook may choose a pool the listener routes to: its own, a rule's, an SNI route's, a fallback's.
          policy: {
            rules: {
              edge: [
                { name: 'tenants', match: { source: '192.0.2.0/24' }, hook: { name: 'router', budget: '100ms', fallback: { pool: 'fb' } } },
                { name: 'partner', match: { source: '203.0.113.0/24' }, pool: 'a' },
              ],
            },
          },
        },
        { hooks: { router } },
      );
      t.lbs.push(lb);
      const port = lb.address('edge').port;
      try {
        expect(await through(port, v2WithTlvs('192.0.2.1', 443, []))).toBe('A');
        expect(await through(port, v2WithTlvs('192.0.2.2', 443, []))).toMatch(/^closed/);
        expect(await through(port, v2WithTlvs('192.0.2.3', 443, []))).toBe('fb');
        const started = Date.now();
        expect(await through(port, v2WithTlvs('192.0.2.4', 443, []))).toBe('fb');
        const waited = Date.now() - started;
        expect(await through(port, v2WithTlvs('192.0.2.5', 443, []))).toBe('fb');
        // Not the rule's: no hook call.
        expect(await through(port, v2WithTlvs('198.51.100.1', 443, []))).toBe('main');
        expect(seen).toHaveLength(5);
        expect(seen.map((r) => [r.rule, r.client.split(':')[0], r.dstPort])).toEqual([
          ['tenants', '192.0.2.1', 443],
          ['tenants', '192.0.2.2', 443],
          ['tenants', '192.0.2.3', 443],
          ['tenants', '192.0.2.4', 443],
          ['tenants', '192.0.2.5', 443],
        ]);
        expect(lb.stats().hooks.find((h) => h.name === 'router')).toMatchObject({ calls: 5, answered: 2, error: 1, timeout: 1, invalid: 1 });
        expect(counters(lb, 'edge', 'tenants')).toMatchObject({ connections: 4, denied: 1 });
        process.stderr.write(`tcp hook over its 100 ms budget: fallback after ${waited} ms\n`);
      } finally {
        release();
      }
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });
});

describe('policy rules: errors name the rule', () => {
  const base = (policy: unknown, protocol: 'tcp' | 'http' | 'udp' = 'http'): unknown => ({
    listeners: { web: { address: '127.0.0.1:0', protocol, pool: 'web' }, edge: { address: '127.0.0.1:0', pool: 'web' } },
    pools: { web: { backends: [{ address: '127.0.0.1:1' }] } },
    policy,
  });
  const issues = (raw: unknown): string[] => {
    try {
      validateConfig(raw, 'policy.ts');
    } catch (e) {
      if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
      throw e;
    }
    return [];
  };

  it.each([
    [{ rules: { web: [{ name: 'x', pool: 'nope' }] } }, 'policy.rules.web[0].pool: unknown pool "nope"'],
    [{ rules: { web: [{ match: { sni: 'a.example.com' }, deny: true }] } }, 'policy.rules.web[0].match.sni: sni is a condition of tcp listeners'],
    [{ rules: { edge: [{ match: { path: '/x' }, deny: true }] } }, 'policy.rules.edge[0].match.path: path is a condition of HTTP requests; this listener is tcp'],
    [{ rules: { edge: [{ redirect: { scheme: 'https' } }] } }, 'policy.rules.edge[0].redirect: redirect applies to HTTP requests'],
    [{ rules: { edge: [{ deny: 403 }] } }, 'policy.rules.edge[0].deny: expected true (a tcp listener closes'],
    [{ rules: { web: [{ rate_class: 'fast' }] } }, 'policy.rules.web[0].rate_class: unknown rate class "fast"'],
    [{ rules: { nowhere: [] } }, 'policy.rules.nowhere: no listener named "nowhere"'],
    [{ rules: { web: [{ match: { source: '10.0.0.0/33' }, deny: true }] } }, 'policy.rules.web[0].match.source[0]: prefix length of "10.0.0.0/33" must be 0..32'],
    [{ rules: { edge: [{ match: { tlv: { '0x20': 'x' } }, deny: true }] } }, 'policy.rules.edge[0].match.tlv.0x20: type 0x20 (SSL) is not a text value'],
    [{ rules: { web: [{ redirect: { location: 'https://x/', prefix: 'https://y' } }] } }, 'policy.rules.web[0].redirect: give exactly one of location, prefix, scheme'],
    [{ rules: { web: [{ deny: true }, { deny: 404 }] } }, 'policy.rules.web[1]: never matches: policy.rules.web[0] before it matches every request'],
    [{ rate_classes: { fast: { per: '1s' } } }, 'policy.rate_classes.fast.limit: missing'],
  ])('%j', (policy, expected) => {
    expect(issues(base(policy)).join('\n')).toContain(expected);
  });

  it('a rule without conditions before the listener\'s default pool is fine (redirect everything), and errors of its hash key name the rule', () => {
    const raw = (rules: unknown) => ({ listeners: { web: { address: '127.0.0.1:0', protocol: 'http', pool: 'web' } }, pools: { web: { backends: [{ address: '127.0.0.1:1' }] } }, policy: { rules: { web: rules } } });
    expect(issues(raw([{ name: 'to-https', redirect: { scheme: 'https', status: 308 } }]))).toEqual([]);
    expect(issues(raw([{ name: 'keyed', match: { path: '/x' }, hash_key: 'header:x-user' }])).join('\n')).toContain('policy.rules.web[0].hash_key: applies only to pools with');
    const bare = { listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } }, pools: { web: { backends: [{ address: '127.0.0.1:1' }] } }, policy: { rules: { web: [] } } };
    expect(issues(bare).join('\n')).toContain('listeners.web.routes: missing');
  });

  it('udp listeners have no rules', () => {
    const raw = { listeners: { dns: { address: '127.0.0.1:0', protocol: 'udp', pool: 'p' } }, pools: { p: { backends: [{ address: '127.0.0.1:53' }] } }, policy: { rules: { dns: [{ deny: true }] } } };
    expect(issues(raw).join('\n')).toContain('policy.rules.dns: rules are for tcp and http listeners');
  });
});
