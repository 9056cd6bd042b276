/** IP addresses and CIDR ranges in configuration (`10.0.0.0/8`, `::1/128`, a bare address). */
import { isIP } from 'node:net';

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
