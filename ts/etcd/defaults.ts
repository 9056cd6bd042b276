/**
 * Defaults of the `etcd` section (its own module so `config/fields.ts` can show them in the
 * JSON Schema without importing the etcd client).
 */
export const ETCD_DEFAULTS = Object.freeze({
  /** The first read of a prefix at start: a cluster that does not answer in 5s is a configuration error. */
  dial_timeout_ms: 5_000,
  /** After a watch is cancelled (compaction) or a re-list fails, wait this long before listing again. */
  relist_ms: 500,
  /** Shared health: where verdicts go, and how long a silent node's verdicts count. */
  shared_health_prefix: '/switchyard/health/',
  shared_health_ttl_ms: 10_000,
});
