/**
 * From answers to backends, without I/O: a pool's names become one backend per
 * resolved address, carrying the declaring entry's weight, backup, state and
 * health check (SRV: the record's weight and priority). `refreshPool` applies a
 * change of answers to the pool in force, so addresses that stay keep whatever
 * was set at runtime (drain, weight) and their health-check history.
 */
import type { ResolvedBackend, ResolvedPool } from '../config/types.js';
import type { DnsAnswer } from './resolve.js';
import type { ResolvedDnsSource } from './types.js';

/** The answers held, by source key. */
export type Answers = ReadonlyMap<string, DnsAnswer>;

/** The cache key of a source: pools that name the same host share one query. */
export function sourceKey(s: ResolvedDnsSource): string {
  // etcd keys are case-sensitive and may end in a dot; DNS names are neither.
  return s.kind === 'etcd' ? `etcd:${s.name}` : `${s.kind}:${s.name.toLowerCase().replace(/\.$/, '')}`;
}

/** One derived backend and the source it came from. */
export interface Derived {
  backend: ResolvedBackend;
  source: ResolvedDnsSource;
}

/**
 * The backends `sources` resolve to, by address, in declaration order. An address already taken
 * (by a backend written as an IP in `taken`, or by an earlier source) is skipped: first wins.
 */
export function derive(sources: readonly ResolvedDnsSource[], answers: Answers, taken: ReadonlySet<string>): Map<string, Derived> {
  const out = new Map<string, Derived>();
  for (const source of sources) {
    for (const r of answers.get(sourceKey(source))?.records ?? []) {
      if (taken.has(r.address) || out.has(r.address)) continue;
      const { state, health_check } = source;
      const backend = { address: r.address, weight: source.weight ?? r.weight ?? 1, backup: source.backup || r.backup, state, health_check };
      out.set(r.address, { backend, source });
    }
  }
  return out;
}

/** `pool` as declared (IP backends only) plus the backends its names resolve to in `answers`. */
export function expandPool(pool: ResolvedPool, answers: Answers): ResolvedPool {
  if (!pool.dns_sources) return pool;
  const derived = derive(pool.dns_sources, answers, new Set(pool.backends.map((b) => b.address)));
  return { ...pool, backends: [...pool.backends, ...[...derived.values()].map((d) => structuredClone(d.backend))] };
}

/** What a change of answers did to one pool. */
export interface PoolChange {
  pool: ResolvedPool;
  added: Derived[];
  removed: Derived[];
  /** Backends whose record changed weight or priority (and were not changed at runtime since). */
  changed: Derived[];
}

/**
 * Apply new answers to `running` (the pool in force). `statics`: the addresses its declaration
 * writes as IPs (never removed by DNS). A backend that stays is kept as it is, runtime state and
 * weight included; only a weight or backup flag the records changed, and nobody changed at
 * runtime, follows the records.
 */
export function refreshPool(running: ResolvedPool, statics: ReadonlySet<string>, before: Answers, after: Answers): PoolChange {
  const sources = running.dns_sources ?? [];
  const old = derive(sources, before, statics);
  const now = derive(sources, after, statics);
  const present = new Set(running.backends.map((b) => b.address));
  const removed = [...old.values()].filter((d) => !now.has(d.backend.address) && present.has(d.backend.address));
  const added = [...now.values()].filter((d) => !present.has(d.backend.address));
  const changed: Derived[] = [];
  const backends = running.backends
    .filter((b) => !old.has(b.address) || now.has(b.address))
    .map((b) => {
      const o = old.get(b.address)?.backend;
      const n = now.get(b.address);
      if (!o || !n) return b;
      const weight = b.weight === o.weight ? n.backend.weight : b.weight;
      const backup = b.backup === o.backup ? n.backend.backup : b.backup;
      if (weight === b.weight && backup === b.backup) return b;
      changed.push(n);
      return { ...b, weight, backup };
    });
  backends.push(...added.map((d) => structuredClone(d.backend)));
  return { pool: { ...running, backends }, added, removed, changed };
}
