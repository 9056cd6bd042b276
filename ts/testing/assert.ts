/**
 * Assertions for tests of routing and policies. They throw a plain `Error` with a message that
 * shows what happened, so they work the same under vitest, node:test or any other runner.
 */
import type { PolicyDecision } from '../policy/types.js';
import type { TrafficResult } from './traffic.js';

/** The share (0..1) of `r`'s traffic that backend `id` answered. */
export function shareOf(r: TrafficResult, id: string): number {
  return r.sent === 0 ? 0 : (r.byBackend[id] ?? 0) / r.sent;
}

/** Backend `id` answered between `min` and `max` (shares, inclusive) of `r`. */
export function assertShare(r: TrafficResult, id: string, min: number, max: number): void {
  const s = shareOf(r, id);
  if (s < min || s > max) throw new Error(`expected ${id} to answer ${min}..${max} of the traffic, it answered ${s.toFixed(3)} (${JSON.stringify(r.byBackend)} of ${r.sent}; failed ${r.failed})`);
}

/** Every request of `r` was answered by one of `ids` (and none failed). */
export function assertOnly(r: TrafficResult, ids: string[]): void {
  const others = Object.keys(r.byBackend).filter((id) => !ids.includes(id));
  if (others.length || r.failed) {
    throw new Error(`expected only ${ids.join(', ')} to answer, got ${JSON.stringify(r.byBackend)} of ${r.sent} (failed ${r.failed}: ${r.errors.join('; ')})`);
  }
}

/** What a decision must match: any subset of its fields (`reason` as a substring or pattern). */
export type DecisionMatch = Partial<Omit<PolicyDecision, 'reason'>> & { reason?: string | RegExp; id?: string };

/** Does `d` match `m`? */
export function matchesDecision(d: PolicyDecision & { id?: string | undefined }, m: DecisionMatch): boolean {
  for (const [k, v] of Object.entries(m)) {
    if (k === 'reason') {
      if (v instanceof RegExp ? !v.test(d.reason) : !d.reason.includes(String(v))) return false;
    } else if ((d as unknown as Record<string, unknown>)[k] !== v) return false;
  }
  return true;
}

/** The decisions of `list` that match `m` (oldest first). */
export function findDecisions<D extends PolicyDecision>(list: readonly D[], m: DecisionMatch): D[] {
  return list.filter((d) => matchesDecision(d, m));
}

/** Exactly `count` decisions (default: at least one) of `list` match `m`; returns them. */
export function assertDecision<D extends PolicyDecision>(list: readonly D[], m: DecisionMatch, count?: number): D[] {
  const found = findDecisions(list, m);
  if (count === undefined ? found.length === 0 : found.length !== count) {
    const show = list.map((d) => `${d.policy} ${d.action} ${d.address} ${d.from ?? ''}→${d.to ?? ''}: ${d.reason}`).join('\n  ');
    throw new Error(`expected ${count ?? 'a'} decision(s) matching ${JSON.stringify(m, (_, v: unknown) => (v instanceof RegExp ? String(v) : v))}, found ${found.length}; decisions:\n  ${show || '(none)'}`);
  }
  return found;
}
