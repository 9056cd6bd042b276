/** Counters pulled from the data plane (`StatsReport` in `crates/switchyard-core/src/stats.rs`). */

/** Counters of one backend. `bytes_in` went client → backend, `bytes_out` backend → client. */
export interface BackendStats {
  address: string;
  weight: number;
  backup: boolean;
  /** Share of new keys/connections this backend gets with every backend eligible. */
  share: number;
  /** Operator state. */
  state: 'ready' | 'drain' | 'maint';
  /** Active-check verdict as the data plane holds it. */
  health: 'up' | 'down' | 'unknown';
  /** Passively ejected right now, and for how much longer. */
  ejected: boolean;
  ejection_left_ms: number;
  /** Consecutive passive failures, and ejections in the current streak. */
  failures: number;
  ejections: number;
  /** Would a new connection be allowed here now (ready, not down, not ejected)? */
  available: boolean;
  active: number;
  total: number;
  bytes_in: number;
  bytes_out: number;
  connect_errors: number;
  connect_timeouts: number;
  connect_time_avg_us: number;
}

/** Counters of one pool. */
export interface PoolStats {
  name: string;
  algorithm: string;
  /** Live connections of the pool. */
  active: number;
  /** Smallest / largest share of a primary backend (table balance; 1/N each is perfect). */
  share_min: number;
  share_max: number;
  backends: BackendStats[];
}

/** Counters of one listener. */
export interface ListenerStats {
  name: string;
  address: string;
  pool: string;
  accepted: number;
  active: number;
  /** Connections closed because no backend could be reached. */
  no_backend: number;
  idle_timeouts: number;
}

/** Everything at one instant. */
export interface Stats {
  connections_active: number;
  /** Open connections per data-plane worker thread (index = worker). */
  worker_connections: number[];
  pipes_in_use: number;
  /** Directions moved to splice(2) since start. */
  splice_leases_total: number;
  listeners: ListenerStats[];
  pools: PoolStats[];
}
