/**
 * `switchyard reload`: ask a running balancer to re-read its configuration file
 * through its admin API (`POST /api/reload`) and say what changed. The admin
 * address and token come from the same configuration file the balancer runs
 * (the token read the way the file declares it: inline, `token_file` or
 * `token_env`), or the address from `--admin URL`. Exit 0: reloaded; 2: the new
 * file is invalid (every issue printed, the running configuration stays); 1: the
 * balancer cannot be reached, or the file has no `admin` section.
 */
import { request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { checkAdmin } from '../config/admin.js';
import { Checker, isObject } from '../config/checker.js';
import { loadConfigFile } from '../config/load.js';
import type { ResolvedAdmin } from '../config/types.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { formatChanges, type ConfigChanges } from './changes.js';

/** What `reload` is told on the command line. */
export interface ReloadArgs {
  /** The configuration file the balancer runs (where the admin address and token are read). */
  file: string | null;
  /** `--admin URL`: the admin server, overriding the file's `admin.address`. */
  admin?: string;
  json: boolean;
}

/** How long the balancer may take to answer (a reload may resolve host names). */
const TIMEOUT_MS = 60_000;

/** The answer of `POST /api/reload` (200). */
interface Reloaded {
  file: string;
  listeners: string[];
  pools: string[];
  admin_restart_required: boolean;
  changes: ConfigChanges;
}

/** An error body of the admin API. */
interface ErrorBody {
  error: { code: string; message: string; issues?: ConfigIssue[] };
}

/** A failure of the command itself: its exit status and message. */
class Failure extends Error {
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
    throw new Failure(2, 'bad_request', `--admin: expected http://HOST:PORT or HOST:PORT, got "${value}"`);
  }
  if (url.protocol !== 'http:' || !url.port) throw new Failure(2, 'bad_request', `--admin: expected http://HOST:PORT or HOST:PORT, got "${value}"`);
  return `http://${url.host}`;
}

/** Where to send the request and with which token. */
async function target(a: ReloadArgs): Promise<{ url: string; token: string | null }> {
  const admin = a.file === null ? null : await adminSection(a.file);
  if (a.admin !== undefined) return { url: parseAdminFlag(a.admin), token: admin?.token ?? null };
  if (admin === null) {
    throw new Failure(
      1,
      'admin_not_configured',
      `${a.file} has no admin section, so there is no admin API to ask for a reload. Enable it in the file (admin: { address: 127.0.0.1:8479 }, plus token_file off loopback) and restart the balancer, pass --admin URL, or send the balancer SIGHUP.`,
    );
  }
  if (admin.address.endsWith(':0')) {
    throw new Failure(1, 'admin_not_configured', `${a.file}: admin.address ${admin.address} binds a port picked at start; pass --admin URL with the port it logged (admin.started), or give admin.address a fixed port`);
  }
  return { url: adminUrl(admin.address), token: admin.token };
}

/** POST `url/api/reload`; resolves with the status and parsed body. */
function post(url: string, token: string | null): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/api/reload`, { method: 'POST', agent: false, headers: token === null ? {} : { authorization: `Bearer ${token}` }, timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          reject(new Failure(1, 'bad_response', `${url} is not a Switchyard admin API: POST /api/reload answered ${res.statusCode} with ${JSON.stringify(text.slice(0, 200))}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Failure(1, 'unreachable', `the balancer's admin API at ${url} did not answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof Failure) return reject(err);
      const why = err.code === 'ECONNREFUSED' ? 'connection refused: is the balancer running, with this admin address?' : (err.code ?? err.message);
      reject(new Failure(1, 'unreachable', `cannot reach the balancer's admin API at ${url}: ${why}`));
    });
    req.end();
  });
}

/** What the command prints for an answer, and its exit status. */
function report(url: string, file: string | null, status: number, body: unknown): { exitCode: number; text: string; toStderr: boolean } {
  if (status === 200) {
    const r = body as Reloaded;
    const restart = r.admin_restart_required ? 'note: the admin section changed; it applies after a restart of the balancer\n' : '';
    return { exitCode: 0, toStderr: false, text: `reloaded ${r.file} (${r.listeners.length} listener(s), ${r.pools.length} pool(s)):\n${formatChanges(r.changes)}${restart}` };
  }
  const e = (body as Partial<ErrorBody>).error ?? { code: 'internal', message: JSON.stringify(body) };
  if (status === 422 && e.code === 'invalid_config') {
    // The text `switchyard validate` prints: every issue, with file, line and column.
    const invalid = new ConfigError(file ?? 'the configuration file', e.issues ?? []);
    return { exitCode: 2, toStderr: true, text: `switchyard: reload refused; the running configuration stays in force.\n${invalid.message}\n` };
  }
  const hint =
    status === 401 ? ' (the token from the configuration file is not the one the balancer runs with)' : e.code === 'bind_failed' ? '\nswitchyard: nothing changed; the running configuration stays in force' : '';
  return { exitCode: 1, toStderr: true, text: `switchyard: ${url}/api/reload answered ${status} ${e.code}: ${e.message}${hint}\n` };
}

/** Run `switchyard reload`; resolves with the exit status (output already written). */
export async function reloadCommand(a: ReloadArgs): Promise<number> {
  try {
    const { url, token } = await target(a);
    const { status, body } = await post(url, token);
    const r = report(url, a.file, status, body);
    if (a.json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    else (r.toStderr ? process.stderr : process.stdout).write(r.text);
    return r.exitCode;
  } catch (err) {
    if (err instanceof ConfigError) {
      // Not even the admin section could be read: the file's issues, as `validate` prints them.
      if (a.json) process.stdout.write(`${JSON.stringify({ error: { code: 'invalid_config', message: err.message, issues: err.issues } }, null, 2)}\n`);
      else process.stderr.write(`switchyard: ${err.message}\n`);
      return 2;
    }
    if (!(err instanceof Failure)) throw err;
    if (a.json) process.stdout.write(`${JSON.stringify({ error: { code: err.code, message: err.message } }, null, 2)}\n`);
    else process.stderr.write(`switchyard: ${err.message}\n`);
    return err.exitCode;
  }
}
