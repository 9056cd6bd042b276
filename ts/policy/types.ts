/**
 * The control-loop policy API: a policy is a plain typed object that runs on a schedule
 * (`intervalMs` → `tick`) and/or on backend events (`onBackend`), reads signals through its
 * context and acts only through it — so every change it makes is logged with a reason, kept in
 * the decision log (`/api/policies/decisions`) and counted (`switchyard_policy_decisions_total`).
 */
import type { PolicyConfig } from '../config/types.js';
import type { ResolvedConfig } from '../config/types.js';
import type { BackendEvent } from '../events.js';
import type { BackendSignal } from './signals.js';

/** What a policy did: one change (or one state transition) and why. */
export interface PolicyDecision {
  /** ISO timestamp, from the policy clock. */
  time: string;
  /** The policy's name. */
  policy: string;
  /** `set_weight`, `drain`, `ready` (changes), or a transition a policy notes (`promoted`,
   * `rolled_back`, `drain_capped`, …). */
  action: string;
  pool: string;
  /** The backend, or `""` for a decision about a whole pool. */
  address: string;
  /** The value before and after (a weight or a state), for changes. */
  from?: number | string;
  to?: number | string;
  /** Why, for a person: "error rate 0.62 > 0.50 over 30000 ms (40 requests)". */
  reason: string;
}

/** A policy as the admin API lists it. */
export interface PolicyStatus {
  name: string;
  /** What kind of policy (`canary`, `adaptive_weights`, `auto_drain`, or the user's own). */
  kind: string;
  /** The tick interval; null for a policy that only reacts to events. */
  interval_ms: number | null;
  /** The policy's state machine, in its own words (`ramping`, `promoted`, `watching`, …). */
  state: string;
  /** Anything else the policy reports about itself (plain JSON). */
  detail: Record<string, unknown>;
  /** Decisions it made since it was attached. */
  decisions: number;
}

/** What a policy sees and may do. Every action is validated like the library call it wraps. */
export interface PolicyContext {
  /** The policy's name (as in its decisions and log lines). */
  readonly name: string;
  /** Now, on the policy clock (ms). */
  now(): number;
  /** The configuration in force (runtime weights and states included). */
  config(): ResolvedConfig;
  /** Every backend since this policy's previous `read()` (the first reading covers the time since it was attached). */
  read(): BackendSignal[];
  /** Set a weight; logged and recorded as `set_weight` with `reason`. No-op (nothing recorded) when it already is `weight`. */
  setWeight(pool: string, address: string, weight: number, reason: string): Promise<void>;
  /** Drain a backend; recorded as `drain`. */
  drain(pool: string, address: string, reason: string): Promise<void>;
  /** Return a backend to service; recorded as `ready`. */
  ready(pool: string, address: string, reason: string): Promise<void>;
  /** Record a decision that changes nothing by itself (a state transition, a change held back). */
  note(action: string, pool: string, address: string, reason: string): void;
}

/** A control loop. Only `name` is required; give `intervalMs` + `tick`, `onBackend`, or both. */
export interface Policy {
  /** Unique among a balancer's policies: it names the decisions, log lines and metrics. */
  readonly name: string;
  /** A label for the admin API (default `custom`). */
  readonly kind?: string;
  /** Run `tick` this often (ms). */
  readonly intervalMs?: number;
  /** Called once when attached, before the first tick. */
  start?(ctx: PolicyContext): void | Promise<void>;
  /** One round of the loop: read, decide, act. */
  tick?(ctx: PolicyContext): void | Promise<void>;
  /** A backend event (health, ejection, operator or reload changes — its own changes too). */
  onBackend?(event: BackendEvent, ctx: PolicyContext): void | Promise<void>;
  /** Its state machine and details, for `GET /api/policies`. */
  status?(): { state: string; detail?: Record<string, unknown> };
  /** Called once when detached or when the balancer closes. */
  stop?(): void;
}

/**
 * Type a policy (an identity function: the object is returned as is, checked). Two kinds:
 * a control loop (`{ name, tick, ... }`, attached with `lb.use`), or rules compiled into the
 * route tables (`{ rules, rate_classes }`, the configuration's `policy` section).
 */
export function definePolicy<P extends Policy>(policy: P): P;
export function definePolicy(rules: PolicyConfig): PolicyConfig;
export function definePolicy(policy: Policy | PolicyConfig): Policy | PolicyConfig {
  return policy;
}
