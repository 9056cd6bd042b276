/**
 * A secret in the configuration (the admin token, a sticky-cookie key): written
 * inline, read from a file (the way Prometheus' `credentials_file` and systemd
 * credentials hand out secrets) or taken from an environment variable, so it
 * need not sit in the configuration file itself. Exactly one way; the secret
 * itself is never echoed in a message.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, type Checker, type Obj } from './checker.js';

/** Shortest and longest accepted secret. */
export const MIN_SECRET = 16;
const MAX_SECRET = 1024;
/** A portable environment variable name (POSIX: letters, digits, underscore; no leading digit). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The three keys that may give one secret, e.g. `token`, `token_file`, `token_env`. */
export interface SecretKeys {
  inline: string;
  file: string;
  env: string;
}

/** Check a secret's text; `from` says where it came from. */
function checkText(c: Checker, text: string, path: string, noun: string, from: string): string | null {
  if (text.length >= MIN_SECRET && text.length <= MAX_SECRET && /^[\x21-\x7e]+$/.test(text)) return text;
  c.add(path, `expected a ${noun} of ${MIN_SECRET}..${MAX_SECRET} printable ASCII characters without spaces, got ${from}a string of ${text.length} characters${text.length >= MIN_SECRET ? ' (with spaces or non-ASCII characters)' : ''}`);
  return null;
}

/** Read a secret file (relative to `base`); one trailing newline and surrounding blanks are dropped. */
function fromFile(c: Checker, raw: unknown, path: string, noun: string, base: string): string | null {
  if (typeof raw !== 'string' || raw === '') {
    c.add(path, `expected the path of a file holding the ${noun}, got ${describe(raw)}`);
    return null;
  }
  const file = resolve(base, raw);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    c.add(path, `cannot read ${file}: ${why}`);
    return null;
  }
  return checkText(c, text.trim(), path, noun, `${file} holding `);
}

/** Read a secret from the process environment. */
function fromEnv(c: Checker, raw: unknown, path: string, noun: string): string | null {
  if (typeof raw !== 'string' || !ENV_NAME.test(raw)) {
    c.add(path, `expected the name of an environment variable (letters, digits, _), got ${describe(raw)}`);
    return null;
  }
  const value = process.env[raw];
  if (value === undefined || value === '') {
    c.add(path, `the environment variable ${raw} is ${value === undefined ? 'not set' : 'empty'}`);
    return null;
  }
  return checkText(c, value.trim(), path, noun, `$${raw} holding `);
}

/**
 * Read the secret that object `o` (at `path`) gives one of three ways.
 * @param noun what the secret is called in messages (`token`, `secret`)
 * @param base directory that a relative file name is read from
 * @returns the secret, null when it was given but is unusable (reported), undefined when none of the keys is set
 */
export function readSecret(c: Checker, o: Obj, path: string, keys: SecretKeys, noun: string, base: string): string | null | undefined {
  const all = [keys.inline, keys.file, keys.env];
  const given = all.filter((k) => o[k] !== undefined);
  if (given.length > 1) {
    c.add(path, `give the ${noun} one way only: ${given.join(' and ')} are both set (use one of ${all.join(', ')})`);
    return null;
  }
  if (o[keys.inline] !== undefined) {
    const v = o[keys.inline];
    if (typeof v === 'string') return checkText(c, v, `${path}.${keys.inline}`, noun, '');
    c.add(`${path}.${keys.inline}`, `expected a ${noun} of ${MIN_SECRET}..${MAX_SECRET} printable ASCII characters without spaces, got ${describe(v)}`);
    return null;
  }
  if (o[keys.file] !== undefined) return fromFile(c, o[keys.file], `${path}.${keys.file}`, noun, base);
  if (o[keys.env] !== undefined) return fromEnv(c, o[keys.env], `${path}.${keys.env}`, noun);
  return undefined;
}
