/**
 * Durations: a string with a unit ("250ms", "2s", "1.5s", "1m", "1h"), or 0.
 * Fractions are allowed as long as the result is a whole number of
 * milliseconds. A bare number other than 0 is refused: `interval: 10` meant
 * 10 ms to the parser and 10 s to an nginx user, so the unit must be written.
 */

/** The units a duration may carry. */
export type DurationUnit = 'ms' | 's' | 'm' | 'h';

/**
 * A duration as written in a config: a number with a unit, such as `"500ms"`,
 * `"2s"`, `"1.5s"`, `"1m"`, or `0`. A bare number is a type error in
 * `defineConfig({...})`, as it is a validation error in YAML and JSON.
 */
export type Duration = `${number}${DurationUnit}` | 0;

const UNIT_MS: Record<DurationUnit, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
/** Source of the accepted string syntax; the JSON Schema's pattern is the same text. */
export const DURATION_PATTERN = '^(\\d+)(?:\\.(\\d{1,9}))?(ms|s|m|h)$';
const PATTERN = new RegExp(DURATION_PATTERN);
const EXPECTED = 'expected a duration such as 250ms, 2s, 1.5s, 1m or 1h';

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return String(v);
  if (v === null) return 'null';
  return Array.isArray(v) ? 'an array' : typeof v;
}

/** The fix for a number written without a unit: the same digits with the two likely units. */
function noUnit(v: number | string): string {
  // "1.5ms" is not a whole number of milliseconds, so a fraction gets seconds only.
  return Number.isInteger(Number(v)) ? `${show(v)} has no unit; write "${v}s" or "${v}ms"` : `${show(v)} has no unit; write "${v}s"`;
}

/**
 * Parse a duration into milliseconds.
 * Returns the number of ms (a non-negative safe integer), or an error message
 * (a string) that quotes the bad value, so callers can attach their own path.
 */
export function parseDuration(v: unknown): number | string {
  if (typeof v === 'number') {
    if (v === 0) return 0;
    return Number.isFinite(v) && v > 0 ? noUnit(v) : `${EXPECTED}, got ${show(v)}`;
  }
  if (typeof v !== 'string') return `${EXPECTED}, got ${show(v)}`;
  if (/^\d+(?:\.\d+)?$/.test(v)) return v === '0' ? 0 : noUnit(v);
  const m = PATTERN.exec(v);
  if (!m) return `${EXPECTED}, got ${show(v)}`;
  const [, whole = '0', frac = '', unit] = m;
  const unitMs = UNIT_MS[unit as DurationUnit];
  // Integer arithmetic: 1.1 * 1000 is 1100.0000000000002 in floating point.
  const scale = 10 ** frac.length;
  const fracMs = Number(frac || '0') * unitMs;
  if (fracMs % scale !== 0) return `${EXPECTED}, got ${show(v)} (not a whole number of milliseconds)`;
  const ms = Number(whole) * unitMs + fracMs / scale;
  return Number.isSafeInteger(ms) ? ms : `${EXPECTED}, got ${show(v)} (too large)`;
}

/** Format milliseconds with the largest unit that divides them exactly, e.g. `60s`, `1h`, `250ms`. */
export function formatDuration(ms: number): Duration {
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms !== 0 && ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
