// The `udp` active check: a datagram from a connected socket and the reply expected, against
// dnsmasq (a DNS query for test.local written byte by byte as the probe), a killed dnsmasq (the
// ICMP port unreachable fails the check at once: "port unreachable") and a UDP server that never
// answers ("timeout"); its configuration; and a udp listener whose pool has the check: a backend
// the check marks down gets no new flows. Polls with deadlines; never sleeps as synchronisation.
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, Switchyard, validateConfig, type ResolvedHealthCheck } from '../ts/index.js';
import { probe } from '../ts/health/probes.js';
import { DNSMASQ, DNS_QUERY_HEX, HAS_DIG, dig, dnsBackend, type DnsBackend } from './fixtures/udp-peers.js';
import { waitFor } from './helpers.js';

/** Everything a test started, stopped after it even when it fails. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function dns(answer: string): Promise<DnsBackend> {
  const b = await dnsBackend(answer);
  cleanups.push(() => b.kill());
  return b;
}

/** `10.0.0.1` as the 4 bytes of an A record, in hex. */
const aRecordHex = (ip: string) => Buffer.from(ip.split('.').map(Number)).toString('hex');

/** Validate `pools.p` with `pool` (and a udp listener in front); throws ConfigError. */
function validatePool(pool: object) {
  return validateConfig({ listeners: { l: { address: '127.0.0.1:0', protocol: 'udp', pool: 'p' } }, pools: { p: pool } }, 'udp-health.yaml');
}

/** The resolved check of a pool with `check`. */
function resolved(check: object): ResolvedHealthCheck {
  return validatePool({ health_check: check, backends: [{ address: '127.0.0.1:1' }] }).pools[0]!.health_check!;
}

function issues(pool: object): { path: string; message: string }[] {
  try {
    validatePool(pool);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
}

const dnsCheck = (over: object = {}) => ({ type: 'udp', interval: '5s', timeout: '2s', udp: { send_hex: DNS_QUERY_HEX, ...over } });

describe.skipIf(!DNSMASQ || !HAS_DIG)(`udp checks against dnsmasq${DNSMASQ && HAS_DIG ? '' : ' (skipped: needs dnsmasq and dig)'}`, () => {
  it('a DNS query as the probe: up when the reply holds the expected bytes; a killed server is down with "port unreachable"', async () => {
    const b = await dns('10.0.0.1');
    expect(await probe(b.address, resolved(dnsCheck({ expect_hex: aRecordHex('10.0.0.1') })))).toMatchObject({ ok: true, reason: expect.stringMatching(/^reply, \d+ bytes$/) });
    // Hex with spaces between bytes; text expected: the question's labels come back in the reply.
    const spaced = DNS_QUERY_HEX.replace(/(..)/g, '$1 ');
    expect(await probe(b.address, resolved(dnsCheck({ send_hex: spaced, expect: 'local' })))).toMatchObject({ ok: true });
    expect(await probe(b.address, resolved(dnsCheck()))).toMatchObject({ ok: true }); // any reply
    const wrong = await probe(b.address, resolved(dnsCheck({ expect_hex: aRecordHex('10.0.0.9') })));
    expect(wrong).toMatchObject({ ok: false, reason: expect.stringMatching(/^reply of \d+ bytes lacks hex 0a000009$/) });
    expect(await probe(b.address, resolved(dnsCheck({ expect: 'nowhere.example' })))).toMatchObject({ ok: false, reason: expect.stringMatching(/lacks "nowhere\.example"$/) });

    await b.kill();
    // Not a timeout: the ICMP error arrives long before the 2 s are up.
    expect(await probe(b.address, resolved(dnsCheck()))).toMatchObject({ ok: false, reason: 'port unreachable' });
  });

  it('a UDP server that never answers is down with a timeout; it did get the probe', async () => {
    const silent = dgram.createSocket('udp4');
    cleanups.push(() => new Promise<void>((r) => silent.close(() => r())));
    const got: Buffer[] = [];
    silent.on('message', (m) => got.push(m));
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    const address = `127.0.0.1:${silent.address().port}`;
    const r = await probe(address, resolved({ type: 'udp', interval: '5s', timeout: '300ms', udp: { send: 'ping?', expect: 'pong' } }));
    expect(r).toMatchObject({ ok: false, reason: 'timeout after 300 ms' });
    expect(got.map((m) => m.toString())).toEqual(['ping?']);
  });

  it('through a udp listener: a backend the check marks down gets no new flows', async () => {
    const [a, b] = await Promise.all([dns('10.0.0.1'), dns('10.0.0.2')]);
    const lb = await Switchyard.start({
      workers: 2,
      listeners: { dns: { address: '127.0.0.1:0', protocol: 'udp', pool: 'dns', udp: { responses: 1 } } },
      pools: {
        dns: {
          algorithm: 'round_robin',
          // Passive detection off: only the active check may take a backend out here.
          passive: { consecutive_failures: 0 },
          health_check: { type: 'udp', interval: '200ms', timeout: '200ms', rise: 1, fall: 2, udp: { send_hex: DNS_QUERY_HEX, expect: 'test' } },
          backends: [{ address: a!.address }, { address: b!.address }],
        },
      },
    });
    cleanups.push(() => lb.close({ drainMs: 0 }));
    const health = () => lb.stats().pools[0]!.backends.map((x) => x.health);
    await waitFor(() => health().join() === 'up,up', 'both backends checked up');
    const port = lb.address('dns').port;
    const before = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].map((c) => dig(port, c)));
    expect(new Set(before.map((r) => r.answer))).toEqual(new Set(['10.0.0.1', '10.0.0.2']));

    await b!.kill();
    await waitFor(() => health().join() === 'up,down', 'b checked down');
    expect(lb.health().find((h) => h.address === b!.address)!.last).toMatchObject({ ok: false, reason: 'port unreachable' });
    const bTotal = lb.stats().pools[0]!.backends[1]!.total;
    // Every query (a flow of its own: responses: 1) is answered at once, by a.
    const clients = Array.from({ length: 20 }, (_, i) => `127.0.0.${i + 2}`);
    const after = await Promise.all(clients.map((c) => dig(port, c)));
    expect(after.map((r) => r.answer)).toEqual(clients.map(() => '10.0.0.1'));
    expect(lb.stats().pools[0]!.backends[1]!.total).toBe(bTotal);
    expect(lb.stats().listeners[0]!.udp!.backend_unreachable).toBe(0);
  });
});

