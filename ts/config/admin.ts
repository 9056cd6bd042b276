/**
 * The `admin` section of a configuration: the bind address and the bearer
 * token, which may be written inline, read from a file (`token_file`, the way
 * Prometheus' `credentials_file` and systemd credentials hand out secrets) or
 * taken from an environment variable (`token_env`), so the secret need not sit
 * in the configuration file itself.
 */
import { describe, type Addr, type Checker } from './checker.js';
import { DEFAULTS } from './defaults.js';
import { ADMIN, keysOf } from './fields.js';
import { readSecret } from './secret.js';
import type { ResolvedAdmin } from './types.js';

/** Every key of the `admin` section (declared, with the JSON Schema, in `fields.ts`). */
const ADMIN_KEYS = keysOf(ADMIN);

/** Loopback: 127.0.0.0/8 and ::1. */
function isLoopback(a: Addr): boolean {
  return a.v6 ? a.ip === '[::1]' : a.ip.startsWith('127.');
}

/**
 * Check the `admin` section: a bind address and a bearer token (inline, from a
 * file or from the environment), required off loopback.
 * @param base directory that a relative `token_file` is read from
 * @returns the resolved section (null when absent) and the parsed address for the clash check
 */
export function checkAdmin(c: Checker, raw: unknown, base: string): [ResolvedAdmin | null, Addr | undefined] {
  if (raw === undefined) return [null, undefined];
  const a = c.object(raw, 'admin', `an object with keys ${ADMIN_KEYS.join(', ')}`);
  if (!a) return [null, undefined];
  c.keys(a, ADMIN_KEYS, 'admin');
  const addr = c.address(a.address ?? DEFAULTS.admin_address, 'admin.address', 0);
  const token = readSecret(c, a, 'admin', { inline: 'token', file: 'token_file', env: 'token_env' }, 'token', base);
  if (token === undefined && addr && !isLoopback(addr)) {
    c.add('admin.token', `required when admin.address is not loopback (127.0.0.0/8, [::1]), got address ${describe(addr.given)} and no token (set token, token_file or token_env)`);
  }
  return [{ address: addr?.text ?? '', token: token ?? null }, addr];
}
