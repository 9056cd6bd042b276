/**
 * Calling a running balancer's admin API from the command line (`switchyard
 * reload`, `switchyard upgrade`): where it listens and with which token, read
 * from the same configuration file the balancer runs (the token the way the
 * file declares it: inline, `token_file` or `token_env`), or `--admin URL`; and
 * one POST with a JSON answer. Failures carry the command's exit status.
 */
import { request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { checkAdmin } from './config/admin.js';
import { Checker, isObject } from './config/checker.js';
import { loadConfigFile } from './config/load.js';
import type { ResolvedAdmin } from './config/types.js';
import { ConfigError, type ConfigIssue } from './errors.js';

/** How long the balancer may take to answer (a reload may resolve host names; an upgrade starts a process). */
const TIMEOUT_MS = 120_000;

/** An error body of the admin API. */
export interface AdminErrorBody {
  error: { code: string; message: string; issues?: ConfigIssue[] };
}

/** A failure of the command itself: its exit status, a stable code and a message. */
export class AdminCallFailure extends Error {
  constructor(
    readonly exitCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The `admin` section of `file`. A valid file gives it whole; an invalid one
 * (the reason for many reloads) is read again as plain YAML/JSON and only its
 * `admin` section checked, so its issues can still come from the balancer.
 * @throws ConfigError when not even the `admin` section can be read
 */
async function adminSection(file: string): Promise<ResolvedAdmin | null> {
  let invalid: ConfigError;
  try {
    return (await loadConfigFile(file)).admin;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    invalid = err;
  }
  if (!['.yaml', '.yml', '.json'].includes(extname(file).toLowerCase())) throw invalid;
  let raw: unknown;
  try {
    raw = parseYaml((await readFile(file, 'utf8')).replace(/^\uFEFF/, ''));
  } catch {
    throw invalid;
  }
  if (!isObject(raw)) throw invalid;
  const c = new Checker();
  const [admin] = checkAdmin(c, raw.admin, dirname(file));
  if (c.issues.length) throw invalid;
  return admin;
}

/** `http://host:port` of an admin `host:port`; a wildcard bind is reached on loopback. */
function adminUrl(address: string): string {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i);
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
  return `http://${local}:${address.slice(i + 1)}`;
}

/** `--admin`: `http://host:port` or `host:port`. */
function parseAdminFlag(value: string): string {
  const text = /^[a-z]+:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new AdminCallFailure(2, 'bad_request', `--admin: expected http://HOST:PORT or HOST:PORT, got "${value}"`);
  }
  if (url.protocol !== 'http:' || !url.port) throw new AdminCallFailure(2, 'bad_request', `--admin: expected http://HOST:PORT or HOST:PORT, got "${value}"`);
  return `http://${url.host}`;
}

/**
 * Where to send the request and with which token: `--admin` (`flag`), else the admin
 * section of `file`. `what` and `otherwise` finish the message when there is none
 * (e.g. "ask for a reload", "or send the balancer SIGHUP").
 */
export async function adminTarget(file: string | null, flag: string | undefined, what: string, otherwise: string): Promise<{ url: string; token: string | null }> {
  const admin = file === null ? null : await adminSection(file);
  if (flag !== undefined) return { url: parseAdminFlag(flag), token: admin?.token ?? null };
  if (admin === null) {
    throw new AdminCallFailure(
      1,
      'admin_not_configured',
      `${file} has no admin section, so there is no admin API to ${what}. Enable it in the file (admin: { address: 127.0.0.1:8479 }, plus token_file off loopback) and restart the balancer, pass --admin URL, ${otherwise}.`,
    );
  }
  if (admin.address.endsWith(':0')) {
    throw new AdminCallFailure(1, 'admin_not_configured', `${file}: admin.address ${admin.address} binds a port picked at start; pass --admin URL with the port it logged (admin.started), or give admin.address a fixed port`);
  }
  return { url: adminUrl(admin.address), token: admin.token };
}

/** POST `url` + `path` (with a JSON `body`, if given); resolves with the status and parsed body. */
export function postAdmin(url: string, token: string | null, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', agent: false, headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          reject(new AdminCallFailure(1, 'bad_response', `${url} is not a Switchyard admin API: POST ${path} answered ${res.statusCode} with ${JSON.stringify(text.slice(0, 200))}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new AdminCallFailure(1, 'unreachable', `the balancer's admin API at ${url} did not answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof AdminCallFailure) return reject(err);
      const why = err.code === 'ECONNREFUSED' ? 'connection refused: is the balancer running, with this admin address?' : (err.code ?? err.message);
      reject(new AdminCallFailure(1, 'unreachable', `cannot reach the balancer's admin API at ${url}: ${why}`));
    });
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

