/**
 * Assertions on decision traces (`lb.traces()`, `kit.traces()`): which backend won, which were
 * skipped and why, which attempts failed. Backends are named by address, or by kit id on the
 * traces `kit.traces()` returns. They throw a plain `Error` showing every trace, so they work
 * under any test runner.
 */
import type { Trace, TraceCandidate, TraceOutcome, TraceReason } from '../traces.js';

/** A candidate as the kit reports it: with the fake's id beside its address. */
export type KitCandidate = TraceCandidate & { id?: string | undefined };

/** A trace as the kit reports it: candidates and the winner also by fake id. */
export type KitTrace = Omit<Trace, 'candidates'> & { candidates: KitCandidate[]; winner_id?: string | undefined };

/** What a trace must match; every field is optional. Backends are named by address or kit id. */
export interface TraceMatch {
  listener?: string;
  kind?: Trace['kind'];
  /** The rule (HTTP: route) that matched; null: the listener's default. */
  rule?: string | null;
  pool?: string;
  outcome?: TraceOutcome;
  /** The backend that won; null: none did. */
  winner?: string | null;
  /** Backends skipped, each with its reason code (`drain`, `check_down`, `weight_zero`, `ejected`, `full`, …). */
  skipped?: Record<string, TraceReason>;
  /** Backends whose attempt failed, each with a substring (or pattern) of the error ('' for any). */
  failed?: Record<string, string | RegExp>;
  /** Backends that could have taken it (eligible, not chosen). */
  eligible?: readonly string[];
}

type AnyTrace = Trace | KitTrace;

function candidate(t: AnyTrace, who: string): KitCandidate | undefined {
  return (t.candidates as KitCandidate[]).find((c) => c.address === who || c.id === who);
}

/** Does trace `t` match `m`? */
export function matchesTrace(t: AnyTrace, m: TraceMatch): boolean {
  const plain: (keyof TraceMatch & keyof Trace)[] = ['listener', 'kind', 'rule', 'pool', 'outcome'];
  if (plain.some((k) => m[k] !== undefined && m[k] !== t[k])) return false;
  if (m.winner !== undefined) {
    const won = m.winner === null ? t.winner === null : t.winner === m.winner || (t as KitTrace).winner_id === m.winner;
    if (!won) return false;
  }
  for (const [who, reason] of Object.entries(m.skipped ?? {})) {
    const c = candidate(t, who);
    if (c?.verdict !== 'skipped' || c.reason !== reason) return false;
  }
  for (const [who, error] of Object.entries(m.failed ?? {})) {
    const c = candidate(t, who);
    const detail = c?.detail ?? '';
    if (c?.verdict !== 'failed' || (error instanceof RegExp ? !error.test(detail) : !detail.includes(error))) return false;
  }
  return (m.eligible ?? []).every((who) => candidate(t, who)?.verdict === 'eligible');
}

/** The traces of `list` that match `m` (oldest first). */
export function findTraces<T extends AnyTrace>(list: readonly T[], m: TraceMatch): T[] {
  return list.filter((t) => matchesTrace(t, m));
}

/** One line per trace: what the assertion's message shows. */
export function formatTrace(t: AnyTrace): string {
  const who = (c: KitCandidate) => c.id ?? c.address;
  const verdicts = (t.candidates as KitCandidate[]).map((c) => `${who(c)}=${c.verdict}${c.reason ? `(${c.reason}${c.detail ? `: ${c.detail}` : ''})` : ''}`);
  const winner = (t as KitTrace).winner_id ?? t.winner ?? 'none';
  return `#${t.seq} ${t.kind} ${t.listener}${t.rule ? `/${t.rule}` : ''} → ${t.pool}: ${t.outcome}, winner ${winner}; ${verdicts.join(' ')}`;
}

/** Exactly `count` traces (default: at least one) of `list` match `m`; returns them. */
export function assertTrace<T extends AnyTrace>(list: readonly T[], m: TraceMatch, count?: number): T[] {
  const found = findTraces(list, m);
  if (count === undefined ? found.length === 0 : found.length !== count) {
    const show = list.map(formatTrace).join('\n  ');
    throw new Error(`expected ${count ?? 'a'} trace(s) matching ${JSON.stringify(m, (_, v: unknown) => (v instanceof RegExp ? String(v) : v))}, found ${found.length}; traces:\n  ${show || '(none)'}`);
  }
  return found;
}
