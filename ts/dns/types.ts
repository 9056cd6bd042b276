/**
 * Types of backends given by DNS: the `dns` section (resolver settings), the
 * pool's `backends_from` (SRV records), and what validation makes of them.
 * Resolution is control-plane work; the data plane only ever sees IP addresses.
 */
import type { AdminState } from '../binding/types.generated.js';
import type { Duration } from '../config/duration.js';
import type { ResolvedHealthCheck } from '../health/types.js';

/** Which address records a name is resolved to: `any` (A and AAAA), `ipv4` (A), `ipv6` (AAAA). */
export type DnsFamily = 'any' | 'ipv4' | 'ipv6';

/** The `dns` section: how backend host names and SRV records are resolved. */
export interface DnsConfig {
  /** Name servers, `ip` or `ip:port` (IPv6 as `[::1]:53`). Default: the system's (/etc/resolv.conf). */
  servers?: string[];
  /** A record's TTL is raised to at least this before the name is queried again. Default `"5s"`. */
  min_ttl?: Duration;
  /** ... and lowered to at most this (nginx `resolver valid=`). Default `"5m"`. */
  max_ttl?: Duration;
  /** One query's timeout (two tries per server). Default `"2s"`. */
  timeout?: Duration;
  /** Address records to use. Default `any`. */
  family?: DnsFamily;
}

/** `backends_from` of a pool: backends from DNS SRV records. */
export interface BackendsFromConfig {
  /** SRV name such as `_http._tcp.api.internal`: each target (resolved to its addresses) is a
   * backend with the record's port and weight; records of a higher priority value are backups. */
  srv?: string;
  /** etcd key prefix such as `/switchyard/pools/api/` (the `etcd` section names the cluster): each
   * key under it is a backend; its value is `"ip:port"` or JSON `{"address", "weight"?, "backup"?}`.
   * Watched (not polled): a change reaches the pool at once; an etcd outage keeps the last state. */
  etcd?: string;
}

/** The `dns` section after validation. */
export interface ResolvedDns {
  /** `ip:port` each; null: the system's servers. */
  servers: string[] | null;
  min_ttl_ms: number;
  max_ttl_ms: number;
  timeout_ms: number;
  family: DnsFamily;
}

/** One name (or etcd prefix) a pool's backends come from, after validation. */
export interface ResolvedDnsSource {
  /** `name`: a backend address `host:port`; `srv`: a pool's `backends_from.srv`; `etcd`: a pool's
   * `backends_from.etcd` (read and watched by `ts/etcd/members.ts`, not by the DNS watcher). */
  kind: 'name' | 'srv' | 'etcd';
  /** The name queried (`etcd`: the key prefix). */
  name: string;
  /** `name`: the port of the address; `srv`: null (each record has its own). */
  port: number | null;
  /** Where it was declared (`pools.api.backends[1].address`), for messages. */
  path: string;
  /** What each resolved address gets: the declared backend's fields (`srv`: weight null, the
   * record's weight is used; `backup` is true for records of a lower priority too). */
  weight: number | null;
  backup: boolean;
  state: AdminState;
  health_check: ResolvedHealthCheck | null;
}
