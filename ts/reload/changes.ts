/**
 * What a reload changed: listeners, pools and each pool's backends added,
 * removed or changed, computed from the resolved configurations in force
 * before and after. `POST /api/reload` answers it (`changes`), the SIGHUP and
 * `--watch` reloads log it, and `switchyard reload` prints it.
 */
import type { ResolvedConfig } from '../config/types.js';

/** Names added, removed and changed (present before and after, with a different value). */
export interface NameChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

/** Everything a reload changed; empty lists and an empty `backends` when nothing did. */
export interface ConfigChanges {
  listeners: NameChanges;
  /** A pool is `changed` when any of its settings or backends is. */
  pools: NameChanges;
  /** Per pool with a backend difference: backend addresses added, removed, changed (weight, state, …). */
  backends: Record<string, NameChanges>;
  /** Top-level settings that differ (`workers`, `max_connections`, `dns`, `admin`, …). */
  settings: string[];
}

/** Compare two lists of named items by name, and items of the same name by value. */
function diffBy<T>(before: readonly T[], after: readonly T[], key: (x: T) => string): NameChanges {
  const old = new Map(before.map((x) => [key(x), x]));
  const now = new Map(after.map((x) => [key(x), x]));
  return {
    added: [...now.keys()].filter((k) => !old.has(k)),
    removed: [...old.keys()].filter((k) => !now.has(k)),
    changed: [...now].filter(([k, x]) => old.has(k) && !same(old.get(k), x)).map(([k]) => k),
  };
}

/** Structural equality of two resolved values (both built by the same validator, so keys come in the same order). */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const isEmpty = (c: NameChanges): boolean => c.added.length + c.removed.length + c.changed.length === 0;

/** What changed from `before` to `after` (both as in force: names resolved, runtime changes kept). */
export function configChanges(before: ResolvedConfig, after: ResolvedConfig): ConfigChanges {
  const backends: Record<string, NameChanges> = {};
  const pools = (c: ResolvedConfig) => new Map(c.pools.map((p) => [p.name, p.backends]));
  const old = pools(before);
  const now = pools(after);
  for (const name of new Set([...old.keys(), ...now.keys()])) {
    const d = diffBy(old.get(name) ?? [], now.get(name) ?? [], (b) => b.address);
    if (!isEmpty(d)) backends[name] = d;
  }
  const top = (c: ResolvedConfig): Record<string, unknown> => ({ ...c, listeners: undefined, pools: undefined });
  const [tb, ta] = [top(before), top(after)];
  const settings = [...new Set([...Object.keys(tb), ...Object.keys(ta)])].filter((k) => !same(tb[k] ?? null, ta[k] ?? null));
  return {
    listeners: diffBy(before.listeners, after.listeners, (l) => l.name),
    pools: diffBy(before.pools, after.pools, (p) => p.name),
    backends,
    settings,
  };
}

/** True when a reload changed nothing. */
export function unchanged(c: ConfigChanges): boolean {
  return isEmpty(c.listeners) && isEmpty(c.pools) && Object.keys(c.backends).length === 0 && c.settings.length === 0;
}

/** `+ a, - b, ~ c` for one list of changes. */
function line(c: NameChanges): string {
  return [...c.added.map((n) => `+ ${n}`), ...c.removed.map((n) => `- ${n}`), ...c.changed.map((n) => `~ ${n}`)].join(', ');
}

/** The changes as text, one line per kind (`+` added, `-` removed, `~` changed), or `no changes`. */
export function formatChanges(c: ConfigChanges): string {
  if (unchanged(c)) return '  no changes\n';
  const out: string[] = [];
  if (!isEmpty(c.listeners)) out.push(`  listeners: ${line(c.listeners)}`);
  if (!isEmpty(c.pools)) out.push(`  pools: ${line(c.pools)}`);
  for (const [pool, b] of Object.entries(c.backends)) out.push(`  pool ${pool} backends: ${line(b)}`);
  if (c.settings.length) out.push(`  settings: ${c.settings.map((s) => `~ ${s}`).join(', ')}`);
  return `${out.join('\n')}\n`;
}
