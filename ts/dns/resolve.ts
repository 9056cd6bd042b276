/**
 * Queries: a name's A/AAAA records with their TTLs, an SRV name's records with
 * their targets' addresses, through node:dns's `Resolver` (c-ares: its own
 * servers, timeouts and tries, never the blocking getaddrinfo pool).
 */
import { Resolver } from 'node:dns/promises';
import { parseAddress } from '../config/checker.js';
import { LIMITS } from '../binding/catalog.generated.js';
import type { DnsFamily, ResolvedDns, ResolvedDnsSource } from './types.js';

/** One address a source resolved to, ready to be a backend. */
export interface DnsRecord {
  /** Canonical `ip:port` (IPv6 in brackets), as the validator writes addresses. */
  address: string;
  /** SRV: the record's weight (clamped to the data plane's 1..max); a name: null. */
  weight: number | null;
  /** SRV: the record's priority is above the lowest one. */
  backup: boolean;
}

/** A successful resolution: never empty (no address at all is a failure). */
export interface DnsAnswer {
  records: DnsRecord[];
  /** The smallest TTL among the records, in seconds. */
  ttl: number;
}

/** A failed resolution; `message` names the name and what went wrong. */
export class DnsFailure extends Error {}

/** "No such name" and "no records of this type": answers, not outages. */
const EMPTY = new Set(['ENOTFOUND', 'ENODATA']);

const REASONS: Record<string, string> = {
  ENOTFOUND: 'no such name (NXDOMAIN)',
  ENODATA: 'no address records',
  ETIMEOUT: 'no answer from the name servers in time',
  ECONNREFUSED: 'the name servers refused the connection',
  EREFUSED: 'the name servers refused the query',
  ESERVFAIL: 'the name servers failed (SERVFAIL)',
  ECANCELLED: 'cancelled',
};

function reason(err: unknown): string {
  const code = (err as { code?: string }).code ?? '';
  return REASONS[code] ? `${REASONS[code]}, ${code}` : String((err as Error).message ?? err);
}

/** Canonical `ip:port`. */
function socketAddress(ip: string, port: number): string {
  const a = parseAddress(ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`, 1);
  return typeof a === 'string' ? `${ip}:${port}` : a.text;
}

/** A resolver with the `dns` section's servers and timeout. */
export class DnsClient {
  readonly #resolver: Resolver;
  readonly #family: DnsFamily;
  readonly #servers: string;

  constructor(settings: ResolvedDns) {
    this.#resolver = new Resolver({ timeout: settings.timeout_ms, tries: 2 });
    if (settings.servers) this.#resolver.setServers(settings.servers);
    this.#family = settings.family;
    this.#servers = this.#resolver.getServers().join(', ') || 'none';
  }

  /** The addresses of `name` in the configured family, and their smallest TTL. */
  async addresses(name: string): Promise<{ ips: string[]; ttl: number }> {
    const queries = [
      this.#family !== 'ipv6' ? this.#resolver.resolve4(name, { ttl: true }) : undefined,
      this.#family !== 'ipv4' ? this.#resolver.resolve6(name, { ttl: true }) : undefined,
    ].filter((q) => q !== undefined);
    const settled = await Promise.allSettled(queries);
    const found = settled.flatMap((s) => (s.status === 'fulfilled' ? s.value : []));
    const errors = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    // With family any, one family answering is enough: many servers refuse or fail AAAA queries
    // for names they only hold A records for (dnsmasq without upstreams answers REFUSED).
    const outage = errors.find((e) => !EMPTY.has((e as { code?: string }).code ?? ''));
    if (found.length === 0) {
      throw new DnsFailure(`"${name}" did not resolve: ${reason(outage ?? errors[0] ?? { message: 'no address records' })} (servers ${this.#servers})`);
    }
    return { ips: [...new Set(found.map((r) => r.address))].sort(), ttl: Math.min(...found.map((r) => r.ttl)) };
  }

  /** Resolve one source: a host name (its addresses with the declared port) or an SRV name. */
  async lookup(source: ResolvedDnsSource): Promise<DnsAnswer> {
    if (source.kind === 'name') {
      const { ips, ttl } = await this.addresses(source.name);
      return { records: ips.map((ip) => ({ address: socketAddress(ip, source.port ?? 0), weight: null, backup: false })), ttl };
    }
    let srv;
    try {
      // "." as the target means "no such service here" (RFC 2782).
      srv = (await this.#resolver.resolveSrv(source.name)).filter((r) => r.name !== '' && r.name !== '.' && r.port > 0);
    } catch (err) {
      throw new DnsFailure(`"${source.name}" did not resolve: ${reason(err)} (servers ${this.#servers})`);
    }
    if (srv.length === 0) throw new DnsFailure(`"${source.name}" did not resolve: no SRV records (servers ${this.#servers})`);
    const top = Math.min(...srv.map((r) => r.priority));
    // Node does not report an SRV record's TTL: the targets' address TTLs stand in for it.
    const targets = await Promise.all(srv.map(async (r) => ({ r, ...(await this.addresses(r.name)) })));
    const records = new Map<string, DnsRecord>();
    for (const { r, ips } of targets) {
      for (const ip of ips) {
        const address = socketAddress(ip, r.port);
        // RFC 2782: weight 0 is a very small share, not none; the data plane's 0 means none.
        if (!records.has(address)) records.set(address, { address, weight: Math.min(Math.max(r.weight, 1), LIMITS.weight.max), backup: r.priority > top });
      }
    }
    return { records: [...records.values()], ttl: Math.min(...targets.map((t) => t.ttl)) };
  }

  /** Abandon the queries in flight (they fail with ECANCELLED). */
  cancel(): void {
    this.#resolver.cancel();
  }
}