describe('udp check configuration', () => {
  it('resolves send/expect to bytes; a backend can replace the pool\'s datagram', () => {
    expect(resolved({ type: 'udp', udp: { send: 'ping' } })).toMatchObject({ type: 'udp', udp: { send_hex: '70696e67', expect_hex: null }, http: null, grpc: null, tls: null });
    expect(resolved({ type: 'udp', udp: { send_hex: '00 FF', expect_hex: 'aB' } }).udp).toEqual({ send_hex: '00ff', expect_hex: 'ab' });
    // (A tcp check belongs to a pool of a tcp listener.)
    const tcp = validateConfig({ listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { health_check: { type: 'tcp' }, backends: [{ address: '127.0.0.1:1' }] } } }, 'tcp.yaml');
    expect(tcp.pools[0]!.health_check!.udp).toBeNull();
    const cfg = validatePool({ health_check: { type: 'udp', udp: { send: 'ping', expect: 'pong' } }, backends: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:2', health_check: { udp: { send_hex: '01' } } }] });
    expect(cfg.pools[0]!.backends.map((b) => b.health_check!.udp)).toEqual([
      { send_hex: '70696e67', expect_hex: '706f6e67' },
      { send_hex: '01', expect_hex: '706f6e67' },
    ]);
  });

  it('names the field of every mistake', () => {
    const one = (check: object) => issues({ health_check: check, backends: [{ address: '127.0.0.1:1' }] });
    const at = (found: { path: string; message: string }[], path: string) => found.filter((i) => i.path === path).map((i) => i.message);
    const p = 'pools.p.health_check';
    expect(at(one({ type: 'udp' }), `${p}.udp.send`)).toEqual(['type udp needs the datagram to send: udp.send (text) or udp.send_hex (bytes)']);
    expect(at(one({ type: 'udp', udp: { expect: 'x' } }), `${p}.udp.send`)).toHaveLength(1);
    expect(at(one({ type: 'udp', udp: { send: 'a', send_hex: '61' } }), `${p}.udp.send_hex`)).toEqual(['give send or send_hex, not both']);
    const badHex = one({ type: 'udp', udp: { send_hex: 'abc' } });
    expect(at(badHex, `${p}.udp.send_hex`)[0]).toMatch(/hex bytes .* got "abc"/);
    expect(at(badHex, `${p}.udp.send`)).toEqual([]); // the hex is the problem, not a missing datagram
    expect(at(one({ type: 'udp', udp: { send: 'a', expect_hex: 'zz' } }), `${p}.udp.expect_hex`)[0]).toMatch(/got "zz"/);
    expect(at(one({ type: 'udp', udp: { send: 'x'.repeat(65_508) } }), `${p}.udp.send`)).toEqual(['at most 65507 bytes (one datagram), got 65508']);
    expect(at(one({ type: 'udp', udp: { send: '' } }), `${p}.udp.send`)[0]).toMatch(/non-empty/);
    expect(at(one({ type: 'udp', udp: { send: 'a', colour: 1 } }), `${p}.udp.colour`)[0]).toMatch(/unknown key "colour"/);
    expect(at(one({ type: 'tcp', udp: { send: 'a' } }), `${p}.udp`)).toEqual(['applies only to type udp, but the type is "tcp"']);
    expect(at(one({ type: 'udp', udp: { send: 'a' }, tls: { verify: false } }), `${p}.tls`)).toHaveLength(1);
  });
});
