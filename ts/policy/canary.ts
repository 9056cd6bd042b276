/**
 * Progressive canary: moves a canary backend's share of a pool from a few percent to all of it
 * in steps, while its error rate and p99 stay within bounds of the baseline (the pool's other
 * primary backends) measured over the same step; rolls back at the first step that breaks them.
 *
 * States: `ramping` (at `steps[i]` %) → `promoted` (100 %: the canary takes every new request;
 * the baseline is left at weight 0 for the operator to remove) or → `rolled_back` (the canary at
 * weight 0, or drained, and the baseline's weights as they were). `overridden`: someone else
 * (an operator, a reload whose file changes the canary's weight) set the canary's weight; the
 * canary stops and changes nothing more — an operator's word wins.
 *
 * A share becomes weights over `scale` (default 1000, the largest weight): at p %, the canary
 * gets `scale·p/100` and the baseline the rest, split in proportion to its weights at the start.
 */
import type { BackendSignal } from './signals.js';
import { mergeSignals } from './signals.js';
import type { Policy, PolicyContext } from './types.js';

/** Options of `canary`. Durations are milliseconds. */
export interface CanaryOptions {
  /** Default `canary:<pool>`. */
  name?: string;
  pool: string;
  /** The canary backend's address, as in the pool (`127.0.0.1:8081`). */
  canary: string;
  /** Shares of the pool's traffic, percent, increasing, the last 100. Default `[1, 5, 10, 25, 50, 100]`. */
  steps?: number[];
  /** Time spent at each step before the next (if the canary stayed within bounds). Default 60000. */
  stepMs?: number;
  /** How often the bounds are checked. Default 5000. */
  intervalMs?: number;
  /** Canary requests a step needs before it is judged or left. Default 20. */
  minRequests?: number;
  /** The canary's error rate may exceed the baseline's by this much (0.02: two points). Default 0.02. */
  maxErrorRateIncrease?: number;
  /** The canary's p99 may be this many times the baseline's (plus `latencySlackMs`). Default 1.5. */
  maxLatencyRatio?: number;
  /** Absolute slack on the latency bound, so sub-millisecond noise never rolls back. Default 5. */
  latencySlackMs?: number;
  /** `weight`: the canary goes to weight 0 (default); `drain`: it is drained as well. */
  rollback?: 'weight' | 'drain';
  /** The weights a share is spread over. Default 1000. */
  scale?: number;
}

/** The canary's state machine. */
export type CanaryState = 'pending' | 'ramping' | 'promoted' | 'rolled_back' | 'overridden';

