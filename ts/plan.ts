/**
 * "What moves if I change this?" — the control plane describes a change to a
 * pool; the data plane's own selectors map sample keys before and after.
 */
import { ConfigError } from './errors.js';
import type { Algorithm, ResolvedConfig, ResolvedPool } from './config/types.js';
import { plan } from './binding/engine.js';
import type { PlanReport as NativePlanReport, Share } from './binding/types.generated.js';
import { LIMITS } from './binding/catalog.generated.js';
import { fromNative } from './errors.js';
import { enginePool } from './config/engine.js';

/** A change to one pool. Every field is optional; they combine. */
export interface PlanChange {
  /** Backends to add (`ip:port`, weight 1). */
  add?: string[];
  /** Backends to remove. */
  remove?: string[];
  /** New weights by backend address. */
  weight?: Record<string, number>;
  /** Switch the algorithm. */
  algorithm?: Algorithm;
}

/** Options of a plan. */
export interface PlanOptions {
  /** Client keys (`ip` or `ip:port`). Default: `samples` synthetic keys. */
  keys?: string[];
  /** Number of synthetic keys. Default 100,000. */
  samples?: number;
  /** Also return every key's backend before and after. */
  assignments?: boolean;
}

/** One backend's share before or after the change. */
export type PlanShare = Share;

/** The answer of a plan (the data plane's report, and the pool it is about). */
export interface PlanReport extends NativePlanReport {
  pool: string;
}

/** Apply `change` to `pool` and return the new pool; errors name the offending address. */
export function applyChange(pool: ResolvedPool, change: PlanChange, source = 'plan'): ResolvedPool {
  const issues: { path: string; message: string }[] = [];
  const backends = pool.backends.map((b) => ({ ...b }));
  const has = (a: string) => backends.some((b) => b.address === a);
  for (const a of change.remove ?? []) {
    if (!has(a)) issues.push({ path: 'remove', message: `pool "${pool.name}" has no backend ${a}` });
  }
  const kept = backends.filter((b) => !(change.remove ?? []).includes(b.address));
  for (const a of change.add ?? []) {
    if (kept.some((b) => b.address === a)) issues.push({ path: 'add', message: `pool "${pool.name}" already has backend ${a}` });
    else kept.push({ address: a, weight: 1, backup: false, state: 'ready', health_check: pool.health_check });
  }
  for (const [a, w] of Object.entries(change.weight ?? {})) {
    const b = kept.find((x) => x.address === a);
    if (!b) issues.push({ path: 'weight', message: `pool "${pool.name}" has no backend ${a}` });
    else if (!Number.isInteger(w) || w < LIMITS.weight.min || w > LIMITS.weight.max) {
      issues.push({ path: 'weight', message: `expected an integer weight ${LIMITS.weight.min}..${LIMITS.weight.max} for ${a}, got ${w}` });
    } else b.weight = w;
  }
  if (kept.length === 0) issues.push({ path: 'remove', message: `the change would leave pool "${pool.name}" empty` });
  if (issues.length) throw new ConfigError(source, issues);
  return { ...pool, algorithm: change.algorithm ?? pool.algorithm, backends: kept };
}

/** Plan `change` to pool `poolName` of `config`. */
export function planChange(config: ResolvedConfig, poolName: string, change: PlanChange, options: PlanOptions = {}): PlanReport {
  const before = config.pools.find((p) => p.name === poolName);
  if (!before) {
    throw new ConfigError('plan', [{ path: 'pool', message: `no pool named "${poolName}" (pools: ${config.pools.map((p) => p.name).join(', ')})` }]);
  }
  const after = applyChange(before, change);
  try {
    // Backend TLS plays no part in a plan: no CA file is read.
    const request = { before: enginePool(before, undefined, null), after: enginePool(after, undefined, null), keys: null, samples: null, assignments: false, ...options };
    return { pool: poolName, ...plan(request) };
  } catch (err) {
    throw fromNative(err, 'plan');
  }
}

/** Render a report as the table `switchyard plan` prints. */
export function formatPlan(r: PlanReport): string {
  const pct = (x: number | undefined) => (x === undefined ? '      -' : `${(x * 100).toFixed(1).padStart(6)}%`);
  const addresses = [...new Set([...r.before.map((s) => s.address), ...r.after.map((s) => s.address)])];
  const width = Math.max(8, ...addresses.map((a) => a.length));
  const lines = [
    `pool ${r.pool}: ${r.algorithm_before}${r.algorithm_after !== r.algorithm_before ? ` → ${r.algorithm_after}` : ''}, ${r.keys} keys`,
    `${'backend'.padEnd(width)}  before    after`,
    ...addresses.map(
      (a) => `${a.padEnd(width)}  ${pct(r.before.find((s) => s.address === a)?.share)}  ${pct(r.after.find((s) => s.address === a)?.share)}`,
    ),
    r.moved === null
      ? 'keys that move: n/a (this algorithm has no key affinity; every new connection is balanced afresh)'
      : `keys that move: ${(r.moved * 100).toFixed(1)}%`,
  ];
  return `${lines.join('\n')}\n`;
}
