/**
 * What each `switchyard` command accepts, with defaults: the text of
 * `switchyard COMMAND --help`, and the defaults `cli.ts` applies (one place, so
 * the help cannot drift from the behaviour).
 */
import { CONFIG_ENV, CONFIG_NAMES } from './config/discover.js';

/** How long `start` lets connections drain on SIGINT/SIGTERM. */
export const DEFAULT_DRAIN_MS = 10_000;
/** The demo balancer's port. */
export const DEFAULT_DEMO_PORT = 8080;

/** One flag of a command. */
export interface Flag {
  /** As typed, e.g. `-c, --config FILE`. */
  flag: string;
  doc: string;
  /** Shown as `(default: …)`. */
  default?: string;
}

/** One command: its synopsis, what it does, its flags. */
export interface Command {
  usage: string;
  summary: string;
  flags: Flag[];
  notes?: string;
}

const CONFIG_FLAG: Flag = {
  flag: '-c, --config FILE',
  doc: 'configuration file (.yaml, .yml, .json, .js, .mjs, .cjs, .ts, .mts, .cts)',
  default: `$${CONFIG_ENV}, else the first of ${CONFIG_NAMES.join(', ')} in the working directory`,
};
const LOG_FLAG: Flag = {
  flag: '--log-level LEVEL',
  doc: 'drop log lines below LEVEL: trace, debug, info, warn, error, fatal (JSON lines unless stdout is a terminal)',
  default: 'info',
};
const HELP_FLAG: Flag = { flag: '-h, --help', doc: 'this help' };

