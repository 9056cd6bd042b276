/**
 * The `admin` section of a configuration: the bind address and the bearer
 * token, which may be written inline, read from a file (`token_file`, the way
 * Prometheus' `credentials_file` and systemd credentials hand out secrets) or
 * taken from an environment variable (`token_env`), so the secret need not sit
 * in the configuration file itself.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Addr, Checker } from './checker.js';
import { describe } from './checker.js';
import { DEFAULTS } from './defaults.js';
import { ADMIN, keysOf } from './fields.js';
import type { ResolvedAdmin } from './types.js';

/** Every key of the `admin` section (declared, with the JSON Schema, in `fields.ts`). */
const ADMIN_KEYS = keysOf(ADMIN);
/** The keys that each give the token; at most one may be set. */
const TOKEN_KEYS = ['token', 'token_file', 'token_env'] as const;
/** Shortest and longest accepted admin token. */
const MIN_TOKEN = 16;
const MAX_TOKEN = 1024;
/** A portable environment variable name (POSIX: letters, digits, underscore; no leading digit). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Loopback: 127.0.0.0/8 and ::1. */
function isLoopback(a: Addr): boolean {
  return a.v6 ? a.ip === '[::1]' : a.ip.startsWith('127.');
}

/** Check a token's text; `from` says where it came from. The token itself is never echoed. */
function checkToken(c: Checker, token: string, path: string, from: string): string | null {
  if (token.length >= MIN_TOKEN && token.length <= MAX_TOKEN && /^[\x21-\x7e]+$/.test(token)) return token;
  c.add(path, `expected a token of ${MIN_TOKEN}..${MAX_TOKEN} printable ASCII characters without spaces, got ${from}a string of ${token.length} characters${token.length >= MIN_TOKEN ? ' (with spaces or non-ASCII characters)' : ''}`);
  return null;
}

/** Read the token of `admin.token_file` (relative to the configuration's directory); one trailing newline and surrounding blanks are dropped. */
function tokenFromFile(c: Checker, raw: unknown, base: string): string | null {
  if (typeof raw !== 'string' || raw === '') {
    c.add('admin.token_file', `expected the path of a file holding the token, got ${describe(raw)}`);
    return null;
  }
  const path = resolve(base, raw);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    c.add('admin.token_file', `cannot read ${path}: ${why}`);
    return null;
  }
  return checkToken(c, text.trim(), 'admin.token_file', `${path} holding `);
}

/** Read the token of `admin.token_env` from the process environment. */
function tokenFromEnv(c: Checker, raw: unknown): string | null {
  if (typeof raw !== 'string' || !ENV_NAME.test(raw)) {
    c.add('admin.token_env', `expected the name of an environment variable (letters, digits, _), got ${describe(raw)}`);
    return null;
  }
  const value = process.env[raw];
  if (value === undefined || value === '') {
    c.add('admin.token_env', `the environment variable ${raw} is ${value === undefined ? 'not set' : 'empty'}`);
    return null;
  }
  return checkToken(c, value.trim(), 'admin.token_env', `$${raw} holding `);
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
  const given = TOKEN_KEYS.filter((k) => a[k] !== undefined);
  let token: string | null = null;
  if (given.length > 1) {
    c.add('admin', `give the token one way only: ${given.join(' and ')} are both set (use one of ${TOKEN_KEYS.join(', ')})`);
  } else if (a.token !== undefined) {
    if (typeof a.token === 'string') token = checkToken(c, a.token, 'admin.token', '');
    else c.add('admin.token', `expected a token of ${MIN_TOKEN}..${MAX_TOKEN} printable ASCII characters without spaces, got ${describe(a.token)}`);
  } else if (a.token_file !== undefined) {
    token = tokenFromFile(c, a.token_file, base);
  } else if (a.token_env !== undefined) {
    token = tokenFromEnv(c, a.token_env);
  } else if (addr && !isLoopback(addr)) {
    c.add('admin.token', `required when admin.address is not loopback (127.0.0.0/8, [::1]), got address ${describe(addr.given)} and no token (set token, token_file or token_env)`);
  }
  return [{ address: addr?.text ?? '', token }, addr];
}
