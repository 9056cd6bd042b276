import type { ResolvedListener } from './types.js';

/**
 * Every pool a listener can send to: its `pool`, its routes' and their hooks' fallbacks' (http),
 * its `sni_routes`' and its policy rules' (tcp). One place, so checks between listeners and pools see them all.
 */
export function poolsOf(l: ResolvedListener): string[] {
  // A route's hook may send its requests to its fallback's pool too.
  const routes = (l.http?.routes ?? []).flatMap((r) => [r.pool, r.hook?.fallback.pool ?? null].filter((p) => p !== null));
  const rules = l.rules.flatMap((r) => [r.action === 'deny' ? null : r.action.pool, r.hook?.fallback.pool ?? null].filter((p) => p !== null));
  return [...new Set([l.pool, ...routes, ...(l.sni_routes ?? []).map((r) => r.pool), ...rules])];
}
