/**
 * Validation of what DNS adds to a configuration: the `dns` section, a pool's
 * `backends_from`, and backends whose address names a host. Nothing is resolved
 * here (validation stays synchronous and offline); `watcher.ts` resolves.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { describe, parseAddress, type Checker } from '../config/checker.js';
import { BACKENDS_FROM, DNS, keysOf } from '../config/fields.js';
import type { ResolvedBackend } from '../config/types.js';
import type { ResolvedHealthCheck } from '../health/types.js';
import { DNS_DEFAULTS } from './defaults.js';
import { etcdSource } from '../etcd/config.js';
import type { HostPort } from './names.js';
import { isSrvName } from './names.js';
import type { DnsFamily, ResolvedDns, ResolvedDnsSource } from './types.js';

const DNS_KEYS = keysOf(DNS);
const FROM_KEYS = keysOf(BACKENDS_FROM);
const FAMILIES: readonly DnsFamily[] = ['any', 'ipv4', 'ipv6'];
const F = DNS.fields;

/** A name server as `ip:port` (port 53 when none is given), or the error. */
function server(s: string): string | undefined {
  if (isIPv4(s)) return `${s}:53`;
  if (isIPv6(s)) return `[${s}]:53`;
  const a = parseAddress(s, 1);
  return typeof a === 'string' ? undefined : a.text;
}

/** The `dns` section (absent: every default). */
export function checkDns(c: Checker, raw: unknown, path = 'dns'): ResolvedDns {
  const dns: ResolvedDns = { servers: null, min_ttl_ms: DNS_DEFAULTS.min_ttl_ms, max_ttl_ms: DNS_DEFAULTS.max_ttl_ms, timeout_ms: DNS_DEFAULTS.timeout_ms, family: DNS_DEFAULTS.family };
  if (raw === undefined) return dns;
  const d = c.object(raw, path, `an object with keys ${DNS_KEYS.join(', ')}`);
  if (!d) return dns;
  c.keys(d, DNS_KEYS, path);
  if (d.servers !== undefined) {
    if (!Array.isArray(d.servers) || d.servers.length === 0) {
      c.add(`${path}.servers`, `expected a non-empty list of "ip" or "ip:port", got ${describe(d.servers)}`);
    } else {
      dns.servers = d.servers.flatMap((s: unknown, i) => {
        const text = typeof s === 'string' ? server(s) : undefined;
        if (text === undefined) c.add(`${path}.servers[${i}]`, `expected "ip" or "ip:port" (IPv6 as "[::1]:53"), got ${describe(s)}`);
        return text === undefined ? [] : [text];
      });
    }
  }
  dns.min_ttl_ms = c.duration(d.min_ttl, `${path}.min_ttl`, F.min_ttl.min, F.min_ttl.max, dns.min_ttl_ms);
  dns.max_ttl_ms = c.duration(d.max_ttl, `${path}.max_ttl`, F.max_ttl.min, F.max_ttl.max, dns.max_ttl_ms);
  // Reported on the section: either field may be the one to change.
  if (dns.max_ttl_ms < dns.min_ttl_ms) c.add(path, `max_ttl (${dns.max_ttl_ms} ms) must be at least min_ttl (${dns.min_ttl_ms} ms)`);
  dns.timeout_ms = c.duration(d.timeout, `${path}.timeout`, F.timeout.min, F.timeout.max, dns.timeout_ms);
  dns.family = c.oneOf(d.family, `${path}.family`, FAMILIES, dns.family);
  return dns;
}

/** A backend whose address names a host: every address the name resolves to becomes a backend with its fields. */
export function nameSource(host: HostPort, path: string, backend: ResolvedBackend): ResolvedDnsSource {
  const { weight, backup, state, health_check } = backend;
  return { kind: 'name', name: host.host, port: host.port, path, weight, backup, state, health_check };
}

/** A pool's `backends_from` (absent: undefined): an SRV name, or an etcd prefix (`etcd/config.ts`).
 * Its backends get the pool's health check. */
export function checkBackendsFrom(c: Checker, raw: unknown, path: string, check: ResolvedHealthCheck | null): ResolvedDnsSource | undefined {
  if (raw === undefined) return undefined;
  const f = c.object(raw, path, 'an object such as { srv: "_http._tcp.api.internal" } or { etcd: "/switchyard/pools/api/" }');
  if (!f) return undefined;
  c.keys(f, FROM_KEYS, path);
  if (f.etcd !== undefined) {
    if (f.srv !== undefined) c.add(path, 'expected one of srv, etcd, got both');
    return etcdSource(c, f.etcd, `${path}.etcd`, check);
  }
  if (typeof f.srv !== 'string' || !isSrvName(f.srv)) {
    c.add(`${path}.srv`, f.srv === undefined ? 'missing (expected an SRV name such as "_http._tcp.api.internal", or etcd: a key prefix)' : `expected an SRV name such as "_http._tcp.api.internal", got ${describe(f.srv)}`);
    return undefined;
  }
  return { kind: 'srv', name: f.srv, port: null, path: `${path}.srv`, weight: null, backup: false, state: 'ready', health_check: check };
}
