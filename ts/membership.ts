/**
 * Where each pool's backends come from and when that set last changed: the configuration
 * (`file`), DNS names and SRV records (`dns`, `ts/dns/`), etcd prefixes (`etcd`, `ts/etcd/`).
 * `Membership` runs both watchers for a balancer as one (resolve before applying, expand,
 * follow, stop) and records every change of a pool's address set with what caused it, for the
 * admin API (`/api/pools`: `membership`) and `/metrics`.
 */
import type { ResolvedConfig, ResolvedPool } from './config/types.js';
import { DnsWatcher } from './dns/watcher.js';
import type { SourceHost } from './dns/apply.js';
import { EtcdMembers } from './etcd/members.js';

/** A source of a pool's backends. */
export type MembershipSource = 'file' | 'dns' | 'etcd';
/** What changed a pool's backends: a source, a `update()`/reload (`config`), or an operator (`api`). */
export type MembershipCause = MembershipSource | 'config' | 'api';

/** One pool's membership as the admin API shows it. */
export interface PoolMembership {
  /** Where its backends come from: `file` (addresses written in the configuration), `dns`, `etcd`. */
  sources: MembershipSource[];
  /** When its set of backend addresses last changed (or the balancer started), ISO 8601. */
  changed_at: string;
  /** What made that change. */
  changed_by: MembershipCause;
}

/** The sources of a declared pool, in the order file, dns, etcd. */
export function sourcesOf(pool: ResolvedPool): MembershipSource[] {
  const kinds = new Set<MembershipSource>();
  if (pool.backends.length > 0) kinds.add('file');
  for (const s of pool.dns_sources ?? []) kinds.add(s.kind === 'etcd' ? 'etcd' : 'dns');
  return (['file', 'dns', 'etcd'] as const).filter((k) => kinds.has(k));
}

const addresses = (p: ResolvedPool | undefined): string => JSON.stringify(p ? p.backends.map((b) => b.address).sort() : null);

/** The backend sources of one balancer and the history of its pools' membership. */
export class Membership {
  readonly #dns = new DnsWatcher();
  readonly #etcd = new EtcdMembers();
  readonly #changes = new Map<string, { at: number; by: MembershipCause }>();
  #declared: ResolvedConfig | undefined;

  /** `declared` with every name and prefix expanded (new ones read first; a failure changes nothing). */
  async resolve(declared: ResolvedConfig, source: string): Promise<ResolvedConfig> {
    return this.#etcd.resolve(await this.#dns.resolve(declared, source), source);
  }

  /** `declared` expanded from what is held now (no query). */
  expand(declared: ResolvedConfig): ResolvedConfig {
    return this.#etcd.expand(this.#dns.expand(declared));
  }

  /** Follow the sources of `host`'s declared configuration; `replacePool` is told who changed it. */
  start(host: Omit<SourceHost, 'replacePool'> & { replacePool(next: ResolvedConfig, pool: string, by: MembershipCause): void }): void {
    this.#declared = host.declared();
    this.#dns.start({ ...host, replacePool: (next, pool) => host.replacePool(next, pool, 'dns') });
    this.#etcd.start({ ...host, replacePool: (next, pool) => host.replacePool(next, pool, 'etcd') });
  }

  /** A new declared configuration is in force. */
  sync(declared: ResolvedConfig): void {
    this.#declared = declared;
    this.#dns.sync(declared);
    this.#etcd.sync(declared);
  }

  stop(): void {
    this.#dns.stop();
    this.#etcd.stop();
  }

  /** `after` replaced `before` because of `by`: note each pool whose address set changed. */
  record(before: ResolvedConfig | undefined, after: ResolvedConfig, by: MembershipCause, now = Date.now()): void {
    for (const p of after.pools) {
      if (addresses(p) !== addresses(before?.pools.find((x) => x.name === p.name))) this.#changes.set(p.name, { at: now, by });
    }
    for (const name of [...this.#changes.keys()]) if (!after.pools.some((p) => p.name === name)) this.#changes.delete(name);
  }

  /** Every pool's membership, by name. */
  views(): Map<string, PoolMembership> {
    const out = new Map<string, PoolMembership>();
    for (const p of this.#declared?.pools ?? []) {
      const c = this.#changes.get(p.name);
      if (c) out.set(p.name, { sources: sourcesOf(p), changed_at: new Date(c.at).toISOString(), changed_by: c.by });
    }
    return out;
  }
}
