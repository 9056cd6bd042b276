/**
 * Sizes in bytes, written the way nginx operators write them: a number of
 * bytes (`16384`) or a string with a binary unit (`"16k"`, `"1m"`, `"2g"`;
 * k = 1024). Used by HTTP limits (`max_header_size`, `max_body_size`).
 */

/** A size as written in a config: bytes, or a string such as `"16k"`, `"1m"`, `"2g"`. */
export type Size = number | `${number}${'k' | 'K' | 'm' | 'M' | 'g' | 'G'}` | `${number}`;

/** Source of the accepted string syntax; the JSON Schema's pattern is the same text. */
export const SIZE_PATTERN = '^(\\d+)([kKmMgG]?)$';
const PATTERN = new RegExp(SIZE_PATTERN);
const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parse a size into bytes; a string result is the error (quoting the value). */
export function parseSize(v: unknown): number | string {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  const m = typeof v === 'string' ? PATTERN.exec(v) : null;
  if (m) {
    const bytes = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
    if (Number.isSafeInteger(bytes)) return bytes;
  }
  const shown = typeof v === 'string' ? JSON.stringify(v) : typeof v === 'number' ? String(v) : v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
  return `expected a size in bytes or with a unit such as 16k, 1m or 2g (k = 1024), got ${shown}`;
}

/** A size as a user would write it: the largest unit that divides it (`16384` → `"16k"`). */
export function formatSize(bytes: number): string {
  for (const unit of ['g', 'm', 'k'] as const) {
    const n = UNITS[unit]!;
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return String(bytes);
}
