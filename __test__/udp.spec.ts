// UDP listeners (`protocol: udp`) with real peers: two dnsmasq DNS servers on loopback ports,
// each answering test.local with its own address (so an answer names the backend), and dig as
// the client from chosen source addresses 127.0.0.2..21 (dig drops a reply from any other
// address than the one it asked, so every answer also proves the reply came from the
// listener's address). Stickiness and spread, one query per flow, a backend whose port closes,
// flow idle timeout, max flows, bad datagrams, config errors and /metrics.
import dgram from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, Switchyard, validateConfig, type SwitchyardConfig } from '../ts/index.js';
import { DNSMASQ, DNS_QUERY_HEX, HAS_DIG, dig, dnsBackend, type DnsBackend } from './fixtures/udp-peers.js';
import { refusedPort, tally, waitFor } from './helpers.js';
import { parseExposition, promtoolCheckMetrics, sample } from './prometheus.js';

/** The 20 client source addresses. */
const CLIENTS = Array.from({ length: 20 }, (_, i) => `127.0.0.${i + 2}`);

let backends: DnsBackend[] = [];
const balancers: Switchyard[] = [];

beforeAll(async () => {
  if (!DNSMASQ || !HAS_DIG) return;
  backends = await Promise.all([dnsBackend('10.0.0.1'), dnsBackend('10.0.0.2')]);
});

afterEach(async () => {
  await Promise.all(balancers.splice(0).map((lb) => lb.close({ drainMs: 0 })));
});

afterAll(async () => {
  await Promise.all(backends.map((b) => b.kill()));
});

/** Start a balancer (closed after the test). */
async function start(config: SwitchyardConfig): Promise<Switchyard> {
  const lb = await Switchyard.start(config);
  balancers.push(lb);
  return lb;
}

/** One udp listener `dns` (plus `extra` listeners) in front of `pool`'s backends. */
function udpConfig(pool: SwitchyardConfig['pools'][string], listener: Partial<SwitchyardConfig['listeners'][string]> = {}): SwitchyardConfig {
  return {
    workers: 2,
    listeners: { dns: { address: '127.0.0.1:0', protocol: 'udp', pool: 'dns', ...listener } },
    pools: { dns: pool },
  };
}

const udpStats = (lb: Switchyard, listener = 'dns') => lb.stats().listeners.find((l) => l.name === listener)!.udp!;
const backendTotal = (lb: Switchyard, address: string) => lb.stats().pools.find((p) => p.name === 'dns')!.backends.find((b) => b.address === address)!.total;

/** A source address with a fixed port (`ip#port`): every query from it belongs to one flow. */
async function fixedSource(ip: string): Promise<string> {
  return `${ip}#${await refusedPort()}`;
}

/** Query until an answer comes (each try waits 1 s); returns it. */
async function answered(port: number, from: string): Promise<string> {
  return waitFor(async () => (await dig(port, from, 1)).answer, `an answer for ${from}`, 30_000);
}

