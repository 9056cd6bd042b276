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
  GrpcCheckConfig,
  HealthCheckConfig,
  HealthCheckMethod,
  HealthCheckType,
  HttpCheckConfig,
  ResolvedGrpcCheck,
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
import type { EtcdConfig, ResolvedEtcd } from '../etcd/types.js';
export type { EtcdConfig, ResolvedEtcd } from '../etcd/types.js';
export type { BackendsFromConfig, DnsConfig, DnsFamily, ResolvedDns, ResolvedDnsSource } from '../dns/types.js';
export type { Duration, DurationUnit } from './duration.js';

/**
 * The data plane's enums, generated from its Rust definitions
 * (`ts/binding/types.generated.ts`): `AcceptMode` (how a listener's connections
 * are spread over the workers), `SpliceMode` (how bytes move), `Algorithm` (a
 * pool's balancing algorithm; `ALGORITHM_INFO` in `ts/binding/catalog.generated.ts`
 * says what each does and reads), `HashKey` (what keyed algorithms hash).
 */
export type { AcceptMode, Algorithm, HashKey, Protocol, ProxyVersion, SpliceMode } from '../binding/types.generated.js';
import type { AcceptMode, AdminState, Algorithm, HashKey, HttpListenerConfig, L4RuleConfig, RateClassConfig, HttpPoolConfig, OnDown, PerSourceConfig, Protocol, ProxyAcceptConfig, ProxyVersion, QueueConfig, SpliceMode, UdpListenerConfig } from '../binding/types.generated.js';
import type { Size } from './size.js';
export type { Size } from './size.js';

/** What a keyed algorithm hashes: the client address (`source_ip`, `source_ip_port`), or, for
 * requests of HTTP listeners, a header (`header:x-user`), a cookie (`cookie:sid`) or the path. */
export type PoolHashKey = HashKey | 'path' | `header:${string}` | `cookie:${string}`;

/** A route condition on a header, query parameter or cookie: a string (the value equals it),
 * `{ regex }` (the whole value matches; Rust regex syntax), or `true` (present). */
export type MatchValue = string | { regex: string } | true;

/** The conditions of a route; every one given must hold. */
export interface RouteMatch {
  /** `api.example.com` (exact, case-insensitive, port ignored) or `*.example.com` (any subdomain). */
  host?: string;
  /** The path (without the query) equals this. At most one of path, path_prefix, path_regex. */
  path?: string;
  /** The path starts with this. */
  path_prefix?: string;
  /** The whole path matches this regular expression (Rust `regex` syntax: no lookaround, no backreferences). */
  path_regex?: string;
  /** A method or a list of them (compared upper case). */
  method?: string | string[];
  /** Request headers by name (case-insensitive). */
  header?: Record<string, MatchValue>;
  /** Query parameters by name. */
  query?: Record<string, MatchValue>;
  /** Cookies by name (case-sensitive). */
  cookie?: Record<string, MatchValue>;
  /** The client's address is in one of these ranges (`10.0.0.0/8`, `::1`); behind another
   * balancer, the address its PROXY header declared. */
  source?: string | string[];
}

/** `deny`, `redirect`, `tag`, `rate_class` as a user writes them. */
export interface RuleActions {
  /** Refuse instead of forwarding: `true` (HTTP 403 with Switchyard's JSON error; tcp: close the
   * connection), a status (400..599), or `{ status, body }` (a text body). */
  deny?: true | number | { status?: number; body?: string };
  /** HTTP: answer with a redirect. Exactly one of `location` (this URL), `prefix` (this prefix
   * followed by the request's path and query) or `scheme` (same host, path and query). */
  redirect?: { location?: string; prefix?: string; scheme?: 'http' | 'https'; status?: 301 | 302 | 303 | 307 | 308 };
  /** A label for metrics (`switchyard_rule_actions_total`), the access log and traces. */
  tag?: string;
  /** A class of `policy.rate_classes` that matching requests (tcp: connections) count against,
   * per client address; over it: HTTP 429 with `Retry-After`, tcp: the connection is closed. */
  rate_class?: string;
}

