/**
 * The projection of a resolved configuration onto what the Rust data plane
 * reads: `EngineConfig` and `PoolConfig`, typed by the declarations generated
 * from the Rust structs (`ts/binding/types.generated.ts`), so a field the data
 * plane renames or adds fails `tsc` here. Control-plane-only settings — health
 * checks, drain timeouts, slow start — stay on this side.
 */
import type { BackendTlsConfig, EngineConfig, PoolConfig } from '../binding/types.generated.js';
import type { ResolvedConfig, ResolvedPool } from './types.js';
import { engineBackendTls, engineListenerTls } from './tls.js';
import { optionReaders, type PoolOption } from './validate.js';

/** Does `algorithm` read pool option `option`? (The data plane refuses options an algorithm ignores.) */
const reads = (algorithm: ResolvedPool['algorithm'], option: PoolOption): boolean => optionReaders(option).includes(algorithm);

/** Weights to use instead of the configured ones (slow start), keyed `pool/address`. */
export type WeightOverrides = ReadonlyMap<string, number>;

/** The data-plane view of one pool. `backendTls`: the projection already sent
 * (a pool-only change does not re-read the CA file). */
export function enginePool(p: ResolvedPool, weights?: WeightOverrides, backendTls?: BackendTlsConfig | null): PoolConfig {
  return {
    name: p.name,
    algorithm: p.algorithm,
    connect_timeout_ms: p.connect_timeout_ms,
    retries: p.retries,
    hash_key: reads(p.algorithm, 'hash_key') ? p.hash_key : 'source_ip',
    virtual_nodes: reads(p.algorithm, 'virtual_nodes') ? p.virtual_nodes : null,
    table_size: reads(p.algorithm, 'table_size') ? p.table_size : null,
    hash_balance_factor: reads(p.algorithm, 'hash_balance_factor') ? p.hash_balance_factor : null,
    passive: p.passive,
    panic_threshold: p.panic_threshold,
    on_down: p.on_down,
    backend_tls: backendTls !== undefined ? backendTls : p.backend_tls ? engineBackendTls(p.backend_tls) : null,
    // A request key, like hash_key, only for the algorithms that hash (a plan may change the algorithm).
    http: { ...p.http, key: reads(p.algorithm, 'hash_key') ? p.http.key : null },
    proxy_protocol: p.proxy_protocol,
    max_connections: p.max_connections,
    queue: p.queue,
    backends: p.backends.map((b) => ({
      address: b.address,
      weight: weights?.get(`${p.name}/${b.address}`) ?? b.weight,
      backup: b.backup,
      state: b.state,
      max_connections: b.max_connections ?? null,
    })),
  };
}

/** The whole data-plane configuration (reads the PEM files it names). */
export function engineConfig(c: ResolvedConfig, weights?: WeightOverrides): EngineConfig {
  return {
    workers: c.workers,
    accept: c.accept,
    max_connections: c.max_connections,
    listeners: c.listeners.map((l) => ({
      name: l.name,
      address: l.address,
      pool: l.pool,
      backlog: l.backlog,
      defer_accept: l.defer_accept,
      freebind: l.freebind,
      idle_timeout_ms: l.idle_timeout_ms,
      splice: l.splice,
      tls: l.tls ? engineListenerTls(l.tls) : null,
      sni_routes: l.sni_routes,
      peek_timeout_ms: l.peek_timeout_ms,
      access_log: l.access_log,
      protocol: l.protocol,
      http: l.http,
      udp: l.udp,
      proxy_protocol: l.proxy_protocol,
      max_connections: l.max_connections,
      allow: l.allow,
      deny: l.deny,
      per_source: l.per_source,
      max_lifetime_ms: l.max_lifetime_ms,
      max_lifetime_jitter: l.max_lifetime_jitter,
      rules: l.rules,
      trace_sample: l.trace_sample,
    })),
    pools: c.pools.map((p) => enginePool(p, weights)),
    rate_classes: c.rate_classes,
  };
}