describe.skipIf(!DNSMASQ || !HAS_DIG)(`UDP listeners${DNSMASQ && HAS_DIG ? '' : ' (skipped: needs dnsmasq and dig; Debian packages dnsmasq-base, bind9-dnsutils)'}`, () => {
  it('ip_hash keeps each of 20 clients on one backend over several queries and spreads them over both; replies come from the listener', async () => {
    const lb = await start(udpConfig({ algorithm: 'ip_hash', backends: backends.map((b) => ({ address: b.address })) }));
    const port = lb.address('dns').port;
    const answers = new Map<string, string[]>(CLIENTS.map((c) => [c, []]));
    for (let round = 0; round < 3; round++) {
      // Each dig has its own source port: a new flow every time, pinned by the client's address alone.
      const got = await Promise.all(CLIENTS.map((c) => dig(port, c)));
      got.forEach((r, i) => answers.get(CLIENTS[i]!)!.push(r.answer));
    }
    for (const [client, list] of answers) {
      expect(list, client).toHaveLength(3);
      expect(['10.0.0.1', '10.0.0.2'], `${client}: ${list.join(', ')}`).toContain(list[0]);
      expect(new Set(list).size, `${client} moved between backends: ${list.join(', ')}`).toBe(1);
    }
    const spread = tally([...answers.values()].map((l) => l[0]!));
    expect(Object.keys(spread).sort(), JSON.stringify(spread)).toEqual(['10.0.0.1', '10.0.0.2']);
    const u = udpStats(lb);
    expect(u.datagrams_in).toBe(60);
    expect(u.datagrams_out).toBe(60);
    expect(u.bytes_in).toBeGreaterThan(60 * 20);
    // Every flow is counted on the backend it was pinned to.
    expect(backendTotal(lb, backends[0]!.address) + backendTotal(lb, backends[1]!.address)).toBe(u.flows_created);
    expect(u.flows_created).toBeGreaterThanOrEqual(58); // dig may reuse a source port across rounds (then the flow is reused)
  });

  it('udp.responses: 1 with round robin balances each query of one client on its own; without it the flow stays put', async () => {
    const pool = { algorithm: 'round_robin' as const, backends: backends.map((b) => ({ address: b.address })) };
    const lb = await start({
      workers: 2,
      listeners: {
        per_query: { address: '127.0.0.1:0', protocol: 'udp', pool: 'dns', udp: { responses: 1 } },
        pinned: { address: '127.0.0.1:0', protocol: 'udp', pool: 'dns' },
      },
      pools: { dns: pool },
    });
    // A fixed source port: without responses: 1 every query would ride the same flow.
    const from = await fixedSource('127.0.0.2');
    const perQuery: string[] = [];
    for (let i = 0; i < 6; i++) perQuery.push((await dig(lb.address('per_query').port, from)).answer);
    for (let i = 1; i < perQuery.length; i++) expect(perQuery[i], perQuery.join(', ')).not.toBe(perQuery[i - 1]);
    expect(new Set(perQuery)).toEqual(new Set(['10.0.0.1', '10.0.0.2']));
    // The last answered flow ends at the next sweep.
    await waitFor(() => udpStats(lb, 'per_query').flows_answered === 6, 'six answered flows');
    expect(udpStats(lb, 'per_query').flows_created).toBe(6);

    const pinnedFrom = await fixedSource('127.0.0.3');
    const pinned: string[] = [];
    for (let i = 0; i < 4; i++) pinned.push((await dig(lb.address('pinned').port, pinnedFrom)).answer);
    expect(pinned[0]).toMatch(/^10\.0\.0\.[12]$/);
    expect(new Set(pinned).size, pinned.join(', ')).toBe(1);
    expect(udpStats(lb, 'pinned').flows_created).toBe(1);
    expect(udpStats(lb, 'pinned').flows_active).toBe(1);
  });

  it('a backend whose port closes stops getting new flows, and its clients move to the other backend', async () => {
    // Its own pair: one of them is killed.
    const pair = await Promise.all([dnsBackend('10.0.0.1'), dnsBackend('10.0.0.2')]);
    try {
      // ICMP port unreachable feeds passive detection (3 in a row eject); a long ejection keeps the
      // dead backend out for the whole test, however slow the machine.
      const passive = { ejection_time: '5m', max_ejection_time: '5m' } as const;
      const lb = await start(udpConfig({ algorithm: 'ip_hash', passive, backends: pair.map((b) => ({ address: b.address })) }));
      const port = lb.address('dns').port;
      // Fixed source ports: each client keeps one flow, so moving is seen per flow.
      const sources = await Promise.all(CLIENTS.map(fixedSource));
      const before = await Promise.all(sources.map((s) => dig(port, s)));
      const on = tally(before.map((r) => r.answer));
      expect(Object.keys(on).sort(), JSON.stringify(on)).toEqual(['10.0.0.1', '10.0.0.2']);

      const [alive, dead] = pair;
      await dead!.kill();
      // The first query of a client on the dead backend may be lost (the ICMP port unreachable
      // comes after it); the next ones are answered by the other backend.
      const after = await Promise.all(sources.map((s) => answered(port, s)));
      expect(new Set(after), after.join(', ')).toEqual(new Set([alive!.answer]));
      // Every flow pinned to the dead backend moved (some more than once, while passive detection
      // had not yet ejected it); the ICMP errors are counted.
      const moved = on[dead!.answer]!;
      const u = await waitFor(() => {
        const s = udpStats(lb);
        return s.backend_unreachable >= 1 && s.flows_moved >= moved ? s : null;
      }, `${moved} moved flows and the unreachable backend counted`);
      expect(u.backend_unreachable).toBeLessThanOrEqual(u.flows_moved);

      // New flows (a new source port per query) no longer go to the dead backend.
      const deadTotal = backendTotal(lb, dead!.address);
      const fresh = await Promise.all(CLIENTS.map((c) => dig(port, c)));
      expect(new Set(fresh.map((r) => r.answer))).toEqual(new Set([alive!.answer]));
      expect(backendTotal(lb, dead!.address)).toBe(deadTotal);
    } finally {
      await Promise.all(pair.map((b) => b.kill()));
    }
  });

  it('a quiet flow ends after flow_idle_timeout; past max_flows a new client gets no answer and is counted', async () => {
    const pool = { backends: backends.map((b) => ({ address: b.address })) };
    const lb = await start({
      workers: 2,
      listeners: {
        idle: { address: '127.0.0.1:0', protocol: 'udp', pool: 'dns', udp: { flow_idle_timeout: '300ms' } },
        capped: { address: '127.0.0.1:0', protocol: 'udp', pool: 'dns', udp: { max_flows: 2 } },
      },
      pools: { dns: pool },
    });
    const from = await fixedSource('127.0.0.2');
    expect((await dig(lb.address('idle').port, from)).answer).toMatch(/^10\.0\.0\.[12]$/);
    expect(udpStats(lb, 'idle').flows_created).toBe(1);
    await waitFor(() => udpStats(lb, 'idle').flows_active === 0, 'the idle flow ending');
    expect(udpStats(lb, 'idle').flows_expired).toBe(1);
    // The same client address and port again: a new flow, the old one is gone.
    expect((await dig(lb.address('idle').port, from)).answer).toMatch(/^10\.0\.0\.[12]$/);
    expect(udpStats(lb, 'idle').flows_created).toBe(2);

    const capped = lb.address('capped').port;
    const first = await Promise.all(['127.0.0.3', '127.0.0.4'].map(fixedSource));
    for (const s of first) expect((await dig(capped, s)).answer).toMatch(/^10\.0\.0\.[12]$/);
    expect(udpStats(lb, 'capped').flows_active).toBe(2);
    const third = await dig(capped, '127.0.0.5', 1);
    expect(third).toEqual({ code: 9, answer: '' }); // 9: no reply
    expect(udpStats(lb, 'capped').dropped_max_flows).toBe(1);
    // The two flows still carry their clients' queries.
    for (const s of first) expect((await dig(capped, s)).answer).toMatch(/^10\.0\.0\.[12]$/);
    expect(udpStats(lb, 'capped').flows_created).toBe(2);
  });

  it('drops and counts empty and oversized datagrams, and keeps serving', async () => {
    const lb = await start(udpConfig({ backends: backends.map((b) => ({ address: b.address })) }, { udp: { max_datagram_size: 512 } }));
    const port = lb.address('dns').port;
    const sock = dgram.createSocket('udp4');
    try {
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      const replies: { msg: Buffer; from: dgram.RemoteInfo }[] = [];
      sock.on('message', (msg, from) => replies.push({ msg, from }));
      const sendTo = (b: Buffer) => new Promise<void>((resolve, reject) => sock.send(b, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
      await sendTo(Buffer.alloc(0));
      await sendTo(Buffer.alloc(513, 1));
      await sendTo(Buffer.alloc(65_507, 2));
      await waitFor(() => udpStats(lb).dropped_empty === 1 && udpStats(lb).dropped_oversized === 2, 'the bad datagrams counted');
      expect(udpStats(lb)).toMatchObject({ datagrams_in: 3, flows_created: 0, datagrams_out: 0 });

      // A real query from the same socket: answered, from the listener's own address and port.
      await sendTo(Buffer.from(DNS_QUERY_HEX, 'hex'));
      const reply = await waitFor(() => replies[0], 'a DNS reply');
      expect(reply.from).toMatchObject({ address: '127.0.0.1', port });
      expect(reply.msg.readUInt16BE(0)).toBe(0x1234); // the query's id
      expect(reply.msg.readUInt16BE(6)).toBe(1); // one answer
      expect(['10.0.0.1', '10.0.0.2']).toContain([...reply.msg.subarray(-4)].join('.'));
      expect(replies).toHaveLength(1);
      expect((await dig(port, '127.0.0.2')).answer).toMatch(/^10\.0\.0\.[12]$/);
    } finally {
      sock.close();
    }
  });

  it('/metrics carries the switchyard_udp_* families of a udp listener, and promtool accepts them', async () => {
    const lb = await start({ ...udpConfig({ backends: backends.map((b) => ({ address: b.address })) }), admin: { address: '127.0.0.1:0' } });
    const port = lb.address('dns').port;
    for (const c of CLIENTS.slice(0, 3)) expect((await dig(port, c)).answer).toMatch(/^10\.0\.0\.[12]$/);
    const r = await fetch(`http://${lb.adminAddress()!.address}/metrics`);
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' });
    const samples = parseExposition(text);
    const u = udpStats(lb);
    const at = { listener: 'dns' };
    expect(sample(samples, 'switchyard_udp_datagrams_total', { ...at, direction: 'in' })).toBe(3);
    expect(sample(samples, 'switchyard_udp_datagrams_total', { ...at, direction: 'out' })).toBe(3);
    expect(sample(samples, 'switchyard_udp_bytes_total', { ...at, direction: 'in' })).toBe(u.bytes_in);
    expect(sample(samples, 'switchyard_udp_bytes_total', { ...at, direction: 'out' })).toBe(u.bytes_out);
    expect(sample(samples, 'switchyard_udp_flows_total', { ...at, event: 'created' })).toBe(3);
    expect(sample(samples, 'switchyard_udp_flows_active', at)).toBe(u.flows_active);
    for (const reason of ['empty', 'oversized', 'max_flows', 'no_backend', 'reply']) expect(sample(samples, 'switchyard_udp_dropped_total', { ...at, reason })).toBe(0);
    expect(sample(samples, 'switchyard_udp_backend_unreachable_total', at)).toBe(0);
  });
});

describe('UDP config errors', () => {
  /** Every issue of validating `listeners.dns` = `listener` (and a tcp listener `web` when given). */
  function issues(listener: Record<string, unknown>, web?: Record<string, unknown>): ConfigError['issues'] {
    const cfg = {
      listeners: { dns: { address: '127.0.0.1:5353', protocol: 'udp', pool: 'dns', ...listener }, ...(web ? { web: { address: '127.0.0.1:8080', pool: 'dns', ...web } } : {}) },
      pools: { dns: { backends: [{ address: '127.0.0.1:53' }] } },
    };
    try {
      validateConfig(cfg, 'udp.yaml');
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.issues;
    }
  }
  const expectIssue = (all: ConfigError['issues'], path: string, ...parts: string[]) => {
    const issue = all.find((i) => i.path === path);
    expect(issue, `no issue at ${path}; got ${JSON.stringify(all)}`).toBeDefined();
    for (const p of parts) expect(issue!.message).toContain(p);
  };

  it('names the field: tls or routes on a udp listener, a udp section on a tcp one, max_datagram_size out of range', async () => {
    expect(issues({})).toEqual([]);
    expectIssue(issues({ tls: { certificates: [{ cert: 'c.pem', key: 'k.pem' }] } }), 'listeners.dns.tls', 'not for protocol: udp');
    expectIssue(issues({ routes: [{ match: { path_prefix: '/' }, pool: 'dns' }] }), 'listeners.dns.routes', 'not for protocol: udp');
    expectIssue(issues({}, { udp: { max_flows: 10 } }), 'listeners.web.udp', 'only for protocol: udp', 'tcp');
    expectIssue(issues({ udp: { max_datagram_size: 70_000 } }), 'listeners.dns.udp.max_datagram_size', '65507', '70000');
    expectIssue(issues({ udp: { max_datagram_size: 0 } }), 'listeners.dns.udp.max_datagram_size', 'got 0');
    expectIssue(issues({ udp: { max_flows: 0 } }), 'listeners.dns.udp.max_flows');
    expectIssue(issues({ udp: { flow_idle_timeout: 'soon' } }), 'listeners.dns.udp.flow_idle_timeout', 'soon');
    // And through start: the same error, nothing bound.
    await expect(Switchyard.start({ listeners: { dns: { address: '127.0.0.1:0', protocol: 'udp', pool: 'dns', udp: { max_datagram_size: 70_000 } } }, pools: { dns: { backends: [{ address: '127.0.0.1:53' }] } } })).rejects.toThrow(
      /listeners\.dns\.udp\.max_datagram_size/,
    );
  });
});
