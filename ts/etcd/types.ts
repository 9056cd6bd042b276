/**
 * Types of what comes from etcd: the `etcd` section (the cluster), and after validation.
 * Reading and watching are control-plane work (`members.ts`, `config-source.ts`); the data
 * plane only ever sees the resulting backends and tables.
 */
import type { Duration } from '../config/duration.js';

/** The `etcd` section: the cluster that pools' `backends_from.etcd` prefixes are read from. */
export interface EtcdConfig {
  /** Client URLs of the etcd members, e.g. `["http://10.0.0.5:2379"]` (plain HTTP only). */
  endpoints: string[];
  /** How long the first read of a prefix may take at start. Default `"5s"`. */
  dial_timeout?: Duration;
  /** Share active-check verdicts with the other nodes and follow the majority. Off when absent. */
  shared_health?: SharedHealthConfig;
}

/** `etcd.shared_health`: the fleet's shared health view (see `shared-health.ts`). */
export interface SharedHealthConfig {
  /** Where verdicts are published (`PREFIX/POOL/ADDRESS/NODE`). Default `"/switchyard/health/"`. */
  prefix?: string;
  /** This node's name, unique in the fleet. Default: the host name. */
  node?: string;
  /** A node's verdicts expire this long after it stops keeping its lease alive. Default `"10s"`. */
  ttl?: Duration;
}

/** `etcd.shared_health` after validation. */
export interface ResolvedSharedHealth {
  prefix: string;
  node: string;
  ttl_ms: number;
}

/** The `etcd` section after validation. */
export interface ResolvedEtcd {
  endpoints: string[];
  dial_timeout_ms: number;
  shared_health: ResolvedSharedHealth | null;
}
