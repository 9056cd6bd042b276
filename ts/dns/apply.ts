/**
 * Applying a change of a source's answers (DNS records, or the keys under an etcd prefix) to the
 * pools that use that source: each pool is replaced alone, and what moved is reported as backend
 * events. Shared by the DNS watcher and the etcd members watcher (`ts/etcd/members.ts`).
 */
import type { BackendEvent } from '../events.js';
import type { Logger } from '../log.js';
import type { ResolvedConfig } from '../config/types.js';
import { refreshPool, sourceKey, type Answers, type Derived } from './expand.js';

/** What a watcher of backend sources needs from the balancer. */
export interface SourceHost {
  log: Logger;
  /** The configuration in force (names expanded to addresses). */
  config(): ResolvedConfig;
  /** The configuration as declared (IP backends only; names in `dns_sources`). */
  declared(): ResolvedConfig;
  /** Apply `next`, which differs from the configuration in force in pool `pool` only. */
  replacePool(next: ResolvedConfig, pool: string): void;
  emit(event: Omit<BackendEvent, 'time'>): void;
}

/** The reason of an event about `d`: where it came from (`dns: NAME`, `etcd: PREFIX`) and what it is. */
function reason(d: Derived, what: 'added' | 'removed' | 'changed'): string {
  const from = `${d.source.kind === 'etcd' ? 'etcd' : 'dns'}: ${d.source.name}`;
  if (what === 'removed') return d.source.kind === 'etcd' ? `${from}: its key was deleted` : `${from} no longer resolves to it`;
  return `${from}; weight ${d.backend.weight}${d.backend.backup ? ', backup' : ''}`;
}

/** Replace each pool that uses source `key`, alone (answers `before` → `after`), and report what moved. */
export function applyAnswers(host: SourceHost, key: string, before: Answers, after: Answers): void {
  for (const running of host.config().pools) {
    if (!running.dns_sources?.some((s) => sourceKey(s) === key)) continue;
    const declared = host.declared().pools.find((p) => p.name === running.name);
    const statics = new Set(declared?.backends.map((b) => b.address));
    const change = refreshPool(running, statics, before, after);
    if (change.added.length + change.removed.length + change.changed.length === 0) continue;
    const config = host.config();
    try {
      host.replacePool({ ...config, pools: config.pools.map((p) => (p.name === running.name ? change.pool : p)) }, running.name);
    } catch (err) {
      host.log(key.startsWith('etcd:') ? 'etcd.update_failed' : 'dns.update_failed', { pool: running.name, name: key, error: err instanceof Error ? err.message : String(err) });
      continue;
    }
    const pool = running.name;
    for (const d of change.removed) host.emit({ pool, address: d.backend.address, kind: 'removed', reason: reason(d, 'removed') });
    for (const d of change.added) host.emit({ pool, address: d.backend.address, kind: 'added', reason: reason(d, 'added') });
    for (const d of change.changed) host.emit({ pool, address: d.backend.address, kind: 'weight', reason: reason(d, 'changed') });
  }
}
