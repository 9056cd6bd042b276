/**
 * What the admin API shows: the data plane's counters (`lb.stats()`) joined
 * with the active-check view (`lb.health()`, when the balancer has one).
 */
import type { L4RuleConfig, RouteConfig, RouteReport, ValueMatch } from '../binding/types.generated.js';
import type { Protocol } from '../config/types.js';
import type { BackendStats, ListenerStats, PoolStats } from '../stats.js';
import type { AdminTarget } from './target.js';
import type { PoolMembership } from '../membership.js';

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
  /** Where the pool's backends come from and when their set last changed (null: not tracked). */
  membership: PoolMembership | null;
}

/** An HTTP route (or a tcp listener's policy rule) as the API returns it: its counters and what it matches. */
export interface RouteView extends Omit<RouteReport, 'listener'> {
  /** The route's conditions in one line, e.g. `host static.example.com, path_prefix /static/`;
   * `every request` for a route without any. */
  match: string;
}

/** A listener as the API returns it. */
export interface ListenerView extends Omit<ListenerStats, 'routes'> {
  protocol: Protocol;
  /** HTTP routes (policy rules first, the default route last), or a tcp listener's policy
   * rules, in match order. */
  routes: RouteView[];
}

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
  const membership = lb.membership?.();
  return stats.pools.map((p) => ({
    ...p,
    membership: membership?.get(p.name) ?? null,
    backends: p.backends.map((b) => ({ ...b, status: backendStatus(b), check: health.get(`${p.name}/${b.address}`) ?? null })),
  }));
}

/** `name="value"`, `name~/regex/` or `name` (present) of a header, query or cookie condition. */
function valueMatch(v: ValueMatch): string {
  if (v.equals !== null) return `${v.name}=${JSON.stringify(v.equals)}`;
  if (v.regex !== null) return `${v.name}~/${v.regex}/`;
  return v.name;
}

/** A compiled route's conditions in one line, in the words of the config file. */
export function matchSummary(r: RouteConfig): string {
  const parts: string[] = [];
  if (r.host !== null) parts.push(`host ${r.host}`);
  if (r.path) {
    if ('exact' in r.path) parts.push(`path ${r.path.exact}`);
    else if ('prefix' in r.path) parts.push(`path_prefix ${r.path.prefix}`);
    else parts.push(`path_regex ${r.path.regex}`);
  }
  if (r.methods) parts.push(`method ${r.methods.join('|')}`);
  for (const [kind, list] of [['header', r.headers], ['query', r.query], ['cookie', r.cookies]] as const) {
    if (list.length) parts.push(`${kind} ${list.map(valueMatch).join(' ')}`);
  }
  if (r.source.length) parts.push(`source ${r.source.join('|')}`);
  return parts.length ? parts.join(', ') : 'every request';
}

/** A tcp listener's compiled policy rule's conditions in one line. */
export function ruleSummary(r: L4RuleConfig): string {
  const parts: string[] = [];
  if (r.source.length) parts.push(`source ${r.source.join('|')}`);
  if (r.sni.length) parts.push(`sni ${r.sni.join('|')}`);
  if (r.ports.length) parts.push(`port ${r.ports.join('|')}`);
  for (const t of r.tlvs) parts.push(`tlv ${valueMatch({ name: typeof t.tlv === 'string' ? t.tlv : `0x${t.tlv.type.toString(16)}`, equals: t.equals, regex: t.regex })}`);
  return parts.length ? parts.join(', ') : 'every connection';
}

/** Every listener with its protocol and, for HTTP, its routes' conditions and counters. */
export function listenerViews(lb: AdminTarget): ListenerView[] {
  const configs = new Map(lb.config.listeners.map((l) => [l.name, l]));
  return lb.stats().listeners.map((l) => {
    const c = configs.get(l.name);
    const compiled = new Map<string, string>([...(c?.http?.routes ?? []).map((r) => [r.name, matchSummary(r)] as const), ...(c?.rules ?? []).map((r) => [r.name, ruleSummary(r)] as const)]);
    return {
      ...l,
      protocol: c?.protocol ?? 'tcp',
      routes: l.routes.map(({ listener: _listener, ...r }) => {
        return { ...r, match: compiled.get(r.name) ?? '' };
      }),
    };
  });
}
