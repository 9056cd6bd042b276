import type { ResolvedListener } from './types.js';

/**
 * Every pool a listener can send to: its `pool`, its routes' (http), its `sni_routes`' and its
 * policy rules' (tcp). One place, so checks between listeners and pools see them all.
 */
export function poolsOf(l: ResolvedListener): string[] {
  const routes = (l.http?.routes ?? []).flatMap((r) => (r.pool === null ? [] : [r.pool]));
  const rules = l.rules.flatMap((r) => (r.action === 'deny' ? [] : [r.action.pool]));
  return [...new Set([l.pool, ...routes, ...(l.sni_routes ?? []).map((r) => r.pool), ...rules])];
}
