/**
 * Durations: a number of milliseconds, or a string with a unit. Fractions are
 * allowed as long as the result is a whole number of milliseconds ("1.5s").
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const PATTERN = /^(\d+)(?:\.(\d{1,9}))?(ms|s|m|h)$/;
const EXPECTED = 'expected a duration such as 250ms, 2s, 1.5s, 1m or 1h (a plain number means milliseconds)';

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return String(v);
  if (v === null) return 'null';
  return Array.isArray(v) ? 'an array' : typeof v;
}

/**
 * Parse a duration into milliseconds.
 * Returns the number of ms (a non-negative safe integer), or an error message
 * (a string) that quotes the bad value, so callers can attach their own path.
 */
export function parseDuration(v: unknown): number | string {
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) && v >= 0 ? v : `${EXPECTED}, got ${show(v)} (milliseconds must be a non-negative integer)`;
  }
  if (typeof v !== 'string') return `${EXPECTED}, got ${show(v)}`;
  const m = PATTERN.exec(v);
  if (!m) return `${EXPECTED}, got ${show(v)}`;
  const [, whole = '0', frac = '', unit] = m;
  const unitMs = UNIT_MS[unit as keyof typeof UNIT_MS];
  // Integer arithmetic: 1.1 * 1000 is 1100.0000000000002 in floating point.
  const scale = 10 ** frac.length;
  const fracMs = Number(frac || '0') * unitMs;
  if (fracMs % scale !== 0) return `${EXPECTED}, got ${show(v)} (not a whole number of milliseconds)`;
  const ms = Number(whole) * unitMs + fracMs / scale;
  return Number.isSafeInteger(ms) ? ms : `${EXPECTED}, got ${show(v)} (too large)`;
}

/** Format milliseconds with the largest unit that divides them exactly, e.g. `60s`, `1h`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms !== 0 && ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
