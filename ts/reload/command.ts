/**
 * `switchyard reload`: ask a running balancer to re-read its configuration file
 * through its admin API (`POST /api/reload`) and say what changed. The admin
 * address and token come from the same configuration file the balancer runs
 * (the token read the way the file declares it: inline, `token_file` or
 * `token_env`), or the address from `--admin URL`. Exit 0: reloaded; 2: the new
 * file is invalid (every issue printed, the running configuration stays); 1: the
 * balancer cannot be reached, or the file has no `admin` section.
 */
import { AdminCallFailure as Failure, adminTarget, postAdmin, type AdminErrorBody as ErrorBody } from '../admin-client.js';
import { ConfigError } from '../errors.js';
import { formatChanges, type ConfigChanges } from './changes.js';

/** What `reload` is told on the command line. */
export interface ReloadArgs {
  /** The configuration file the balancer runs (where the admin address and token are read). */
  file: string | null;
  /** `--admin URL`: the admin server, overriding the file's `admin.address`. */
  admin?: string;
  json: boolean;
}

/** The answer of `POST /api/reload` (200). */
interface Reloaded {
  file: string;
  listeners: string[];
  pools: string[];
  admin_restart_required: boolean;
  changes: ConfigChanges;
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
    const { url, token } = await adminTarget(a.file, a.admin, 'ask for a reload', 'or send the balancer SIGHUP');
    const { status, body } = await postAdmin(url, token, '/api/reload');
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
