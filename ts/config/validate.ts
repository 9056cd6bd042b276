/**
 * Hand-written validation of a raw configuration (parsed YAML/JSON or a JS
 * object) into a `ResolvedConfig`. It never stops at the first problem: every
 * issue is collected, so one run of `switchyard validate` shows them all.
 */
import { ConfigError } from '../errors.js';
import { Checker, describe, isObject, type Addr, type Obj } from './checker.js';
import { backendTls, baseDir, listenerTls, sniRoutes } from './tls.js';
import { DEFAULTS } from './defaults.js';
import { ALGORITHM_INFO, LIMITS, POOL_OPTIONS } from '../binding/catalog.generated.js';
import { backendHealthCheck, poolHealthCheck } from '../health/config.js';
import { BACKEND, CONFIG, LISTENER, PASSIVE, POOL, keysOf } from './fields.js';
import { checkAdmin } from './admin.js';
import { HTTP_ALPN, checkHttpUse, checkListenerHttp, checkPoolHttp, poolHashKey } from './http.js';
import { checkListenerUdp, checkUdpUse } from './udp.js';
import { checkPolicyListeners, checkTcpRules, readPolicy, type ReadPolicy } from './policy.js';
import { checkProxyAccept, checkProxyUse, checkProxyVersion } from './proxy.js';
import { backendLimit, checkListenerLimits, checkPoolLimits, checkQueueUse } from './limits.js';
import { checkBackendsFrom, checkDns, nameSource } from '../dns/config.js';
import { checkEtcd } from '../etcd/config.js';
import type { ResolvedDnsSource } from '../dns/types.js';
import type { AcceptMode, Algorithm, BackendState, HashKey, OnDown, ResolvedBackend, ResolvedConfig, ResolvedListener, ResolvedPool, SpliceMode } from './types.js';

const TOP_KEYS = keysOf(CONFIG);
const ACCEPT_MODES: readonly AcceptMode[] = ['shared', 'reuseport'];
const LISTENER_KEYS = keysOf(LISTENER);
const POOL_KEYS = keysOf(POOL);
const BACKEND_KEYS = keysOf(BACKEND);
const PASSIVE_KEYS = keysOf(PASSIVE);
const P = POOL.fields;
const L = LISTENER.fields;
/** A field's range as the `min, max` arguments of the Checker's readers. */
const span = (f: { min: number; max: number }) => [f.min, f.max] as const;
/** Every operator state of a backend. */
export const BACKEND_STATES = ['ready', 'drain', 'maint'] as const satisfies readonly BackendState[];
const ON_DOWN: readonly OnDown[] = ['keep', 'close'];
const SPLICE_MODES: readonly SpliceMode[] = ['auto', 'always', 'never'];
/** Every algorithm name, from the data plane's catalog (also the admin API's schema enum). */
export const ALGORITHMS: readonly Algorithm[] = ALGORITHM_INFO.map((a) => a.name);
/** A pool option that only some algorithms read. */
export type PoolOption = (typeof POOL_OPTIONS)[number];
/** The algorithms that read `option` (the catalog's `options`): giving it to another is a
 * mistake worth reporting, and the data plane refuses it. */
