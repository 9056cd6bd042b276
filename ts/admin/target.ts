/**
 * What the admin server needs from a balancer: exactly the members `ts/admin/*`
 * call. `Switchyard` satisfies it structurally, so the admin modules never
 * import the library class (and the library can start the admin server without
 * an import cycle).
 */
import type { Algorithm, BackendConfig, BackendState, ResolvedConfig } from '../config/types.js';
import type { BackendEvent } from '../events.js';
import type { BackendCheckState } from '../health/monitor.js';
import type { PlanChange, PlanOptions, PlanReport } from '../plan.js';
import type { Stats } from '../stats.js';
import type { Trace, TraceQuery } from '../traces.js';
import type { PolicyDecision, PolicyStatus } from '../policy/types.js';
import type { DecisionCount } from '../policy/decisions.js';
import type { PoolMembership } from '../membership.js';
import type { ConfigSourceStatus } from '../etcd/config-source.js';

/** Replaces the running process with a new one (see `ts/upgrade/`); resolves with its report. */
export type Upgrader = (options: { binary?: string }) => Promise<object>;

export interface AdminTarget {
  /** The configuration in force. */
  readonly config: ResolvedConfig;
  /** True from the moment `close()` starts (listeners released, connections draining): `/readyz` answers 503. */
  readonly draining: boolean;
  /** True once an upgrade handed this balancer's sockets to a new process, which serves now: its own drain leaves `/readyz` at 200. Absent: false. */
  readonly handedOver?: boolean;
  /** Every counter of the data plane now. */
  stats(): Stats;
  /** The active checks' view; a balancer without active checks may leave it out. */
  health?(): BackendCheckState[];
  /** Where each pool's backends come from and when their set last changed; optional. */
  membership?(): Map<string, PoolMembership>;
  /** Where the configuration comes from when it is not a file (an etcd key), with the last refused value; optional. */
  configSource?(): ConfigSourceStatus | undefined;
  /** Recent backend events, oldest first. */
  events(): BackendEvent[];
  plan(pool: string, change: PlanChange, options?: PlanOptions): PlanReport;
  setBackendState(pool: string, address: string, state: BackendState): Promise<void>;
  setWeight(pool: string, address: string, weight: number): Promise<void>;
  addBackend(pool: string, backend: BackendConfig): Promise<void>;
  removeBackend(pool: string, address: string): Promise<void>;
  setAlgorithm(pool: string, algorithm: Algorithm): Promise<void>;
  /** Attached control loops (`GET /api/policies`); a target without policies may leave it out. */
  policies?(): PolicyStatus[];
  /** Recent policy decisions, oldest first (`GET /api/policies/decisions`). */
  policyDecisions?(filter?: { policy?: string; limit?: number }): PolicyDecision[];
  /** Decisions per policy and action since start (`switchyard_policy_decisions_total`). */
  policyDecisionCounts?(): DecisionCount[];
  /** Decision traces of sampled connections and requests, oldest first (`GET /api/traces`). */
  traces(query?: TraceQuery): Trace[];
  /** Trace a share (0..1) of a listener's connections or requests (`PUT /api/listeners/{listener}/trace-sample`). */
  setTraceSample(listener: string, rate: number): void;
  /** Re-read the configuration file (`POST /api/reload`). */
  reload(path: string): Promise<void>;
  /** Backend events for the live stream. */
  on(event: 'backend', listener: (event: BackendEvent) => void): unknown;
  off(event: 'backend', listener: (event: BackendEvent) => void): unknown;
}
