/**
 * Active health check types: what a user writes under `pools.NAME.health_check`
 * (and per backend, deep-merged over the pool's), and the effective check per
 * backend after validation (durations in ms, every default filled in).
 * Re-exported from `ts/config/types.ts`.
 */

import type { Duration } from '../config/duration.js';

/** `tcp`: the connect succeeds. `http`: a request gets an expected answer. `tls`: the handshake succeeds.
 * `grpc`: the standard gRPC health service (`grpc.health.v1.Health/Check`) answers SERVING.
 * `udp`: a datagram gets a reply (containing the expected bytes), for pools behind udp listeners. */
export type HealthCheckType = 'tcp' | 'http' | 'tls' | 'grpc' | 'udp';

/** HTTP methods a check may use. */
export type HealthCheckMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS' | 'PATCH';

/** The request of an `http` check and what its answer must look like. */
export interface HttpCheckConfig {
  /** Default `GET`. */
  method?: HealthCheckMethod;
  /** Request path, starting with `/`. Default `/`. */
  path?: string;
  /** Host header. Default: the probed address (`ip:port`). */
  host?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Accepted status codes: codes (`200`, `"204"`) or ranges (`"200-399"`). Default `["200-399"]`. */
  expect_status?: (number | string)[];
  /** The body must contain this substring (only the first 64 KiB are read). */
  expect_body?: string;
  /** Use HTTPS to the backend (settings from `tls`). Default false. */
  tls?: boolean;
  /** Server name (SNI) sent with `tls: true`; overrides `tls.sni`. */
  sni?: string;
}

/** The call of a `grpc` check: `grpc.health.v1.Health/Check` over HTTP/2 (h2c unless `tls`). */
export interface GrpcCheckConfig {
  /** The service whose status is asked. Default `""`: the whole server. */
  service?: string;
  /** HTTP/2 over TLS (ALPN `h2`) with the settings of `tls`. Default false: h2c (prior knowledge). */
  tls?: boolean;
  /** The `:authority` sent. Default: the probed address (`ip:port`). */
  authority?: string;
}

/** The exchange of a `udp` check: one datagram sent, one reply expected. Give `send` or `send_hex`. */
export interface UdpCheckConfig {
  /** The datagram sent, as text (UTF-8). */
  send?: string;
  /** The datagram sent, as hex bytes (`"1234 0100"`: pairs of hex digits, spaces allowed). */
  send_hex?: string;
  /** The reply must contain this text. Default: any reply passes. */
  expect?: string;
  /** The reply must contain these bytes (hex, as `send_hex`). */
  expect_hex?: string;
}

/** The handshake of a `tls` check, or of an `http`/`grpc` check with `http.tls`/`grpc.tls: true`. */
export interface TlsCheckConfig {
  /** Server name (SNI) to send and to verify the certificate against. Default: none (the IP is verified). */
  sni?: string;
  /** Verify the certificate chain, dates and name. Default true. */
  verify?: boolean;
  /** Path of a PEM CA bundle to trust instead of the system roots. */
  ca?: string;
}

/** `pools.NAME.health_check`, and `backends[i].health_check` (deep-merged over the pool's). */
export interface HealthCheckConfig {
  /** Default `tcp`. */
  type?: HealthCheckType;
  /** Time between checks. Default `"2s"`. */
  interval?: Duration;
  /** Give up on one check after this long (connect and answer); at most `interval`. Default `"1s"`. */
  timeout?: Duration;
  /** A random 0..jitter is added to each interval, so checks do not bunch. Default: 10% of `interval`. */
  jitter?: Duration;
  /** Consecutive successes that mark a backend up. Default 2. */
  rise?: number;
  /** Consecutive failures that mark a backend down. Default 3. */
  fall?: number;
  /** Time between checks while the backend is down. Default: `interval`. */
  down_interval?: Duration;
  /** Port to check. Default: the backend's port. */
  port?: number;
  /** Only for `type: http`. */
  http?: HttpCheckConfig;
  /** Only for `type: grpc`. */
  grpc?: GrpcCheckConfig;
  /** Only for `type: udp` (and required there). */
  udp?: UdpCheckConfig;
  /** Only for `type: tls`, or `http`/`grpc` with `http.tls`/`grpc.tls: true`. */
  tls?: TlsCheckConfig;
}

/** An inclusive range of accepted HTTP status codes. */
export interface StatusRange {
  from: number;
  to: number;
}

/** An `http` check after validation. */
export interface ResolvedHttpCheck {
  method: HealthCheckMethod;
  path: string;
  /** null: the probed `ip:port`. */
  host: string | null;
  headers: Record<string, string>;
  expect_status: StatusRange[];
  expect_body: string | null;
}

/** A `grpc` check after validation. */
export interface ResolvedGrpcCheck {
  /** `""`: the whole server. */
  service: string;
  /** null: the probed `ip:port`. */
  authority: string | null;
}

/** A `udp` check after validation: the bytes, as lowercase hex without spaces. */
export interface ResolvedUdpCheck {
  send_hex: string;
  /** null: any reply passes. */
  expect_hex: string | null;
}

/** TLS settings after validation; present whenever the check does a handshake. */
export interface ResolvedTlsCheck {
  /** `http.sni` ?? `tls.sni`; null sends none. */
  sni: string | null;
  verify: boolean;
  ca: string | null;
}

/** The effective check of one backend (pool settings merged with the backend's), durations in ms. */
export interface ResolvedHealthCheck {
  type: HealthCheckType;
  interval_ms: number;
  timeout_ms: number;
  jitter_ms: number;
  rise: number;
  fall: number;
  down_interval_ms: number;
  /** null: the backend's port. */
  port: number | null;
  /** Non-null exactly for `type: http`. */
  http: ResolvedHttpCheck | null;
  /** Non-null exactly for `type: grpc`. */
  grpc: ResolvedGrpcCheck | null;
  /** Non-null exactly for `type: udp`. */
  udp: ResolvedUdpCheck | null;
  /** Non-null when the check does a TLS handshake (`tls`, or `http`/`grpc` with `http.tls`/`grpc.tls: true`). */
  tls: ResolvedTlsCheck | null;
}