/** A progressive canary policy (see the module doc); `status()` reports its state and step. */
export function canary(options: CanaryOptions): Policy & { readonly state: CanaryState } {
  const steps = options.steps ?? [1, 5, 10, 25, 50, 100];
  const name = options.name ?? `canary:${options.pool}`;
  if (steps.length === 0 || steps.some((s, i) => !(s > 0 && s <= 100) || (i > 0 && s <= steps[i - 1]!)) || steps.at(-1) !== 100) {
    throw new RangeError(`${name}: steps must be increasing percentages in (0, 100] ending at 100, got ${JSON.stringify(steps)}`);
  }
  const { pool, canary: address } = options;
  const stepMs = options.stepMs ?? 60_000;
  const minRequests = options.minRequests ?? 20;
  const maxIncrease = options.maxErrorRateIncrease ?? 0.02;
  const maxRatio = options.maxLatencyRatio ?? 1.5;
  const slackMs = options.latencySlackMs ?? 5;
  const scale = options.scale ?? 1000;

  let state: CanaryState = 'pending';
  let step = 0;
  let stepStart = 0;
  /** The baseline's weights when the canary started: what a rollback restores. */
  let baseline = new Map<string, number>();
  /** The canary's weight as this policy last set it (to notice someone else's change). */
  let expected = 0;
  let canaryReadings: BackendSignal[] = [];
  let baseReadings: BackendSignal[] = [];
  let last: { canary: BackendSignal | undefined; baseline: BackendSignal | undefined } = { canary: undefined, baseline: undefined };

  const percentText = (p: number) => `${p} % of pool ${pool}`;

  async function apply(ctx: PolicyContext, percent: number, why: string): Promise<void> {
    const total = [...baseline.values()].reduce((s, w) => s + w, 0) || 1;
    expected = Math.round((scale * percent) / 100);
    await ctx.setWeight(pool, address, expected, why);
    for (const [b, w] of baseline) {
      const share = Math.round((scale * (100 - percent) * w) / 100 / total);
      await ctx.setWeight(pool, b, percent < 100 ? Math.max(1, share) : 0, why);
    }
  }

  /** Why the canary is out of bounds over the step so far, or null. */
  function breach(c: BackendSignal, b: BackendSignal | undefined): string | null {
    const baseRate = b?.errorRate ?? 0;
    if (c.errorRate > baseRate + maxIncrease) {
      return `error rate ${c.errorRate.toFixed(3)} > baseline ${baseRate.toFixed(3)} + ${maxIncrease} (${c.errors}/${c.attempts} requests)`;
    }
    const cp = c.latency.p99Ms;
    const bp = b?.latency.p99Ms;
    if (cp !== null && bp !== null && bp !== undefined && cp > bp * maxRatio + slackMs) {
      return `p99 ${cp.toFixed(1)} ms > baseline ${bp.toFixed(1)} ms × ${maxRatio} + ${slackMs} ms (${c.latency.source})`;
    }
    return null;
  }

  async function rollBack(ctx: PolicyContext, why: string): Promise<void> {
    state = 'rolled_back';
    expected = 0;
    await ctx.setWeight(pool, address, 0, `rollback: ${why}`);
    for (const [b, w] of baseline) await ctx.setWeight(pool, b, w, 'rollback: baseline weight restored');
    if (options.rollback === 'drain') await ctx.drain(pool, address, `rollback: ${why}`);
    ctx.note('rolled_back', pool, address, why);
  }

  return {
    name,
    kind: 'canary',
    intervalMs: options.intervalMs ?? 5000,
    get state() {
      return state;
    },
    async start(ctx) {
      const p = ctx.config().pools.find((x) => x.name === pool);
      if (!p) throw new RangeError(`${name}: no pool named "${pool}"`);
      if (!p.backends.some((b) => b.address === address)) throw new RangeError(`${name}: pool "${pool}" has no backend ${address}`);
      baseline = new Map(p.backends.filter((b) => b.address !== address && !b.backup).map((b) => [b.address, b.weight]));
      if (baseline.size === 0) throw new RangeError(`${name}: pool "${pool}" has no baseline backend beside the canary`);
      state = 'ramping';
      step = 0;
      stepStart = ctx.now();
      ctx.read(); // the first step's counts start now
      await apply(ctx, steps[0]!, `canary step 1/${steps.length}: ${percentText(steps[0]!)}`);
      if (steps[0] === 100) {
        state = 'promoted';
        ctx.note('promoted', pool, address, 'the only step is 100 %');
      }
    },
    async tick(ctx) {
      if (state !== 'ramping') return;
      const now = ctx.config().pools.find((x) => x.name === pool)?.backends.find((b) => b.address === address);
      if (!now || now.weight !== expected) {
        state = 'overridden';
        ctx.note('overridden', pool, address, now ? `weight ${expected}→${now.weight} set outside the policy; the canary stops` : 'the canary backend was removed; the canary stops');
        return;
      }
      const readings = ctx.read().filter((r) => r.pool === pool);
      canaryReadings.push(...readings.filter((r) => r.address === address));
      baseReadings.push(...readings.filter((r) => baseline.has(r.address)));
      const c = mergeSignals(canaryReadings);
      const b = mergeSignals(baseReadings);
      last = { canary: c, baseline: b };
      if (!c || c.attempts < minRequests) return;
      const why = breach(c, b);
      if (why) return rollBack(ctx, `at ${percentText(steps[step]!)}: ${why}`);
      if (ctx.now() - stepStart < stepMs) return;
      step++;
      stepStart = ctx.now();
      canaryReadings = [];
      baseReadings = [];
      const summary = `error rate ${c.errorRate.toFixed(3)} (baseline ${(b?.errorRate ?? 0).toFixed(3)}), p99 ${c.latency.p99Ms?.toFixed(1) ?? '-'} ms (baseline ${b?.latency.p99Ms?.toFixed(1) ?? '-'} ms) over ${c.attempts} requests`;
      await apply(ctx, steps[step]!, `canary step ${step + 1}/${steps.length}: ${percentText(steps[step]!)}; previous step within bounds: ${summary}`);
      if (steps[step] === 100) {
        state = 'promoted';
        ctx.note('promoted', pool, address, `every step within bounds; the canary takes 100 % of pool ${pool}`);
      }
    },
    status() {
      const sig = (s: BackendSignal | undefined) => (s ? { attempts: s.attempts, error_rate: s.errorRate, p99_ms: s.latency.p99Ms, latency_source: s.latency.source } : null);
      return {
        state,
        detail: { pool, canary: address, step: step + 1, steps, percent: steps[step], canary_window: sig(last.canary), baseline_window: sig(last.baseline) },
      };
    },
  };
}
