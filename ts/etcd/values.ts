/**
 * What one etcd key under a pool's `backends_from.etcd` prefix means: its value is a backend,
 * either `"ip:port"` or JSON `{"address": "ip:port", "weight"?: 1..max, "backup"?: bool}`.
 * Pure (bytes in, record or reason out), so a bad value is reported and skipped, never applied.
 */
import { describe, parseAddress } from '../config/checker.js';
import { LIMITS } from '../binding/catalog.generated.js';
import type { DnsRecord } from '../dns/resolve.js';

const VALUE_KEYS = new Set(['address', 'weight', 'backup']);

/** The backend a key's value names, or why it names none. */
export function parseMember(value: string): DnsRecord | string {
  const text = value.trim();
  let raw: unknown = text;
  if (text.startsWith('{')) {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      return `not JSON: ${(err as Error).message}`;
    }
  }
  const obj = typeof raw === 'string' ? { address: raw } : raw;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return `expected "ip:port" or {"address", "weight"?, "backup"?}, got ${describe(raw)}`;
  const o = obj as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !VALUE_KEYS.has(k));
  if (unknown.length) return `unknown key(s) ${unknown.join(', ')} (expected address, weight, backup)`;
  if (typeof o.address !== 'string') return `address: expected "ip:port", got ${describe(o.address)}`;
  const addr = parseAddress(o.address, 1);
  if (typeof addr === 'string') return `address: ${addr}`;
  const { min, max } = LIMITS.weight;
  if (o.weight !== undefined && (typeof o.weight !== 'number' || !Number.isInteger(o.weight) || o.weight < min || o.weight > max)) {
    return `weight: expected an integer ${min}..${max}, got ${describe(o.weight)}`;
  }
  if (o.backup !== undefined && typeof o.backup !== 'boolean') return `backup: expected true or false, got ${describe(o.backup)}`;
  return { address: addr.text, weight: (o.weight as number | undefined) ?? null, backup: o.backup === true };
}
