/**
 * The PROXY protocol in configuration: a listener that expects headers from trusted sources
 * (`listeners.*.proxy_protocol`), a pool that writes them (`pools.*.proxy_protocol`), and the
 * rule that keeps them off HTTP listeners' pools.
 */
import type { ProxyAcceptConfig, ProxyVersion } from '../binding/types.generated.js';
import { Checker, describe } from './checker.js';
import { checkCidrs } from './cidr.js';
import { DEFAULTS } from './defaults.js';
import { PROXY_ACCEPT, keysOf } from './fields.js';
import type { ResolvedListener, ResolvedPool } from './types.js';

const VERSIONS: readonly ProxyVersion[] = ['v1', 'v2'];
const TIMEOUT = PROXY_ACCEPT.fields.timeout;

/** `listeners.<name>.proxy_protocol` (at `path`); null when absent. */
export function checkProxyAccept(c: Checker, raw: unknown, path: string): ProxyAcceptConfig | null {
  if (raw === undefined) return null;
  const o = c.object(raw, path, 'an object such as { trusted: ["10.0.0.0/8"], timeout: "3s" }');
  if (!o) return null;
  c.keys(o, keysOf(PROXY_ACCEPT), path);
  const trusted = checkCidrs(c, o.trusted, `${path}.trusted`, true);
  const timeout_ms = c.duration(o.timeout, `${path}.timeout`, TIMEOUT.min, TIMEOUT.max, DEFAULTS.proxy_timeout_ms);
  return { trusted, timeout_ms };
}

/** `pools.<name>.proxy_protocol` (at `path`); null when absent. */
export function checkProxyVersion(c: Checker, raw: unknown, path: string): ProxyVersion | null {
  return raw === undefined ? null : c.oneOf(raw, path, VERSIONS, 'v2');
}

/**
 * A PROXY header describes one client connection, and an HTTP listener's backend connections
 * carry many clients' requests (the spec forbids the header there): its pools may not ask for one.
 */
export function checkProxyUse(c: Checker, listeners: readonly ResolvedListener[], pools: readonly ResolvedPool[]): void {
  const sending = new Set(pools.filter((p) => p.proxy_protocol !== null).map((p) => p.name));
  const reported = new Set<string>();
  for (const l of listeners) {
    if (l.protocol !== 'http') continue;
    // A route's hook may send its requests to its fallback's pool too.
    const routed = (l.http?.routes ?? []).flatMap((r) => (r.hook?.fallback.pool ? [r.pool, r.hook.fallback.pool] : [r.pool]));
    for (const name of new Set([l.pool, ...routed])) {
      if (!sending.has(name) || reported.has(name)) continue;
      reported.add(name);
      c.add(
        `pools.${name}.proxy_protocol`,
        `only for pools of tcp listeners, but listeners.${l.name} (protocol http) uses pool ${describe(name)}: HTTP reuses backend connections across clients; X-Forwarded-For and Forwarded carry the client's address there`,
      );
    }
  }
}