/** Header changes, applied in order: remove, set (replace), add (append). */
export interface HeaderRules {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

/** One route of an HTTP listener. */
export interface RouteConfig extends RuleActions {
  /** Name in stats and logs. Default `LISTENER.routes[i]`. */
  name?: string;
  /** Conditions; absent: every request (a default route). */
  match?: RouteMatch;
  /** The pool that receives the matching requests (required unless the route answers itself
   * with `deny` or `redirect`). */
  pool?: string;
  /** Key of the pool's hash algorithm for this route (consistent_hash, maglev). Default: the pool's. */
  hash_key?: PoolHashKey;
  request_headers?: HeaderRules;
  response_headers?: HeaderRules;
  /** Largest request body; more gets 413. Default: no limit. */
  max_body_size?: Size;
  /** Ask a hook function (`lb.hook(name, fn)`) before choosing a backend. */
  hook?: RouteHook;
}

/** A route's hook: which function, how long to wait, and what to do instead. */
export interface RouteHook {
  /** The name the function is registered under. */
  name: string;
  /** Longest wait for the answer. Default `"2ms"`. */
  budget?: Duration;
  /** The decision on timeout, error, full queue, no function, or an invalid answer; `{}` keeps the route's pool. */
  fallback: HookFallback;
}

/** A hook's fallback decision. `pool` and `deny` exclude each other. */
export interface HookFallback {
  pool?: string;
  /** An HTTP status 400..599, or `true` (403; a tcp connection is closed). */
  deny?: number | true;
  hash_key?: string;
  tag?: string;
}

/** The conditions of a policy rule. http listeners: the route conditions (and `source`);
 * tcp listeners: `source`, `sni`, `port`, `tlv`. */
export interface PolicyMatch extends RouteMatch {
  /** tcp: the server name (ClientHello on passthrough, the handshake on TLS termination):
   * `api.example.com` or `*.example.com` (any name below it), or a list. A plain tcp listener
   * with such a rule reads the ClientHello first (as passthrough does). */
  sni?: string | string[];
  /** tcp: the destination port (the PROXY header's, else the listening socket's), or a list. */
  port?: number | number[];
  /** tcp behind a PROXY v2 sender: TLVs by name (`authority`, `alpn`, `unique_id`) or type
   * (`0xE0`..`0xEF`, `224`), their values compared as text. */
  tlv?: Record<string, MatchValue>;
}

/** One policy rule: conditions (`match`, all must hold; none: every request or connection),
 * then an action. Without `pool`, `deny` or `redirect` it forwards to the listener's pool. */
export interface PolicyRule extends RuleActions {
  /** Name in stats, logs, traces and errors. Default `LISTENER.policy[i]`. */
  name?: string;
  match?: PolicyMatch;
  /** Forward to this pool. Default: the listener's pool. */
  pool?: string;
  /** The selection key of the pool's hash algorithm. http: as a route's (`header:x-user`,
   * `cookie:sid`, `path`, `source_ip`); tcp: `source_ip`, `source_ip_port`, `sni` or `tlv:NAME`. */
  hash_key?: string;
  /** Ask a function registered with `lb.hook` before choosing a backend (see `RouteHook`); a
   * tcp rule's hook may choose a pool the listener routes to, close, or set the key. */
  hook?: RouteHook;
  /** http: header changes of matching requests and their responses. */
  request_headers?: HeaderRules;
  response_headers?: HeaderRules;
}

/** A rate class: `limit` requests (tcp: connections) per `per`, per client address or for all
 * of its traffic (`by`), with bursts up to `limit`. */
export interface RateClassOptions {
  limit: number;
  /** Default `"1s"`. */
  per?: Duration;
  /** `source` (default): a bucket per client address; `all`: one bucket for everything the
   * class counts, across its rules and listeners (a global limit). */
  by?: 'source' | 'all';
}

/** The `policy` section: rules by listener name, and the rate classes they name. */
export interface PolicyConfig {
  rules?: Record<string, PolicyRule[]>;
  rate_classes?: Record<string, RateClassOptions>;
}

/** Limits and forwarding headers of an HTTP listener. */
export interface ListenerHttpConfig {
  /** Largest request head (at least 8192 bytes). Default `"16k"`. */
  max_header_size?: Size;
  /** Most request header fields. Default 100. */
  max_headers?: number;
  /** A client must send its whole request head within this (slowloris). Default `"10s"`. */
  header_read_timeout?: Duration;
  /** A backend must answer with its response head within this. Default `"60s"`. */
  request_timeout?: Duration;
  /** X-Forwarded-For (appended), -Proto, -Host and X-Real-IP. Default true. */
  x_forwarded?: boolean;
  /** An RFC 7239 Forwarded element. Default false. */
  forwarded?: boolean;
  /** With `access_log`: the share of requests logged, in (0, 1] (0.1: one in ten). Default 1. */
  access_log_sample?: number;
  /** A plain listener also serves HTTP/2 with prior knowledge (h2c) beside HTTP/1.1; TLS
   * listeners choose by ALPN. Default false. */
  h2c?: boolean;
  /** HTTP/2: streams one client connection may have open at once; more are refused. Default 100. */
  max_concurrent_streams?: number;
}

/** Sticky sessions: Switchyard sets a cookie holding HMAC(secret, backend), so the cookie reveals
 * no address and stays valid across restarts and every node sharing the secret. The secret is
 * given exactly one way: `secret`, `secret_file` or `secret_env` (at least 16 characters). */
export interface StickyConfig {
  /** Cookie name, e.g. `SY_STICKY`. */
  cookie: string;
  secret?: string;
  /** Read the secret from this file (relative to the configuration file). */
  secret_file?: string;
  /** Read the secret from this environment variable. */
  secret_env?: string;
  /** Cookie Max-Age (whole seconds). Default: a session cookie. */
  max_age?: Duration;
}

/** Idle keep-alive connections to a pool's backends (HTTP listeners). */
export interface KeepaliveConfig {
  /** Idle connections kept per backend (0: one connection per request). Default 32. */
  max_idle_per_backend?: number;
  /** Close an idle backend connection after this; keep it below the backends' own keep-alive
   * timeout (Node's is 5s). Default `"4s"`. */
  idle_timeout?: Duration;
  /** Pools with `http2`: most HTTP/2 connections per backend. Default 4. */
  http2_connections?: number;
  /** Pools with `http2`: streams in flight on one connection before another is opened. Default 100. */
  http2_streams?: number;
}

/** An HTTP listener's compiled table, as the data plane reads it (routes in order; the
 * listener's `pool`, if given, is the last route). */
export type ResolvedListenerHttp = HttpListenerConfig;
/** What a pool adds for HTTP listeners, as the data plane reads it (request key, sticky cookie
 * with its secret read, Host, keep-alive, 5xx ejection). */
export type ResolvedPoolHttp = HttpPoolConfig;

/** One listener (a frontend). */
/** A UDP listener's flows (`protocol: udp`). */
export interface ListenerUdpConfig {
  /** A flow with no datagram either way for this long ends. Default `"60s"`. */
  flow_idle_timeout?: Duration;
  /** Most flows at once; a datagram that would start one more is dropped. Default 10000. */
  max_flows?: number;
  /** Replies after which a flow ends (1 for DNS: each query balanced on its own); 0: no limit. Default 0. */
  responses?: number;
  /** Largest datagram forwarded; a larger one is dropped and counted. Default 65507 bytes (any). */
  max_datagram_size?: Size;
}

export interface ListenerConfig {
  /** `host:port` to bind, e.g. `127.0.0.1:8080` or `[::1]:8080`; port 0 picks a free port. */
  address: string;
  /** Name of the pool that receives this listener's connections. Required for `tcp`; for
   * `http`, the default route (appended after `routes`). */
  pool?: string;
  /** `tcp` (default) forwards bytes; `http` routes and balances each HTTP/1.1 request or HTTP/2
   * stream; `udp` pins each client's datagrams (a flow) to a backend. */
  protocol?: Protocol;
  /** Protocol http: routes, first match wins; an unmatched request gets 404. */
  routes?: RouteConfig[];
  /** Protocol http: limits and forwarding headers. */
  http?: ListenerHttpConfig;
  /** Protocol udp: flows and their limits. */
  udp?: ListenerUdpConfig;
  /** listen(2) backlog. Default 4096 (the kernel clamps to net.core.somaxconn). */
  backlog?: number;
  /** Accept a connection only once the client has sent data (Linux TCP_DEFER_ACCEPT, 1 s), so
   * the request leaves with the backend connect. For client-speaks-first protocols (HTTP, TLS);
   * never for server-first ones (SMTP, MySQL, FTP: their banner would wait ≥ 1 s). Default false. */
  defer_accept?: boolean;
  /** Bind `address` even if no interface of this host holds it yet (Linux `IP_FREEBIND`, TCP and
   * UDP): a standby balancer listens on the virtual IP that keepalived moves to it on failover,
   * and serves as soon as it arrives. Read when the socket is bound. Default false. */
  freebind?: boolean;
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
  /** Behind another balancer: expect a PROXY protocol header (v1 or v2) first, from these
   * sources only; its source address is then the client's. */
  proxy_protocol?: ProxyAcceptOptions;
  /** Most connections open at once; at the limit new clients wait in the backlog. */
  max_connections?: number;
  /** Only sources in these ranges (`10.0.0.0/8`, `::1`) may connect. */
  allow?: string[];
  /** Sources in these ranges are closed at once (checked before `allow`). */
  deny?: string[];
  /** Limits per client address. */
  per_source?: { max_connections?: number; rate?: { connections: number; per: Duration } };
  /** TCP: close a connection this long after it started, whatever it does. */
  max_lifetime?: Duration;
  /** Percent (0..50, default 10) shaved off `max_lifetime` per connection at random. */
  max_lifetime_jitter?: number;
  /** TCP and HTTP: the share (0..1, default 0) of connections (HTTP: requests) whose balancing
   * decision is traced: `lb.traces()`, `GET /api/traces`. */
  trace_sample?: number;
}

/** `proxy_protocol` of a listener. */
export interface ProxyAcceptOptions {
  /** Sources allowed to send a header: IP addresses or CIDRs (`10.0.0.0/8`, `::1`). */
  trusted: string[];
  /** How long a connection may take to send its whole header. Default `"3s"`. */
  timeout?: Duration;
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
  /** HTTP listeners: 5xx responses in a row that eject a backend. Default 0 (off). */
  consecutive_5xx?: number;
  /** HTTP listeners: eject a backend when at least `percent` % of its responses in a window are
   * 5xx (e.g. `{ percent: 50 }`: "more than half fail"). Off when absent. */
  error_rate?: { percent: number; window?: Duration; min_requests?: number };
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
  /** Most connections (HTTP: requests in flight) at once; default: the pool's. */
  max_connections?: number;
}

/** A pool of backends and how to choose among them. */
export interface PoolConfig {
  /** Selection algorithm. Default `round_robin`. */
  algorithm?: Algorithm;
  /** Give up connecting to a backend after this long. Default `"2s"`. */
  connect_timeout?: Duration;
  /** After a failed connect, try this many other backends. Default 2. */
  retries?: number;
  /** consistent_hash, maglev: what to hash. Default `source_ip`. `header:NAME`, `cookie:NAME`
   * and `path` need every listener using the pool to speak HTTP. */
  hash_key?: PoolHashKey;
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
  /** HTTP listeners: sticky sessions by a cookie Switchyard sets. */
  sticky?: StickyConfig;
  /** HTTP listeners: send this Host to the backends. Default: the client's. */
  host_header?: string;
  /** HTTP listeners: idle connections to the backends kept for reuse. */
  keepalive?: KeepaliveConfig;
  /** HTTP listeners: HTTP/2 to the backends (h2 over TLS via ALPN with `backend_tls`, else h2c);
   * requests become streams over a few shared connections per backend. Default false. */
  http2?: boolean;
  /** Write a PROXY protocol header before the first byte to each backend connection (pools of
   * tcp listeners only: HTTP reuses backend connections across clients). */
  proxy_protocol?: ProxyVersion;
  /** Most connections (HTTP: requests in flight) per backend at once (HAProxy `maxconn`). */
  max_connections?: number;
  /** Clients waiting while every backend is full (HAProxy `maxqueue`, `timeout queue`). */
  queue?: { max?: number; timeout?: Duration };
}

/** The whole configuration, as written in YAML, JSON or `defineConfig({...})`. */
export interface SwitchyardConfig {
  /** Data-plane worker threads. Default: number of CPU cores. */
  workers?: number;
  /** How connections are spread over the workers: `shared` (one accept queue, the least loaded
   * worker first; Linux) or `reuseport` (one SO_REUSEPORT socket per worker, the kernel hashes).
   * Default `shared`. Fixed at start. */
  accept?: AcceptMode;
  /** Most client connections open at once in the whole balancer (HAProxy's global `maxconn`).
   * Default: derived from `ulimit -n` (two descriptors per connection, keeping a reserve). */
  max_connections?: number;
  listeners: Record<string, ListenerConfig>;
  pools: Record<string, PoolConfig>;
  /** The admin HTTP API, metrics and dashboard. Off when absent. */
  admin?: AdminConfig;
  /** How backend host names and SRV records are resolved. Defaults apply when absent. */
  dns?: DnsConfig;
  /** The etcd cluster that `backends_from.etcd` prefixes are read from. Required when one is used. */
  etcd?: EtcdConfig;
  /** Rules per listener compiled into its route table, and the rate classes they count
   * against (see `definePolicy` and docs/policy.md). */
  policy?: PolicyConfig;
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
  freebind: boolean;
  idle_timeout_ms: number;
  splice: SpliceMode;
  tls: ResolvedListenerTls | null;
  sni_routes: { name: string; pool: string }[] | null;
  peek_timeout_ms: number;
  access_log: boolean;
  protocol: Protocol;
  /** Protocol http: the compiled routes and limits; null for tcp. */
  http: ResolvedListenerHttp | null;
  /** Protocol udp: flow settings; null otherwise. */
  udp: UdpListenerConfig | null;
  /** PROXY protocol headers expected from these sources; null: none. */
  proxy_protocol: ProxyAcceptConfig | null;
  max_connections: number | null;
  /** null: every source may connect (unless denied). */
  allow: string[] | null;
  deny: string[];
  per_source: PerSourceConfig | null;
  max_lifetime_ms: number | null;
  /** A fraction 0..0.5. */
  max_lifetime_jitter: number;
  /** tcp: the compiled policy rules (`policy.rules.NAME`), first match wins; [] otherwise. */
  rules: L4RuleConfig[];
  /** A fraction 0..1 (0: no traces). */
  trace_sample: number;
}

/** A backend after validation. */
export interface ResolvedBackend {
  address: string;
  weight: number;
  backup: boolean;
  state: BackendState;
  /** The effective active check (the pool's merged with the backend's); null: not checked. */
  health_check: ResolvedHealthCheck | null;
  /** Its own connection limit, overriding the pool's; absent: the pool's. */
  max_connections?: number;
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
  /** What HTTP listeners use of the pool (defaults when nothing was configured). `hash_key`
   * above keeps the connection key; a request key (header, cookie, path) is `http.key`. */
  http: ResolvedPoolHttp;
  /** The PROXY protocol header written to each backend connection; null: none. */
  proxy_protocol: ProxyVersion | null;
  /** Connections (HTTP: requests in flight) per backend; null: no limit. */
  max_connections: number | null;
  /** Waiting while all backends are full; null: refuse at once. */
  queue: QueueConfig | null;
}

/** The validated configuration that crosses into Rust as JSON. */
export interface ResolvedConfig {
  workers: number;
  accept: AcceptMode;
  /** The engine-wide connection limit; null: derived from the descriptor limit. */
  max_connections: number | null;
  listeners: ResolvedListener[];
  pools: ResolvedPool[];
  /** Null when the admin API is off. */
  admin: ResolvedAdmin | null;
  /** Present when a `dns` section is given or a pool has `dns_sources`. */
  dns?: ResolvedDns;
  /** Present when an `etcd` section is given. */
  etcd?: ResolvedEtcd;
  /** `policy.rate_classes`, compiled. */
  rate_classes: RateClassConfig[];
}