/** Every command, in the order `switchyard --help` lists them. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  start: {
    usage: 'switchyard start [-c FILE | --etcd URL --etcd-key KEY] [--drain-ms N] [--watch] [--log-level LEVEL]',
    summary:
      'Run a balancer in the foreground. SIGINT/SIGTERM drain and stop it (plain TCP connections still open at the end close spread over the drain window); SIGHUP reloads FILE; SIGUSR2 upgrades (as `switchyard upgrade`; with a file). Tells systemd READY=1 under Type=notify. With --etcd, the configuration is the value (YAML or JSON) of an etcd key, applied again whenever it changes (an invalid value keeps the running configuration: GET /api/config says why).',
    flags: [
      CONFIG_FLAG,
      { flag: '--etcd URL[,URL]', doc: 'read the configuration from etcd (v3 API) at these client URLs instead of a file' },
      { flag: '--etcd-key KEY', doc: 'the etcd key holding the configuration, e.g. /switchyard/config' },
      { flag: '--drain-ms N', doc: 'on SIGINT/SIGTERM, wait up to N ms for open connections before closing them', default: String(DEFAULT_DRAIN_MS) },
      { flag: '--watch', doc: "reload when FILE's content changes (its directory is watched, so a rename over it counts; a broken file is logged and changes nothing)" },
      LOG_FLAG,
      HELP_FLAG,
    ],
    notes: 'Exit codes: 0 stopped by a signal, 1 runtime failure (e.g. an address in use), 2 invalid configuration or usage.',
  },
  reload: {
    usage: 'switchyard reload [-c FILE] [--admin URL] [--json]',
    summary: "Make the running balancer re-read its configuration file through its admin API (POST /api/reload) and print what changed: listeners, pools and each pool's backends added (+), removed (-) or changed (~).",
    flags: [
      { ...CONFIG_FLAG, doc: `${CONFIG_FLAG.doc}: the file the balancer runs; its admin section gives the address and the token` },
      { flag: '--admin URL', doc: 'the admin API (http://HOST:PORT or HOST:PORT) instead of admin.address; the token still comes from FILE when there is one' },
      { flag: '--json', doc: 'print the response of POST /api/reload (or {"error": {code, message}}) on stdout' },
      HELP_FLAG,
    ],
    notes: 'Exit codes: 0 reloaded, 1 the balancer cannot be reached or the file has no admin section, 2 the file is invalid (every issue printed; the running configuration stays).',
  },
  upgrade: {
    usage: 'switchyard upgrade [-c FILE] [--admin URL] [--binary PATH] [--json]',
    summary:
      'Replace the running balancer by a new process through its admin API (POST /api/upgrade): the new one receives the listening sockets, the admin socket and the established plain TCP connections (with their bytes in flight), starts accepting, and the old one drains what it could not hand over (TLS, HTTP) and exits. No connection attempt is refused.',
    flags: [
      { ...CONFIG_FLAG, doc: `${CONFIG_FLAG.doc}: the file the balancer runs; its admin section gives the address and the token` },
      { flag: '--admin URL', doc: 'the admin API (http://HOST:PORT or HOST:PORT) instead of admin.address; the token still comes from FILE when there is one' },
      { flag: '--binary PATH', doc: 'the executable the new process runs, with the same arguments', default: 'the running command again (after `npm install` replaced its files)' },
      { flag: '--json', doc: 'print the response of POST /api/upgrade (or {"error": {code, message}}) on stdout' },
      HELP_FLAG,
    ],
    notes:
      'Exit codes: 0 the new process took over (its pid is printed), 1 it failed to start, exited or was not ready in time (the running balancer keeps serving everything), or the balancer cannot be reached, 2 bad usage or an unreadable file.',
  },
  validate: {
    usage: 'switchyard validate [-c FILE] [--json]',
    summary: 'Check a configuration: exit 0, or exit 2 listing every problem (file:line:col: field: message).',
    flags: [
      CONFIG_FLAG,
      { flag: '--json', doc: 'print {"ok", "file", "issues": [{ path, message, file, line, col }]} on stdout instead of text' },
      HELP_FLAG,
    ],
  },
  plan: {
    usage: 'switchyard plan [-c FILE] [--pool NAME] [--add ADDR] [--remove ADDR] [--weight ADDR=W] [--algorithm NAME] [--keys FILE] [--samples N] [--json]',
    summary: 'What moves if a pool changes: shares before and after, and the keys that move.',
    flags: [
      CONFIG_FLAG,
      { flag: '--pool NAME', doc: 'the pool to change', default: 'the only pool (required when there are several)' },
      { flag: '--add ADDR', doc: 'add a backend (repeatable)' },
      { flag: '--remove ADDR', doc: 'remove a backend (repeatable)' },
      { flag: '--weight ADDR=W', doc: 'set a backend weight (repeatable)' },
      { flag: '--algorithm NAME', doc: 'switch the algorithm' },
      { flag: '--keys FILE', doc: 'client keys (ip or ip:port), one per line; # starts a comment', default: 'synthetic keys' },
      { flag: '--samples N', doc: 'how many synthetic keys', default: '100000' },
      { flag: '--json', doc: 'print the report as JSON' },
      HELP_FLAG,
    ],
  },
  demo: {
    usage: 'switchyard demo [--port N] [--log-level LEVEL]',
    summary: 'Three demo backends behind a TCP listener (round robin) on the port and an HTTP listener with routes (canary header, /api/, the rest) on the port + 1.',
    flags: [{ flag: '--port N', doc: 'TCP listener port; the HTTP one is the next (0 picks free ones)', default: String(DEFAULT_DEMO_PORT) }, LOG_FLAG, HELP_FLAG],
  },
};

/** The text of `switchyard NAME --help`, or undefined for an unknown command. */
export function commandHelp(name: string): string | undefined {
  const c = COMMANDS[name];
  if (!c) return undefined;
  const width = Math.max(...c.flags.map((f) => f.flag.length));
  const flags = c.flags.map((f) => `  ${f.flag.padEnd(width)}  ${f.doc}${f.default === undefined ? '' : ` (default: ${f.default})`}`);
  return `Usage: ${c.usage}\n\n${c.summary}\n\nOptions:\n${flags.join('\n')}\n${c.notes ? `\n${c.notes}\n` : ''}`;
}
