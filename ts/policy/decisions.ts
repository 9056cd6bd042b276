/** The decision log: the most recent policy decisions (bounded) and a count per policy and action that never drops. */
import type { PolicyDecision } from './types.js';

/** Decisions kept for the admin API; older ones are dropped (their counts stay). */
export const DECISION_CAP = 500;

/** One `switchyard_policy_decisions_total` sample. */
export interface DecisionCount {
  policy: string;
  action: string;
  count: number;
}

export class DecisionLog {
  #items: PolicyDecision[] = [];
  #counts = new Map<string, DecisionCount>();

  constructor(private readonly cap = DECISION_CAP) {}

  push(d: PolicyDecision): void {
    this.#items.push(d);
    if (this.#items.length > this.cap) this.#items.splice(0, this.#items.length - this.cap);
    const k = `${d.policy}\n${d.action}`;
    const c = this.#counts.get(k);
    if (c) c.count++;
    else this.#counts.set(k, { policy: d.policy, action: d.action, count: 1 });
  }

  /** Oldest first; only `policy`'s when given; the last `limit` when given. */
  list(filter: { policy?: string; limit?: number } = {}): PolicyDecision[] {
    const mine = filter.policy === undefined ? this.#items.slice() : this.#items.filter((d) => d.policy === filter.policy);
    return filter.limit === undefined ? mine : mine.slice(Math.max(0, mine.length - filter.limit));
  }

  /** Decisions per policy and action since start. */
  counts(): DecisionCount[] {
    return [...this.#counts.values()].map((c) => ({ ...c }));
  }

  /** How many decisions `policy` made since start. */
  total(policy: string): number {
    let n = 0;
    for (const c of this.#counts.values()) if (c.policy === policy) n += c.count;
    return n;
  }
}
