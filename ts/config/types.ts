/**
 * Configuration types: what a user writes (`SwitchyardConfig`, the input of
 * `defineConfig`) and what the control plane hands to the data plane after
 * validation (`ResolvedConfig`: every default filled in, durations in ms).
 *
 * `ts/config/engine.ts` projects the resolved shape onto the JSON that
 * `crates/switchyard-core/src/config.rs` parses; keep those two in step.
 */

import type { HealthCheckConfig, ResolvedHealthCheck } from '../health/types.js';

export type {
  HealthCheckConfig,
  HealthCheckMethod,
  HealthCheckType,
  HttpCheckConfig,
  ResolvedHealthCheck,
  ResolvedHttpCheck,
  ResolvedTlsCheck,
  StatusRange,
  TlsCheckConfig,
} from '../health/types.js';

import type { BackendTlsConfig, ListenerTlsConfig, ResolvedBackendTls, ResolvedListenerTls } from './tls.js';
export type { BackendTlsConfig, ListenerTlsConfig, ResolvedBackendTls, ResolvedCertificate, ResolvedListenerTls } from './tls.js';

import type { Duration } from './duration.js';
import type { BackendsFromConfig, DnsConfig, ResolvedDns, ResolvedDnsSource } from '../dns/types.js';
export type { BackendsFromConfig, DnsConfig, DnsFamily, ResolvedDns, ResolvedDnsSource } from '../dns/types.js';
export type { Duration, DurationUnit } from './duration.js';

/**
 * The data plane's enums, generated from its Rust definitions
 * (`ts/binding/types.generated.ts`): `AcceptMode` (how a listener's connections
 * are spread over the workers), `SpliceMode` (how bytes move), `Algorithm` (a
 * pool's balancing algorithm; `ALGORITHM_INFO` in `ts/binding/catalog.generated.ts`
 * says what each does and reads), `HashKey` (what keyed algorithms hash).
 */
export type { AcceptMode, Algorithm, HashKey, SpliceMode } from '../binding/types.generated.js';
import type { AcceptMode, AdminState, Algorithm, HashKey, OnDown, SpliceMode } from '../binding/types.generated.js';

/** One TCP listener (a frontend). */
export interface ListenerConfig {
  /** `host:port` to bind, e.g. `127.0.0.1:8080` or `[::1]:8080`; port 0 picks a free port. */
  address: string;
  /** Name of the pool that receives this listener's connections. */
  pool: string;
  /** listen(2) backlog. Default 4096 (the kernel clamps to net.core.somaxconn). */
  backlog?: number;
  /** Accept a connection only once the client has sent data (Linux TCP_DEFER_ACCEPT, 1 s), so
   * the request leaves with the backend connect. For client-speaks-first protocols (HTTP, TLS);
   * never for server-first ones (SMTP, MySQL, FTP: their banner would wait ≥ 1 s). Default false. */
  defer_accept?: boolean;
  /** Close a connection after this long without a byte in either direction. Default `"60s"`. */
  idle_timeout?: Duration;
  /** `auto` (copy, move to splice(2) for bulk streams), `always`, or `never`. Default `auto`. */
  splice?: SpliceMode;
  /** Terminate TLS here (certificates chosen by SNI). */
  tls?: ListenerTlsConfig;
  /** TLS passthrough: route by the ClientHello's server name (`name` or `*.domain`) to a pool;
   * `pool` is the default. Bytes reach the backend untouched. */
  sni_routes?: Record<string, string>;
  /** Passthrough: how long to wait for a whole ClientHello. Default `"5s"`. */
  peek_timeout?: Duration;
  /** Log one `access` line per client connection: client, pool, backend, bytes each way,
   * duration and how it ended. Default false. */
  access_log?: boolean;
}

/** Operator state of a backend: `ready` takes traffic, `drain` takes no new connections and
 * lets existing ones finish (closing the rest after the pool's `drain_timeout`), `maint` takes
 * no new connections. */
export type BackendState = AdminState;

/** What to do with established connections when a backend is marked down by its check. */
export type { OnDown };

/** Passive detection on real traffic (in the data plane). */
export interface PassiveConfig {
  /** Consecutive connect failures, connect timeouts or resets before the first byte that
   * eject a backend. 0 turns passive detection off. Default 3. */
  consecutive_failures?: number;
  /** First ejection time; doubles on each repeated ejection. Default `"10s"`. */
  ejection_time?: Duration;
  /** Cap of the doubling. Default `"5m"`. */
  max_ejection_time?: Duration;
  /** Never eject more than this percentage of the pool. Default 50. */
  max_ejection_percent?: number;
}

/** One backend server of a pool. */
export interface BackendConfig {
  /** `host:port` of the backend: an IP literal, `localhost`, or a host name (`api.internal:8080`)
   * that is resolved at start and again as its TTL runs out; each address it resolves to is a
   * backend with this entry's weight, backup, state and health check. */
  address: string;
  /** Relative weight, default 1. Weight 0 takes no new connections. */
  weight?: number;
  /** A backup receives traffic only when no primary backend is available. */
  backup?: boolean;
  /** Operator state. Default `ready`. */
  state?: BackendState;
  /** Override of the pool's `health_check`, deep-merged over it (may also be given alone). */
  health_check?: HealthCheckConfig;
}

