/** IP addresses and CIDR ranges in configuration (`10.0.0.0/8`, `::1/128`, a bare address). */
import { isIP } from 'node:net';
import { Checker, describe } from './checker.js';

/**
 * Why `text` is not an address range, or null when it is one. The data plane parses the same
 * text again (and would refuse what this accepts only if they disagreed).
 */
export function cidrProblem(text: string): string | null {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return `expected an IP address or CIDR such as 10.0.0.0/8, got ${JSON.stringify(text)}`;
  if (slash < 0) return null;
  const max = family === 4 ? 32 : 128;
  const prefix = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `prefix length of ${JSON.stringify(text)} must be 0..${max}`;
  return null;
}

/**
 * A list of addresses/CIDRs at `path` (each problem reported at its index); the valid entries,
 * trimmed. `nonEmpty`: an empty or missing list is an issue too.
 */
export function checkCidrs(c: Checker, raw: unknown, path: string, nonEmpty: boolean): string[] {
  if (!Array.isArray(raw) || (nonEmpty && raw.length === 0)) {
    c.add(path, `expected a${nonEmpty ? ' non-empty' : ''} list of IP addresses or CIDRs (e.g. ["10.0.0.0/8"]), got ${describe(raw)}`);
    return [];
  }
  const ok: string[] = [];
  raw.forEach((t, i) => {
    const problem = typeof t === 'string' ? cidrProblem(t.trim()) : `expected a string, got ${describe(t)}`;
    if (problem) c.add(`${path}[${i}]`, problem);
    else ok.push((t as string).trim());
  });
  return ok;
}
