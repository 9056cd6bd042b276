/**
 * A pool's health checks match its listeners' transport: udp listeners' pools take only udp
 * checks (a tcp connect says nothing about a UDP service), and udp checks only go there.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../ts/errors.js';
import { validateConfig } from '../ts/config/validate.js';

function issues(raw: unknown): string[] {
  try {
    validateConfig(raw, 's');
    return [];
  } catch (e) {
    return (e as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
}

const dnsCheck = { type: 'udp', udp: { send_hex: '00', expect_hex: '00' } };

describe('udp health checks and listeners', () => {
  it('refuses a non-udp check on a pool of a udp listener, naming the pool', () => {
    const cfg = { listeners: { dns: { address: '127.0.0.1:5353', protocol: 'udp', pool: 'dns' } }, pools: { dns: { health_check: {}, backends: [{ address: '127.0.0.1:53' }] } } };
    expect(issues(cfg)).toEqual(['pools.dns.health_check.type: pool "dns" serves a udp listener: its checks must be type udp (a datagram and the reply expected), not "tcp"']);
  });

  it('refuses a udp check on a pool of a tcp listener, and accepts it on a udp one', () => {
    const tcp = { listeners: { web: { address: '127.0.0.1:8080', pool: 'web' } }, pools: { web: { health_check: dnsCheck, backends: [{ address: '127.0.0.1:80' }] } } };
    expect(issues(tcp)).toEqual(['pools.web.health_check.type: udp checks are for pools of udp listeners, but pool "web" serves a tcp or http listener']);
    const udp = { listeners: { dns: { address: '127.0.0.1:5353', protocol: 'udp', pool: 'dns' } }, pools: { dns: { health_check: dnsCheck, backends: [{ address: '127.0.0.1:53' }] } } };
    expect(issues(udp)).toEqual([]);
  });
});

describe('ports are per transport', () => {
  it('lets a tcp and a udp listener share a port, and refuses two udp listeners on one', () => {
    const pools = { p: { backends: [{ address: '127.0.0.1:53' }] } };
    const both = { listeners: { t: { address: '127.0.0.1:5353', pool: 'p' }, u: { address: '127.0.0.1:5353', protocol: 'udp', pool: 'p' } }, pools };
    expect(issues(both)).toEqual([]);
    const twice = { listeners: { u1: { address: '0.0.0.0:5353', protocol: 'udp', pool: 'p' }, u2: { address: '127.0.0.1:5353', protocol: 'udp', pool: 'p' } }, pools };
    expect(issues(twice)).toEqual(['listeners.u2.address: "127.0.0.1:5353" conflicts with listeners.u1.address ("0.0.0.0:5353"): same port on an overlapping address']);
  });
});