export function optionReaders(option: PoolOption): Algorithm[] {
  return ALGORITHM_INFO.filter((a) => (a.options as readonly string[]).includes(option)).map((a) => a.name);
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Two listeners collide if the ports match and the IPs match or one is the wildcard of its family. */
function conflicts(a: Addr, b: Addr): boolean {
  if (a.port === 0 || a.port !== b.port || a.v6 !== b.v6) return false;
  const any = a.v6 ? '[::]' : '0.0.0.0';
  return a.ip === b.ip || a.ip === any || b.ip === any;
}

function checkPool(c: Checker, name: string, raw: unknown, base: string): ResolvedPool {
  const path = `pools.${name}`;
  const pool: ResolvedPool = {
    name,
    algorithm: DEFAULTS.algorithm,
    connect_timeout_ms: DEFAULTS.connect_timeout_ms,
    retries: DEFAULTS.retries,
    hash_key: DEFAULTS.hash_key,
    virtual_nodes: DEFAULTS.virtual_nodes,
    table_size: DEFAULTS.table_size,
    hash_balance_factor: null,
    passive: { ...DEFAULTS.passive },
    panic_threshold: null,
    on_down: DEFAULTS.on_down,
    drain_timeout_ms: DEFAULTS.drain_timeout_ms,
    slow_start_ms: DEFAULTS.slow_start_ms,
    backend_tls: null,
    health_check: null,
    backends: [],
    http: { key: null, sticky: null, host: null, ...DEFAULTS.pool_http },
    proxy_protocol: null,
    max_connections: null,
    queue: null,
  };
  const p = c.object(raw, path, 'a pool object');
  if (!p) return pool;
  c.keys(p, POOL_KEYS, path);
  pool.algorithm = c.oneOf(p.algorithm, `${path}.algorithm`, ALGORITHMS, DEFAULTS.algorithm);
  pool.connect_timeout_ms = c.duration(p.connect_timeout, `${path}.connect_timeout`, ...span(P.connect_timeout), DEFAULTS.connect_timeout_ms);
  pool.retries = c.int(p.retries, `${path}.retries`, ...span(P.retries), DEFAULTS.retries);
  for (const option of POOL_OPTIONS) {
    const readers = optionReaders(option);
    if (p[option] !== undefined && !readers.includes(pool.algorithm)) {
      c.add(`${path}.${option}`, `applies only to ${readers.join(' and ')}, but the algorithm is ${describe(pool.algorithm)}`);
    }
  }
  const keys = poolHashKey(c, p.hash_key, `${path}.hash_key`);
  pool.hash_key = keys.hash_key;
  pool.http = checkPoolHttp(c, path, p, keys.key, base);
  pool.proxy_protocol = checkProxyVersion(c, p.proxy_protocol, `${path}.proxy_protocol`);
  Object.assign(pool, checkPoolLimits(c, p, path, pool.connect_timeout_ms));
  const { virtual_nodes: vn, table_size: ts, max_balance_factor: maxFactor, percent } = LIMITS;
  pool.virtual_nodes = c.int(p.virtual_nodes, `${path}.virtual_nodes`, vn.min, vn.max, vn.default);
  pool.table_size = c.int(p.table_size, `${path}.table_size`, ts.min, ts.max, ts.default);
  if (p.table_size !== undefined && Number.isInteger(p.table_size) && !isPrime(pool.table_size)) {
    c.add(`${path}.table_size`, `expected a prime number (e.g. 65537, 131071, 5000011), got ${describe(p.table_size)}`);
  }
  if (p.hash_balance_factor !== undefined) {
    const f = p.hash_balance_factor;
    if (typeof f !== 'number' || !Number.isFinite(f) || f <= 1 || f > maxFactor) {
      c.add(`${path}.hash_balance_factor`, `expected a number greater than 1 and at most ${maxFactor} (e.g. 1.25), got ${describe(f)}`);
    } else {
      pool.hash_balance_factor = f;
    }
  }
  if (p.passive !== undefined) {
    const pp = c.object(p.passive, `${path}.passive`, `an object with keys ${PASSIVE_KEYS.join(', ')}`);
    if (pp) {
      c.keys(pp, PASSIVE_KEYS, `${path}.passive`);
      const d = DEFAULTS.passive;
      pool.passive = {
        consecutive_failures: c.int(pp.consecutive_failures, `${path}.passive.consecutive_failures`, ...span(PASSIVE.fields.consecutive_failures), d.consecutive_failures),
        ejection_ms: c.duration(pp.ejection_time, `${path}.passive.ejection_time`, ...span(PASSIVE.fields.ejection_time), d.ejection_ms),
        max_ejection_ms: c.duration(pp.max_ejection_time, `${path}.passive.max_ejection_time`, ...span(PASSIVE.fields.max_ejection_time), d.max_ejection_ms),
        max_ejection_percent: c.int(pp.max_ejection_percent, `${path}.passive.max_ejection_percent`, percent.min, percent.max, d.max_ejection_percent),
      };
      if (pool.passive.max_ejection_ms < pool.passive.ejection_ms) {
        c.add(`${path}.passive.max_ejection_time`, `must be at least ejection_time (${pool.passive.ejection_ms} ms), got ${pool.passive.max_ejection_ms} ms`);
      }
    }
  }
  if (p.panic_threshold !== undefined) pool.panic_threshold = c.int(p.panic_threshold, `${path}.panic_threshold`, percent.min, percent.max, 0);
  pool.on_down = c.oneOf(p.on_down, `${path}.on_down`, ON_DOWN, DEFAULTS.on_down);
  pool.drain_timeout_ms = c.duration(p.drain_timeout, `${path}.drain_timeout`, ...span(P.drain_timeout), DEFAULTS.drain_timeout_ms);
  pool.backend_tls = backendTls(c, p.backend_tls, `${path}.backend_tls`, base);
  pool.slow_start_ms = c.duration(p.slow_start, `${path}.slow_start`, ...span(P.slow_start), DEFAULTS.slow_start_ms);
  const check = poolHealthCheck(c, p.health_check, `${path}.health_check`);
  pool.health_check = check.resolved;
  // Names to resolve (ts/dns/): host-name addresses and `backends_from`; the data plane never sees them.
  const sources: ResolvedDnsSource[] = [];
  const from = checkBackendsFrom(c, p.backends_from, `${path}.backends_from`, pool.health_check);
  if (from) sources.push(from);
  const withSources = () => (sources.length > 0 ? { ...pool, dns_sources: sources } : pool);
  if (p.backends === undefined && p.backends_from !== undefined) return withSources();
  if (!Array.isArray(p.backends)) {
    c.add(`${path}.backends`, p.backends === undefined ? 'missing (expected a non-empty array of backends, or backends_from)' : `expected a non-empty array of backends, got ${describe(p.backends)}`);
    return pool;
  }
  if (p.backends.length === 0 && p.backends_from === undefined) c.add(`${path}.backends`, `pool ${describe(name)} has no backends (expected a non-empty array), got []`);
  const seen = new Map<string, number>();
  p.backends.forEach((rawBackend: unknown, i) => {
    const bpath = `${path}.backends[${i}]`;
    const b = c.object(rawBackend, bpath, 'a backend object such as { address: "10.0.0.1:80" }');
    if (!b) return;
    c.keys(b, BACKEND_KEYS, bpath);
    const addr = c.backendAddress(b.address, `${bpath}.address`);
    const text = addr === undefined ? undefined : 'host' in addr ? `${addr.host.toLowerCase()}:${addr.port}` : addr.text;
    const backend: ResolvedBackend = {
      address: addr && !('host' in addr) ? addr.text : '',
      weight: c.int(b.weight, `${bpath}.weight`, LIMITS.weight.min, LIMITS.weight.max, LIMITS.weight.default),
      backup: c.bool(b.backup, `${bpath}.backup`, DEFAULTS.backup),
      state: c.oneOf(b.state, `${bpath}.state`, BACKEND_STATES, DEFAULTS.state),
      health_check: backendHealthCheck(c, check, b.health_check, `${bpath}.health_check`),
      ...backendLimit(c, b.max_connections, `${bpath}.max_connections`),
    };
    if (text !== undefined) {
      const first = seen.get(text);
      if (first !== undefined) c.add(`${bpath}.address`, `duplicate backend ${describe(b.address)} (same as ${path}.backends[${first}])`);
      else seen.set(text, i);
    }
    if (addr && 'host' in addr) sources.push(nameSource(addr, `${bpath}.address`, backend));
    else pool.backends.push(backend);
  });
  return withSources();
}

function checkListener(c: Checker, name: string, raw: unknown, pools: Obj | undefined, base: string, policy: ReadPolicy): [ResolvedListener, Addr | undefined] {
  const path = `listeners.${name}`;
  const listener: ResolvedListener = {
    name,
    address: '',
    pool: '',
    backlog: DEFAULTS.backlog,
    defer_accept: DEFAULTS.defer_accept,
    freebind: DEFAULTS.freebind,
    idle_timeout_ms: DEFAULTS.idle_timeout_ms,
    splice: DEFAULTS.splice,
    tls: null,
    sni_routes: null,
    peek_timeout_ms: DEFAULTS.peek_timeout_ms,
    access_log: DEFAULTS.access_log,
    protocol: DEFAULTS.protocol,
    http: null,
    udp: null,
    proxy_protocol: null,
    max_connections: null,
    allow: null,
    deny: [],
    per_source: null,
    max_lifetime_ms: null,
    max_lifetime_jitter: DEFAULTS.max_lifetime_jitter_percent / 100,
    rules: [],
    trace_sample: DEFAULTS.trace_sample,
  };
  const l = c.object(raw, path, 'a listener object such as { address: "0.0.0.0:80", pool: "web" }');
  if (!l) return [listener, undefined];
  c.keys(l, LISTENER_KEYS, path);
  const addr = c.address(l.address, `${path}.address`, 0);
  listener.address = addr?.text ?? '';
  // protocol, pool, routes, http (pool names are not checked when `pools` itself is broken: that is reported once).
  const rules = policy.rules[name];
  Object.assign(listener, checkListenerHttp(c, name, l, pools, rules === undefined ? undefined : { rules, classes: policy.names }));
  if (listener.protocol === 'tcp') listener.rules = checkTcpRules(c, name, rules, pools, l.pool, policy.names);
  listener.udp = checkListenerUdp(c, name, l, listener.protocol);
  listener.backlog = c.int(l.backlog, `${path}.backlog`, ...span(L.backlog), DEFAULTS.backlog);
  listener.defer_accept = c.bool(l.defer_accept, `${path}.defer_accept`, DEFAULTS.defer_accept);
  if (listener.defer_accept && process.platform !== 'linux') {
    c.add(`${path}.defer_accept`, `TCP_DEFER_ACCEPT exists on Linux only (this is ${process.platform})`);
  }
  listener.freebind = c.bool(l.freebind, `${path}.freebind`, DEFAULTS.freebind);
  if (listener.freebind && process.platform !== 'linux') {
    c.add(`${path}.freebind`, `IP_FREEBIND exists on Linux only (this is ${process.platform})`);
  }
  listener.idle_timeout_ms = c.duration(l.idle_timeout, `${path}.idle_timeout`, ...span(L.idle_timeout), DEFAULTS.idle_timeout_ms);
  listener.splice = c.oneOf(l.splice, `${path}.splice`, SPLICE_MODES, DEFAULTS.splice);
  listener.tls = listenerTls(c, l.tls, `${path}.tls`, base);
  listener.sni_routes = sniRoutes(c, l.sni_routes, `${path}.sni_routes`, pools ? Object.keys(pools) : []);
  listener.peek_timeout_ms = c.duration(l.peek_timeout, `${path}.peek_timeout`, ...span(L.peek_timeout), DEFAULTS.peek_timeout_ms);
  listener.access_log = c.bool(l.access_log, `${path}.access_log`, DEFAULTS.access_log);
  listener.proxy_protocol = checkProxyAccept(c, l.proxy_protocol, `${path}.proxy_protocol`);
  Object.assign(listener, checkListenerLimits(c, l, path));
  listener.trace_sample = traceSample(c, l.trace_sample, `${path}.trace_sample`, listener.protocol);
  if (listener.tls && listener.sni_routes) {
    c.add(`${path}.sni_routes`, 'a listener either terminates TLS (tls) or passes it through routed by SNI (sni_routes), not both');
  }
  // An http listener speaks HTTP/2 and HTTP/1.1: it offers both unless told otherwise, and nothing else.
  if (listener.protocol === 'http' && listener.tls) {
    const other = listener.tls.alpn.filter((p) => !HTTP_ALPN.includes(p));
    if (other.length > 0) c.add(`${path}.tls.alpn`, `an http listener speaks ${HTTP_ALPN.join(', ')}: offer some of them, not ${JSON.stringify(other)}`);
    if (l.tls !== undefined && isObject(l.tls) && l.tls.alpn === undefined) listener.tls.alpn = ['h2', 'http/1.1'];
  }
  return [listener, addr];
}

/** A listener's `trace_sample`: a share 0..1, not on udp listeners (flows are not traced). */
function traceSample(c: Checker, v: unknown, path: string, protocol: string): number {
  if (v === undefined) return DEFAULTS.trace_sample;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
    c.add(path, `expected a number from 0 to 1 (0.01 traces one connection or request in a hundred), got ${describe(v)}`);
  } else if (protocol === 'udp') {
    c.add(path, 'not for protocol: udp (flows are not traced)');
  } else {
    return v;
  }
  return DEFAULTS.trace_sample;
}

