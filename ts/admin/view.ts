/**
 * What the admin API shows: the data plane's counters (`lb.stats()`) joined
 * with the active-check view (`lb.health()`, when the balancer has one).
 */
import type { BackendStats, ListenerStats, PoolStats } from '../stats.js';
import type { AdminTarget } from './target.js';

/** One backend's last active check, as `lb.health()` reports it. */
export interface CheckView {
  status: 'up' | 'down' | 'unknown';
  last: { ok: boolean; reason: string; duration_ms: number; at: string | number } | null;
  since: number | string;
  /** Consecutive successes / failures, when the checker reports them. */
  successes?: number;
  failures?: number;
}

/** A backend as the API returns it. */
export interface BackendView extends BackendStats {
  /** One word for people and dashboards: `maint` or `drain` (operator), `down` (active
   * check), `ejected` (passive), else `up`. */
  status: 'up' | 'down' | 'ejected' | 'drain' | 'maint';
  /** The active check's view; null when the pool has no active check. */
  check: CheckView | null;
}

export interface PoolView extends Omit<PoolStats, 'backends'> {
  backends: BackendView[];
}

export type ListenerView = ListenerStats;

/** `lb.health()` when this balancer has it (active checks), keyed `pool/address`. */
export function healthMap(lb: AdminTarget): Map<string, CheckView> {
  const map = new Map<string, CheckView>();
  for (const h of lb.health?.() ?? []) {
    const view: CheckView = { status: h.status, last: h.last, since: h.since };
    if (typeof h.successes === 'number') view.successes = h.successes;
    if (typeof h.failures === 'number') view.failures = h.failures;
    map.set(`${h.pool}/${h.address}`, view);
  }
  return map;
}

export function backendStatus(b: BackendStats): BackendView['status'] {
  if (b.state !== 'ready') return b.state;
  if (b.health === 'down') return 'down';
  if (b.ejected) return 'ejected';
  return 'up';
}

/** Every pool with its backends, now. */
export function poolViews(lb: AdminTarget): PoolView[] {
  const stats = lb.stats();
  const health = healthMap(lb);
  return stats.pools.map((p) => ({
    ...p,
    backends: p.backends.map((b) => ({ ...b, status: backendStatus(b), check: health.get(`${p.name}/${b.address}`) ?? null })),
  }));
}

export function listenerViews(lb: AdminTarget): ListenerView[] {
  return lb.stats().listeners;
}
