/**
 * Counters pulled from the data plane. The types are generated from the Rust
 * reports (`crates/switchyard-core/src/stats.rs`), so they cannot drift from
 * what the data plane sends; these are their public names.
 */
export type {
  BackendReport as BackendStats,
  BuildReport as BuildStats,
  HookReport as HookStats,
  ListenerReport as ListenerStats,
  PoolReport as PoolStats,
  RouteReport as RouteStats,
  StatsReport as Stats,
  TlsReport as TlsStats,
} from './binding/types.generated.js';