/**
 * Validate a raw configuration and fill in defaults.
 * @param raw    the parsed file or the object given to `defineConfig`
 * @param source where it came from (a file path), used in the error message
 * @throws ConfigError listing every issue found, never just the first
 */
export function validateConfig(raw: unknown, source: string): ResolvedConfig {
  const c = new Checker();
  const top = c.object(raw, '(root)', `an object with keys ${TOP_KEYS.join(', ')}`);
  if (!top) throw new ConfigError(source, c.issues);
  c.keys(top, TOP_KEYS, '');
  const workers = c.int(top.workers, 'workers', LIMITS.workers.min, LIMITS.workers.max, DEFAULTS.workers);
  const accept = c.oneOf(top.accept, 'accept', ACCEPT_MODES, DEFAULTS.accept);
  const maxConns = CONFIG.fields.max_connections;
  const max_connections = top.max_connections === undefined ? null : c.int(top.max_connections, 'max_connections', maxConns.min, maxConns.max, maxConns.min);
  const base = baseDir(source);
  // Read first: listeners compile their rules and check rate class names against it.
  const policy = readPolicy(c, top.policy);

  const listeners: ResolvedListener[] = [];
  // Ports are per transport: a tcp (or http) and a udp listener may share one (DNS, iperf3 do).
  const bound: [string, Addr, boolean][] = [];
  for (const [name, l] of c.named(top.listeners, 'listeners', 'listeners')) {
    const [listener, addr] = checkListener(c, name, l, isObject(top.pools) ? top.pools : undefined, base, policy);
    listeners.push(listener);
    if (!addr) continue;
    const udp = listener.protocol === 'udp';
    const clash = bound.find(([, other, otherUdp]) => otherUdp === udp && conflicts(addr, other));
    if (clash) {
      c.add(`listeners.${name}.address`, `${describe(addr.given)} conflicts with listeners.${clash[0]}.address (${describe(clash[1].given)}): same port on an overlapping address`);
    }
    bound.push([name, addr, udp]);
  }

  checkPolicyListeners(c, policy, new Map(listeners.map((l) => [l.name, l.protocol])));
  // After listeners so issues come out in the order files usually list them.
  const pools = c.named(top.pools, 'pools', 'pools').map(([name, p]) => checkPool(c, name, p, base));

  const [admin, adminAddr] = checkAdmin(c, top.admin, base);
  const adminClash = adminAddr && bound.find(([, other, udp]) => !udp && conflicts(adminAddr, other));
  if (adminClash) {
    c.add('admin.address', `${describe(adminAddr.given)} conflicts with listeners.${adminClash[0]}.address (${describe(adminClash[1].given)}): same port on an overlapping address`);
  }

  // Resolver settings only where they matter: a config without names resolves nothing.
  checkHttpUse(c, listeners, pools, optionReaders('hash_key'), (name) => {
    const rules = policy.rules[name];
    return Array.isArray(rules) ? rules.length : 0;
  });
  checkProxyUse(c, listeners, pools);
  checkQueueUse(c, pools);
  checkUdpUse(c, listeners, pools);

  const dns = top.dns !== undefined || pools.some((p) => p.dns_sources?.some((s) => s.kind !== 'etcd')) ? checkDns(c, top.dns) : undefined;
  const etcd = checkEtcd(c, top.etcd, pools.some((p) => p.dns_sources?.some((s) => s.kind === 'etcd')));

  if (c.issues.length > 0) throw new ConfigError(source, c.issues);
  return { workers, accept, max_connections, listeners, pools, admin, rate_classes: policy.classes, ...(dns ? { dns } : {}), ...(etcd ? { etcd } : {}) };
}
