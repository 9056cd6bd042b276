/**
 * `switchyard upgrade`: ask the running balancer (through its admin API,
 * `POST /api/upgrade`) to start a new process of itself, or of `--binary PATH`,
 * and hand it everything: listening sockets, the admin socket, established
 * plain TCP connections. Exit 0: the new process took over (its pid printed);
 * 1: it failed (the running balancer keeps serving) or the balancer cannot be
 * reached; 2: bad usage or an unreadable file.
 */
import { AdminCallFailure, adminTarget, postAdmin, type AdminErrorBody } from '../admin-client.js';
import { ConfigError } from '../errors.js';

/** What `upgrade` is told on the command line. */
export interface UpgradeArgs {
  /** The configuration file the balancer runs (its admin address and token). */
  file: string | null;
  /** `--admin URL`: the admin server, overriding the file's `admin.address`. */
  admin?: string;
  /** `--binary PATH`: the executable the new process runs (with the same arguments). */
  binary?: string;
  json: boolean;
}

/** The answer of `POST /api/upgrade` (200). */
interface Upgraded {
  pid: number;
  version: string;
  connections: number;
  bytes: number;
  ms: number;
}

/** Run `switchyard upgrade`; resolves with the exit status (output already written). */
export async function upgradeCommand(a: UpgradeArgs): Promise<number> {
  try {
    const { url, token } = await adminTarget(a.file, a.admin, 'ask for an upgrade', 'or send the balancer SIGUSR2');
    const { status, body } = await postAdmin(url, token, '/api/upgrade', a.binary === undefined ? {} : { binary: a.binary });
    if (a.json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    if (status === 200) {
      const u = body as Upgraded;
      if (!a.json) {
        process.stdout.write(
          `upgraded: pid ${u.pid} (version ${u.version}) accepts now; ${u.connections} established connection(s) handed over with ${u.bytes} byte(s) in flight, in ${u.ms} ms; the old process drains the rest and exits\n`,
        );
      }
      return 0;
    }
    const e = (body as Partial<AdminErrorBody>).error ?? { code: 'internal', message: JSON.stringify(body) };
    if (!a.json) process.stderr.write(`switchyard: ${url}/api/upgrade answered ${status} ${e.code}: ${e.message}\n`);
    return 1;
  } catch (err) {
    const failure = err instanceof ConfigError ? new AdminCallFailure(2, 'invalid_config', err.message) : err;
    if (!(failure instanceof AdminCallFailure)) throw err;
    if (a.json) process.stdout.write(`${JSON.stringify({ error: { code: failure.code, message: failure.message } }, null, 2)}\n`);
    else process.stderr.write(`switchyard: ${failure.message}\n`);
    return failure.exitCode;
  }
}