/** A pool of backends and how to choose among them. */
export interface PoolConfig {
  /** Selection algorithm. Default `round_robin`. */
  algorithm?: Algorithm;
  /** Give up connecting to a backend after this long. Default `"2s"`. */
  connect_timeout?: Duration;
  /** After a failed connect, try this many other backends. Default 2. */
  retries?: number;
  /** consistent_hash, maglev: what to hash. Default `source_ip`. */
  hash_key?: HashKey;
  /** consistent_hash: ring points per weight unit. Default 160. */
  virtual_nodes?: number;
  /** maglev: lookup table size, a prime up to 5000011. Default 65537. */
  table_size?: number;
  /**
   * consistent_hash, maglev: bounded load. No backend takes more than this
   * factor × the pool's average active connections (e.g. 1.25); a key whose
   * backend is full walks on to its next choice. Default: off.
   */
  hash_balance_factor?: number;
  /** Passive ejection policy. */
  passive?: PassiveConfig;
  /** Fail open: when no primary or backup is available and fewer than this percentage of
   * primaries is healthy, use every primary not in maintenance. Default: off. */
  panic_threshold?: number;
  /** Established connections of a backend marked down: `keep` (default) or `close`. */
  on_down?: OnDown;
  /** How long a draining backend's connections may run before they are closed. Default `"30s"`. */
  drain_timeout?: Duration;
  /** Ramp a recovered backend's weight from 10% to 100% over this time. Default: off. */
  slow_start?: Duration;
  /** TLS from the balancer to the backends (verification on by default). */
  backend_tls?: BackendTlsConfig;
  /** Active health check of every backend. Default: none (backends count as healthy). */
  health_check?: HealthCheckConfig;
  /** The backends. Required unless `backends_from` is given. */
  backends?: BackendConfig[];
  /** Backends from DNS SRV records (with or instead of `backends`). */
  backends_from?: BackendsFromConfig;
}

/** The whole configuration, as written in YAML, JSON or `defineConfig({...})`. */
export interface SwitchyardConfig {
  /** Data-plane worker threads. Default: number of CPU cores. */
  workers?: number;
  /** How connections are spread over the workers: `shared` (one accept queue, the least loaded
   * worker first; Linux) or `reuseport` (one SO_REUSEPORT socket per worker, the kernel hashes).
   * Default `shared`. Fixed at start. */
  accept?: AcceptMode;
  listeners: Record<string, ListenerConfig>;
  pools: Record<string, PoolConfig>;
  /** The admin HTTP API, metrics and dashboard. Off when absent. */
  admin?: AdminConfig;
  /** How backend host names and SRV records are resolved. Defaults apply when absent. */
  dns?: DnsConfig;
}

/** The admin HTTP API (`/api/*`), Prometheus metrics (`/metrics`) and dashboard (`/`). */
export interface AdminConfig {
  /** `host:port` to bind. Default `127.0.0.1:8479`. */
  address?: string;
  /** Bearer token (16..1024 printable ASCII characters) required on every request except
   * `/healthz` and `/readyz`. A token (given one of the three ways) is required when the
   * address is not loopback (127.0.0.0/8, ::1). */
  token?: string;
  /** Read the token from this file instead (relative to the configuration file; surrounding
   * whitespace, such as a trailing newline, is dropped). A missing file is a configuration error. */
  token_file?: string;
  /** Read the token from this environment variable instead (e.g. `SWITCHYARD_ADMIN_TOKEN`). */
  token_env?: string;
}

/** The admin section after validation. */
export interface ResolvedAdmin {
  address: string;
  token: string | null;
}

/** A listener after validation. */
export interface ResolvedListener {
  name: string;
  address: string;
  pool: string;
  backlog: number;
  defer_accept: boolean;
  idle_timeout_ms: number;
  splice: SpliceMode;
  tls: ResolvedListenerTls | null;
  sni_routes: { name: string; pool: string }[] | null;
  peek_timeout_ms: number;
  access_log: boolean;
}

/** A backend after validation. */
export interface ResolvedBackend {
  address: string;
  weight: number;
  backup: boolean;
  state: BackendState;
  /** The effective active check (the pool's merged with the backend's); null: not checked. */
  health_check: ResolvedHealthCheck | null;
}

/** Passive policy after validation (durations in ms). */
export interface ResolvedPassive {
  consecutive_failures: number;
  ejection_ms: number;
  max_ejection_ms: number;
  max_ejection_percent: number;
}

/** A pool after validation. */
export interface ResolvedPool {
  name: string;
  algorithm: Algorithm;
  connect_timeout_ms: number;
  retries: number;
  hash_key: HashKey;
  virtual_nodes: number;
  table_size: number;
  hash_balance_factor: number | null;
  passive: ResolvedPassive;
  panic_threshold: number | null;
  on_down: OnDown;
  drain_timeout_ms: number;
  /** 0 = off. */
  slow_start_ms: number;
  backend_tls: ResolvedBackendTls | null;
  /** The pool's own check, which a backend added without an override gets; null: none. */
  health_check: ResolvedHealthCheck | null;
  /** The backends the data plane receives: IP addresses only (with `dns_sources`, those the
   * names resolved to, once the balancer has resolved them). */
  backends: ResolvedBackend[];
  /** Names the backends also come from (host-name addresses, `backends_from`); absent when none. */
  dns_sources?: ResolvedDnsSource[];
}

/** The validated configuration that crosses into Rust as JSON. */
export interface ResolvedConfig {
  workers: number;
  accept: AcceptMode;
  listeners: ResolvedListener[];
  pools: ResolvedPool[];
  /** Null when the admin API is off. */
  admin: ResolvedAdmin | null;
  /** Present when a `dns` section is given or a pool has `dns_sources`. */
  dns?: ResolvedDns;
}
