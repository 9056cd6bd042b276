/**
 * The projection of a resolved configuration onto what the Rust data plane
 * reads (`EngineConfig` in `crates/switchyard-core/src/config.rs`, which
 * rejects unknown fields). Control-plane-only settings — health checks,
 * drain timeouts, slow start — stay on this side.
 */
import type { ResolvedConfig, ResolvedPool } from './types.js';
import { engineBackendTls, engineListenerTls } from './tls.js';

/** Weights to use instead of the configured ones (slow start), keyed `pool/address`. */
export type WeightOverrides = ReadonlyMap<string, number>;

/** The data-plane view of one pool. */
export function enginePool(p: ResolvedPool, weights?: WeightOverrides): object {
  return {
    name: p.name,
    algorithm: p.algorithm,
    connect_timeout_ms: p.connect_timeout_ms,
    retries: p.retries,
    hash_key: p.hash_key,
    virtual_nodes: p.virtual_nodes,
    table_size: p.table_size,
    hash_balance_factor: p.hash_balance_factor,
    passive: p.passive,
    panic_threshold: p.panic_threshold,
    on_down: p.on_down,
    backend_tls: p.backend_tls ? engineBackendTls(p.backend_tls) : null,
    backends: p.backends.map((b) => ({
      address: b.address,
      weight: weights?.get(`${p.name}/${b.address}`) ?? b.weight,
      backup: b.backup,
      state: b.state,
    })),
  };
}

/** The JSON the data plane's `start` / `update` take. */
export function engineConfigJson(c: ResolvedConfig, weights?: WeightOverrides): string {
  return JSON.stringify({
    workers: c.workers,
    accept: c.accept,
    listeners: c.listeners.map((l) => ({
      name: l.name,
      address: l.address,
      pool: l.pool,
      backlog: l.backlog,
      defer_accept: l.defer_accept,
      idle_timeout_ms: l.idle_timeout_ms,
      splice: l.splice,
      tls: l.tls ? engineListenerTls(l.tls) : null,
      sni_routes: l.sni_routes,
      peek_timeout_ms: l.peek_timeout_ms,
    })),
    pools: c.pools.map((p) => enginePool(p, weights)),
  });
}
