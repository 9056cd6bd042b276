/**
 * Validation of what etcd adds to a configuration: the `etcd` section and a pool's
 * `backends_from.etcd` prefix. Nothing is read here (validation stays synchronous and
 * offline); `members.ts` reads and watches.
 */
import { describe, type Checker } from '../config/checker.js';
import { ETCD, ETCD_ENDPOINT_PATTERN, ETCD_PREFIX_PATTERN, keysOf } from '../config/fields.js';
import type { ResolvedHealthCheck } from '../health/types.js';
import type { ResolvedDnsSource } from '../dns/types.js';
import { ETCD_DEFAULTS } from './defaults.js';
import type { ResolvedEtcd, ResolvedSharedHealth } from './types.js';
import { hostname } from 'node:os';

const ETCD_KEYS = keysOf(ETCD);
const ENDPOINT = new RegExp(ETCD_ENDPOINT_PATTERN);
const PREFIX = new RegExp(ETCD_PREFIX_PATTERN);

/** The `etcd` section; `needed`: some pool reads a prefix (then the section is required). */
export function checkEtcd(c: Checker, raw: unknown, needed: boolean, path = 'etcd'): ResolvedEtcd | undefined {
  if (raw === undefined) {
    if (needed) c.add(path, 'missing: a pool has backends_from.etcd, so the etcd section must name the cluster, e.g. { endpoints: ["http://127.0.0.1:2379"] }');
    return undefined;
  }
  const e = c.object(raw, path, `an object with keys ${ETCD_KEYS.join(', ')}`);
  if (!e) return undefined;
  c.keys(e, ETCD_KEYS, path);
  const out: ResolvedEtcd = { endpoints: [], dial_timeout_ms: ETCD_DEFAULTS.dial_timeout_ms, shared_health: null };
  if (!Array.isArray(e.endpoints) || e.endpoints.length === 0) {
    c.add(`${path}.endpoints`, `expected a non-empty list of client URLs such as "http://127.0.0.1:2379", got ${describe(e.endpoints)}`);
  } else {
    e.endpoints.forEach((u: unknown, i) => {
      if (typeof u === 'string' && ENDPOINT.test(u)) out.endpoints.push(u);
      else c.add(`${path}.endpoints[${i}]`, `expected a client URL such as "http://127.0.0.1:2379" (plain http), got ${describe(u)}`);
    });
  }
  out.dial_timeout_ms = c.duration(e.dial_timeout, `${path}.dial_timeout`, ETCD.fields.dial_timeout.min, ETCD.fields.dial_timeout.max, out.dial_timeout_ms);
  out.shared_health = checkSharedHealth(c, e.shared_health, `${path}.shared_health`);
  return out;
}

const SH = ETCD.fields.shared_health;
const SH_KEYS = keysOf(SH);
const NODE = new RegExp(SH.fields.node.pattern!);

/** `etcd.shared_health` (absent: off). */
function checkSharedHealth(c: Checker, raw: unknown, path: string): ResolvedSharedHealth | null {
  if (raw === undefined) return null;
  const s = c.object(raw, path, `an object with keys ${SH_KEYS.join(', ')} (all optional)`);
  if (!s) return null;
  c.keys(s, SH_KEYS, path);
  const out: ResolvedSharedHealth = { prefix: ETCD_DEFAULTS.shared_health_prefix, node: hostname().slice(0, 64), ttl_ms: ETCD_DEFAULTS.shared_health_ttl_ms };
  if (s.prefix !== undefined) {
    if (typeof s.prefix === 'string' && PREFIX.test(s.prefix)) out.prefix = s.prefix.endsWith('/') ? s.prefix : `${s.prefix}/`;
    else c.add(`${path}.prefix`, `expected an etcd key prefix such as "/switchyard/health/", got ${describe(s.prefix)}`);
  }
  if (s.node !== undefined) {
    if (typeof s.node === 'string' && NODE.test(s.node)) out.node = s.node;
    else c.add(`${path}.node`, `expected a node name of 1-64 of A-Z a-z 0-9 _ . -, got ${describe(s.node)}`);
  }
  out.ttl_ms = c.duration(s.ttl, `${path}.ttl`, SH.fields.ttl.min, SH.fields.ttl.max, out.ttl_ms);
  return out;
}

/** A pool's `backends_from.etcd` prefix (undefined, with an issue, when it is not one). */
export function etcdSource(c: Checker, prefix: unknown, path: string, check: ResolvedHealthCheck | null): ResolvedDnsSource | undefined {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    c.add(path, `expected an etcd key prefix such as "/switchyard/pools/api/", got ${describe(prefix)}`);
    return undefined;
  }
  return { kind: 'etcd', name: prefix, port: null, path, weight: null, backup: false, state: 'ready', health_check: check };
}
