/**
 * Every default of the configuration, in one place. The validator fills these
 * in and docs/configuration.md lists them; change a value here, change it there.
 * Defaults the data plane owns (weights, table sizes, passive detection) come
 * from its catalog (`ts/binding/catalog.generated.ts`) and are not restated.
 */
import { availableParallelism } from 'node:os';
import { HTTP2_MAX_CONCURRENT_STREAMS, HTTP_KEEPALIVE, LIMITS, PASSIVE_DEFAULTS, PEEK_TIMEOUT_MS } from '../binding/catalog.generated.js';

/** Upper bound of `workers` (the data plane's); the default is clamped to it so it always validates. */
export const MAX_WORKERS = LIMITS.workers.max;

/** Defaults applied by `validateConfig` to every key the user left out. */
export const DEFAULTS = Object.freeze({
  /** Data-plane worker threads: one per CPU the process may use (clamped to 256). */
  workers: Math.min(availableParallelism(), MAX_WORKERS),
  /** One accept queue shared by the workers (the reuseport hash leaves bursts on a busy worker). */
  accept: 'shared' as const,
  /** listen(2) backlog; the kernel clamps it to net.core.somaxconn anyway. */
  backlog: 4096,
  /** TCP_DEFER_ACCEPT off: a server-speaks-first protocol would wait for its banner. */
  defer_accept: false,
  /** IP_FREEBIND off: binding an address this host does not hold is a mistake unless asked for. */
  freebind: false,
  /** Passthrough listeners wait this long for a whole ClientHello (the data plane's default). */
  peek_timeout_ms: PEEK_TIMEOUT_MS,
  /** A listener's max_lifetime is shortened by up to 10 % per connection, at random. */
  max_lifetime_jitter_percent: 10,
  /** A pool's queue holds at most this many waiting clients (bounded: HAProxy's default is unbounded). */
  queue_max: 1_000,
  /** A PROXY protocol header must arrive whole within 3s (the spec asks receivers to allow at least that). */
  proxy_timeout_ms: 3_000,
  /** No access log: one log line per connection is opt-in, per listener. */
  access_log: false,
  /** No decision traces: tracing is opt-in, per listener (or switched on at runtime). */
  trace_sample: 0,
  /** Close a connection idle in both directions for this long (60s). */
  idle_timeout_ms: 60_000,
  /** Copy small transfers, switch to splice(2) for bulk streams. */
  splice: 'auto',
  /** Each backend in turn. */
  algorithm: 'round_robin',
  /** Hash algorithms hash the client IP. */
  hash_key: 'source_ip',
  /** Ring points per weight unit (consistent_hash), as ketama/nginx. */
  virtual_nodes: LIMITS.virtual_nodes.default,
  /** Maglev table size: prime, Envoy's default. */
  table_size: LIMITS.table_size.default,
  /** Give up on a backend connect after 2s. */
  connect_timeout_ms: 2_000,
  /** After a failed connect, try up to 2 other backends. */
  retries: 2,
  /** Relative backend weight. */
  weight: LIMITS.weight.default,
  /** Backends are primaries unless marked as backups. */
  backup: false,
  /** Backends take traffic unless drained or in maintenance. */
  state: 'ready',
  /** Passive detection: 3 failures in a row eject for 10s, doubling up to 5m, at most half the pool. */
  passive: PASSIVE_DEFAULTS,
  /** Connections to a backend marked down keep running. */
  on_down: 'keep',
  /** A draining backend's connections are closed after 30s. */
  drain_timeout_ms: 30_000,
  /** Slow start is off. */
  slow_start_ms: 0,
  /** Active health checks (HAProxy's inter 2s / rise 2 / fall 3): a TCP connect every 2s ± 10%,
   * 1s to answer; the timeout and jitter defaults shrink with a shorter interval. */
  health_check: Object.freeze({
    type: 'tcp',
    interval_ms: 2_000,
    timeout_ms: 1_000,
    jitter_percent: 10,
    rise: 2,
    fall: 3,
    method: 'GET',
    path: '/',
    expect_status: Object.freeze([Object.freeze({ from: 200, to: 399 })]),
    verify: true,
  }),
  /** What a listener speaks: bytes (L4) unless told otherwise. */
  protocol: 'tcp',
  /** HTTP listeners (`listeners.NAME.http`): a 16 KiB request head of at most 100 fields, sent
   * within 10s (slowloris); a backend answers with its head within 60s; X-Forwarded-* and
   * X-Real-IP on, RFC 7239 Forwarded off. */
  http: Object.freeze({
    max_header_bytes: 16_384,
    max_headers: 100,
    header_read_timeout_ms: 10_000,
    request_timeout_ms: 60_000,
    x_forwarded: true,
    forwarded: false,
    access_log_sample: 1,
    h2c: false,
    max_concurrent_streams: HTTP2_MAX_CONCURRENT_STREAMS,
  }),
  /** What a pool adds for HTTP: the data plane's keep-alive defaults (32 idle connections per
   * backend, closed after 4s idle: below the backends' own keep-alive timeout, Node's being 5s);
   * no ejection on 5xx. */
  pool_http: Object.freeze({
    ...HTTP_KEEPALIVE,
    eject_after_5xx: 0,
    error_rate: null,
    http2: false,
  }),
  /** UDP listeners: flows end after 60s without a datagram (Envoy's udp_proxy; nginx waits 10 min,
   * DNS setups use 20s), at most 10,000 at once, no reply limit, any datagram size. */
  udp: Object.freeze({ flow_idle_timeout_ms: 60_000, max_flows: 10_000, responses: 0, max_datagram_bytes: 65_507 }),
  /** `passive.error_rate`: windows of 10s; at least 20 responses in a window to judge it. */
  error_rate: Object.freeze({ window_ms: 10_000, min_requests: 20 }),
  /** The admin API binds loopback only unless told otherwise. Port 8479: outside the range
   * Prometheus allocates to exporters (9100-9999) and not the default of Prometheus (9090),
   * HAProxy's stats page (8404), Envoy (9901), Kong (8001) or APISIX (9180). */
  admin_address: '127.0.0.1:8479',
} as const);
