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

/**
 * The wire form of decision `v` (`undefined` and `{}` keep the rule's pool), or why it is not
 * one: a sentence naming the field (`deny: expected an HTTP status 400..599, got 200`).
 */
export function toDecision(v: unknown): WireDecision | string {
  const out: WireDecision = { pool: null, deny: null, hash_key: null, tag: null };
  if (v === undefined) return out;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return `expected a decision object ({ pool }, { deny }, { hash_key }, { tag } or {}), got ${show(v)}`;
  const d = v as Record<string, unknown>;
  const unknown = Object.keys(d).find((k) => !(KEYS as readonly string[]).includes(k) && d[k] !== undefined);
  if (unknown !== undefined) return `unknown key ${JSON.stringify(unknown)} (allowed: ${KEYS.join(', ')})`;
  if (d.pool !== undefined) {
    if (typeof d.pool !== 'string' || !POOL_NAME.test(d.pool)) return `pool: expected a pool name, got ${show(d.pool)}`;
    out.pool = d.pool;
  }
  if (d.deny !== undefined) {
    if (typeof d.deny !== 'number' || !Number.isInteger(d.deny) || d.deny < 400 || d.deny > 599) return `deny: expected an HTTP status 400..599, got ${show(d.deny)}`;
    out.deny = d.deny;
  }
  if (out.pool !== null && out.deny !== null) return 'pool and deny exclude each other';
  for (const k of ['hash_key', 'tag'] as const) {
    if (d[k] === undefined) continue;
    const s = d[k];
    if (typeof s !== 'string' || s.length === 0 || s.length > 1024) return `${k}: expected a string of 1..1024 characters, got ${show(s)}`;
    out[k] = s;
  }
  return out;
}
