/**
 * The UDP part of a configuration: a `protocol: udp` listener's `udp` section (flows: idle
 * timeout, most flows, replies per flow, largest datagram), and what such a listener may not
 * have (TLS, routes, PROXY headers: they belong to streams). The resolved form is the data
 * plane's `UdpListenerConfig` (`crates/switchyard-core/src/udp/config.rs`, which re-checks it).
 */
import { poolsOf } from './uses.js';
import { describe, type Checker, type Obj } from './checker.js';
import { DEFAULTS } from './defaults.js';
import { LISTENER_UDP, keysOf } from './fields.js';
import type { UdpListenerConfig } from '../binding/types.generated.js';
import type { ResolvedListener, ResolvedPool } from './types.js';

const UDP_KEYS = keysOf(LISTENER_UDP);
/** Listener keys that only make sense for a byte stream. */
const STREAM_ONLY = ['tls', 'sni_routes', 'routes', 'http', 'proxy_protocol', 'max_lifetime', 'defer_accept', 'splice', 'peek_timeout'] as const;
/** Listener keys the UDP data plane does not read yet (say so rather than ignore them). */
const NOT_YET = ['allow', 'deny', 'per_source', 'max_connections'] as const;

/**
 * A listener's `udp` section with defaults: for `protocol: udp` listeners, else null (and a
 * `udp` section on another protocol, or a stream-only key on a udp listener, is an error).
 */
export function checkListenerUdp(c: Checker, name: string, l: Obj, protocol: string): UdpListenerConfig | null {
  const path = `listeners.${name}`;
  if (protocol !== 'udp') {
    if (l.udp !== undefined) c.add(`${path}.udp`, `only for protocol: udp (this listener is ${protocol})`);
    return null;
  }
  for (const key of STREAM_ONLY) {
    if (l[key] !== undefined) c.add(`${path}.${key}`, 'not for protocol: udp (datagrams have no stream, TLS or requests)');
  }
  for (const key of NOT_YET) {
    if (l[key] !== undefined) c.add(`${path}.${key}`, 'not supported on udp listeners yet (udp.max_flows limits flows)');
  }
  if (l.pool === undefined) c.add(`${path}.pool`, 'missing: a udp listener needs a pool');
  const d = DEFAULTS.udp;
  const out: UdpListenerConfig = { ...d };
  if (l.udp === undefined) return out;
  const u = c.object(l.udp, `${path}.udp`, `an object with keys ${UDP_KEYS.join(', ')}`);
  if (!u) return out;
  c.keys(u, UDP_KEYS, `${path}.udp`);
  const F = LISTENER_UDP.fields;
  out.flow_idle_timeout_ms = c.duration(u.flow_idle_timeout, `${path}.udp.flow_idle_timeout`, F.flow_idle_timeout.min, F.flow_idle_timeout.max, d.flow_idle_timeout_ms);
  out.max_flows = c.int(u.max_flows, `${path}.udp.max_flows`, F.max_flows.min, F.max_flows.max, d.max_flows);
  out.responses = c.int(u.responses, `${path}.udp.responses`, F.responses.min, F.responses.max, d.responses);
  out.max_datagram_bytes = c.size(u.max_datagram_size, `${path}.udp.max_datagram_size`, F.max_datagram_size.min, F.max_datagram_size.max, d.max_datagram_bytes);
  return out;
}

/**
 * Pools and their listeners agree on the transport: a pool a udp listener uses is checked with
 * `udp` health checks only (a tcp connect or an HTTP request says nothing about a UDP service),
 * and a `udp` check belongs to such a pool.
 */
export function checkUdpUse(c: Checker, listeners: readonly ResolvedListener[], pools: readonly ResolvedPool[]): void {
  const udpPools = new Set(listeners.filter((l) => l.protocol === 'udp').map((l) => l.pool));
  const streamPools = new Set(listeners.filter((l) => l.protocol !== 'udp').flatMap(poolsOf));
  for (const p of pools) {
    // A backend's check is reported only where it differs from the pool's (it is merged over it).
    const own = p.backends.map((b, i) => [`pools.${p.name}.backends[${i}].health_check`, b.health_check] as const).filter(([, h]) => h?.type !== p.health_check?.type);
    const checks = [[`pools.${p.name}.health_check`, p.health_check] as const, ...own];
    for (const [path, check] of checks) {
      if (!check) continue;
      if (udpPools.has(p.name) && check.type !== 'udp') {
        c.add(`${path}.type`, `pool ${describe(p.name)} serves a udp listener: its checks must be type udp (a datagram and the reply expected), not ${describe(check.type)}`);
      } else if (check.type === 'udp' && streamPools.has(p.name)) {
        c.add(`${path}.type`, `udp checks are for pools of udp listeners, but pool ${describe(p.name)} serves a tcp or http listener`);
      }
    }
  }
}
