/**
 * One check of a hook decision, for a route's declared `fallback` (the config validator) and
 * for what a hook function answers (the dispatcher): the same rules the data plane checks
 * again (`crates/switchyard-core/src/hook/mod.rs`, `HookDecision::check`).
 */
import type { HookDecision as WireDecision } from '../binding/types.generated.js';

const KEYS = ['pool', 'deny', 'hash_key', 'tag'] as const;
/** A pool name as pools are named (`NAME_PATTERN` of the config). */
const POOL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : typeof v === 'object' ? 'an object' : String(v));

/** Why a value is not a decision: the field at fault (`''`: the whole value) and what was expected. */
export interface DecisionProblem {
  field: string;
  message: string;
}

/** `problem` as one sentence (`deny: expected an HTTP status 400..599, got 200`). */
export const formatProblem = (p: DecisionProblem): string => (p.field ? `${p.field}: ${p.message}` : p.message);

/**
 * The wire form of decision `v` (`undefined` and `{}` keep the rule's pool), or the first
 * reason it is not one.
 */
export function toDecision(v: unknown): WireDecision | DecisionProblem {
  const out: WireDecision = { pool: null, deny: null, hash_key: null, tag: null };
  if (v === undefined) return out;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { field: '', message: `expected a decision object ({ pool }, { deny }, { hash_key }, { tag } or {}), got ${show(v)}` };
  const d = v as Record<string, unknown>;
  const unknown = Object.keys(d).find((k) => !(KEYS as readonly string[]).includes(k) && d[k] !== undefined);
  if (unknown !== undefined) return { field: unknown, message: `unknown key ${JSON.stringify(unknown)} (allowed: ${KEYS.join(', ')})` };
  if (d.pool !== undefined) {
    if (typeof d.pool !== 'string' || !POOL_NAME.test(d.pool)) return { field: 'pool', message: `expected a pool name, got ${show(d.pool)}` };
    out.pool = d.pool;
  }
  if (d.deny !== undefined) {
    // `true`: 403 (what a tcp rule's own `deny: true` says; a tcp connection is closed either way).
    const deny = d.deny === true ? 403 : d.deny;
    if (typeof deny !== 'number' || !Number.isInteger(deny) || deny < 400 || deny > 599) return { field: 'deny', message: `expected true or an HTTP status 400..599, got ${show(d.deny)}` };
    out.deny = deny;
  }
  if (out.pool !== null && out.deny !== null) return { field: '', message: 'pool and deny exclude each other' };
  for (const k of ['hash_key', 'tag'] as const) {
    if (d[k] === undefined) continue;
    const s = d[k];
    if (typeof s !== 'string' || s.length === 0 || s.length > 1024) return { field: k, message: `expected a string of 1..1024 characters, got ${show(s)}` };
    out[k] = s;
  }
  return out;
}

/** Is `d` a problem rather than a decision? */
export const isProblem = (d: WireDecision | DecisionProblem): d is DecisionProblem => 'message' in d;
