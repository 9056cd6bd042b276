#!/usr/bin/env node
/**
 * The `switchyard` command: start, reload, validate, plan, demo (flags and defaults: `cli-commands.ts`). Exit codes: 0 ok, 1 runtime
 * failure, 2 invalid configuration or usage.
 */
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { loadConfigFile } from './config/load.js';
import { loadConfigCode } from './config/code.js';
import type { Algorithm, ResolvedConfig } from './config/types.js';
import { CONFIG_ENV, CONFIG_NAMES, discoverConfig, notFoundMessage } from './config/discover.js';
import { commandHelp, DEFAULT_DEMO_PORT, DEFAULT_DRAIN_MS } from './cli-commands.js';
import { formatPlan, planChange, type PlanChange } from './plan.js';
import { demoBanner, startDemo } from './demo.js';
import { ConfigError, SwitchyardError } from './errors.js';
import { consoleLogger, jsonLines, parseLevel, type Logger, type LogLevel } from './log.js';
import { Switchyard } from './switchyard.js';
import { EtcdConfigSource } from './etcd/config-source.js';
import { packageVersion } from './version.js';
import { reloadCommand } from './reload/command.js';
import { FileReloader } from './reload/file-reload.js';
import { watchConfig } from './reload/watch.js';
import { sdNotify } from './binding/handoff.js';
import { inherit, takeOver } from './upgrade/inherit.js';
import { upgrader } from './upgrade/upgrader.js';
import { upgradeCommand } from './upgrade/command.js';

const HELP = `switchyard — an L4 load balancer with a Rust data plane and a TypeScript control plane

Usage:
  switchyard start [-c FILE] [--drain-ms N] [--watch]
                                            run in the foreground (SIGINT/SIGTERM drain, SIGHUP reloads FILE,
                                            SIGUSR2 upgrades; --watch: reload when FILE changes)
  switchyard start --etcd URL --etcd-key KEY
                                            the same, with the configuration in an etcd key (reloaded when it changes)
  switchyard reload [-c FILE] [--admin URL] [--json]
                                            make the running balancer re-read FILE (admin API); print what changed;
                                            exit 2 if the file is invalid (nothing changes), 1 if unreachable
  switchyard upgrade [-c FILE] [--admin URL] [--binary PATH] [--json]
                                            replace the running balancer by a new process (admin API): it takes the
                                            sockets and established TCP connections; exit 1 if it fails (nothing changes)
  switchyard validate [-c FILE] [--json]    check a config; exit 0, or exit 2 with every error
  switchyard demo [--port N]                three demo backends behind a balancer: tcp on N (default 8080), http on N+1
  switchyard plan [-c FILE] [--pool NAME] [--add ADDR] [--remove ADDR] [--weight ADDR=W] [--algorithm NAME]
                  [--keys FILE] [--samples N] [--json]
                                            what moves if the pool changes: shares before/after, keys that move
  switchyard COMMAND --help                 the flags of one command, with their defaults
  switchyard --version | --help

Logs (start, demo): one line per event with a level; JSON (pino-compatible) unless stdout is a
terminal. --log-level trace|debug|info|warn|error|fatal drops lines below it (default info).

Config files: .yaml, .yml, .json, .js, .mjs, .ts (export default defineConfig({...})). Without -c:
$${CONFIG_ENV}, else the first of ${CONFIG_NAMES.join(', ')} in the working directory.
`;

/** Wait for SIGINT/SIGTERM, then drain and close. */
function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`switchyard: error while stopping after ${signal}: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** Where a failed start is reported: set once `start` runs (a JSON line unless stderr is a terminal). */
let fatalLog: Logger | undefined;

/**
 * Upgrades of a `start` process: the sockets inherited when an upgrade started it, SIGUSR2 and
 * `POST /api/upgrade` (through `upgrade`), and what follows once its balancer serves (`serving`:
 * tell systemd, take over from the old process and adopt its connections).
 */
async function upgrades(log: Logger, balancer: () => Promise<Switchyard>, stop: () => Promise<void>) {
  // Started by an upgrade: the old process's sockets first (they are served as soon as we start).
  const inheritance = await inherit(packageVersion());
  const upgrade = upgrader({ balancer, log, retire: () => void stop().then(() => process.exit(0), () => process.exit(1)) });
  process.on('SIGUSR2', () => void upgrade({}).catch(() => {})); // logged as upgrade.failed
  const serving = (lb: Switchyard): void => {
    if (!inheritance) {
      sdNotify('READY=1');
      return;
    }
    takeOver(inheritance);
    lb.adopt(inheritance.child).then(
      (h) => log('upgrade.adopted', { connections: h.connections, bytes: h.bytes }),
      (err: unknown) => log('upgrade.adopt_failed', { error: err instanceof Error ? err.message : String(err) }, 'error'),
    );
  };
  return { options: { upgrade, ...(inheritance ? { handoff: inheritance } : {}) }, serving };
}

async function start(file: string, drainMs: number, level: LogLevel, watch: boolean): Promise<void> {
  if (!process.stderr.isTTY) fatalLog = jsonLines(process.stderr);
  const log = consoleLogger({ level });
  const reloader = new FileReloader(file, log);
  // Long-lived plain connections still open at the end end spread over the drain window.
  const stop = (): Promise<void> => {
    watcher?.close();
    return starting.then((lb) => lb.close({ drainMs, spread: true }));
  };
  const up = await upgrades(log, () => starting, stop);
  // Taken before the start reads the file, so an edit made while it starts is reloaded after.
  const watcher = watch ? watchConfig(file, () => void starting.then((lb) => reloader.reload(lb, 'watch'), () => {}), log) : undefined;
  // Hook functions and control loops the config module exports (read once, at start).
  const starting = loadConfigCode(file).then((code) => {
    if (code.hooks || code.policies) log('config.code', { file, hooks: Object.keys(code.hooks ?? {}), policies: (code.policies ?? []).map((p) => p.name) });
    return Switchyard.fromFile(file, { logger: log, ...up.options, ...code });
  });
  // Handlers go in before the start completes: the start logs `listener.started` before it
  // returns, and a signal sent on seeing that line must not meet Node's default (exit).
  process.on('SIGHUP', () => void starting.then((lb) => reloader.reload(lb, 'signal'), () => {}));
  stopOnSignal(stop);
  up.serving(await starting);
}

async function startFromEtcd(endpoints: string[], key: string, drainMs: number, level: LogLevel): Promise<void> {
  if (!process.stderr.isTTY) fatalLog = jsonLines(process.stderr);
  const log = consoleLogger({ level });
  const source = new EtcdConfigSource(endpoints, key);
  const stop = (): Promise<void> =>
    starting.then((lb) => {
      source.close();
      return lb.close({ drainMs, spread: true });
    });
  const up = await upgrades(log, () => starting, stop);
  const starting = (async () => {
    const { config, revision } = await source.load();
    const lb = await Switchyard.start(config, { logger: log, source: source.source, configSource: () => source.status(), ...up.options });
    log('config.source', { source: source.source, endpoints, revision });
    await source.watch((next) => lb.update(next, { source: source.source }), log);
    return lb;
  })();
  starting.catch(() => source.close());
  process.on('SIGHUP', () => log('config.reload_ignored', { reason: `the configuration is ${source.source}: it is reloaded when the key changes` }));
  stopOnSignal(stop);
  up.serving(await starting);
}

/** `validate`: a line of text, or with `json` one JSON object (`ok`, `file`, `issues`) for tools; exit 2 on any issue. */
async function validate(file: string, json: boolean): Promise<void> {
  let c: ResolvedConfig;
  try {
    c = await loadConfigFile(file);
  } catch (err) {
    if (!json || !(err instanceof ConfigError)) throw err;
    const issues = err.issues.map((i) => ({ path: i.path, message: i.message, file: err.source, line: i.line ?? null, col: i.col ?? null }));
    process.stdout.write(`${JSON.stringify({ ok: false, file, issues }, null, 2)}\n`);
    process.exit(2);
  }
  if (json) process.stdout.write(`${JSON.stringify({ ok: true, file, issues: [], listeners: c.listeners.length, pools: c.pools.length }, null, 2)}\n`);
  else process.stdout.write(`${file}: ok (${c.listeners.length} listener(s), ${c.pools.length} pool(s))\n`);
}

async function demo(port: number, level: LogLevel): Promise<void> {
  const d = await startDemo(port, consoleLogger({ level }));
  process.stdout.write(demoBanner(d));
  stopOnSignal(() => d.stop());
}

interface PlanArgs {
  file: string;
  pool?: string;
  add: string[];
  remove: string[];
  weight: string[];
  algorithm?: string;
  keys?: string;
  samples?: number;
  json: boolean;
}

async function plan(a: PlanArgs): Promise<void> {
  const config = await loadConfigFile(a.file);
  const pool = a.pool ?? (config.pools.length === 1 ? config.pools[0]!.name : usage(`--pool is required: ${a.file} has pools ${config.pools.map((p) => p.name).join(', ')}`));
  const weight: Record<string, number> = {};
  for (const w of a.weight) {
    const i = w.lastIndexOf('=');
    const n = Number(w.slice(i + 1));
    if (i < 0 || !Number.isInteger(n)) usage(`--weight: expected ADDR=WEIGHT, got "${w}"`);
    weight[w.slice(0, i)] = n;
  }
  const change: PlanChange = { add: a.add, remove: a.remove, weight, ...(a.algorithm ? { algorithm: a.algorithm as Algorithm } : {}) };
  const keys = a.keys
    ? (await readFile(a.keys, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    : undefined;
  const report = planChange(config, pool, change, { ...(keys ? { keys } : {}), ...(a.samples ? { samples: a.samples } : {}) });
  process.stdout.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : formatPlan(report));
}

function usage(message: string): never {
  process.stderr.write(`switchyard: ${message}\n\n${HELP}`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string' },
      'drain-ms': { type: 'string' },
      watch: { type: 'boolean' },
      admin: { type: 'string' },
      binary: { type: 'string' },
      etcd: { type: 'string' },
      'etcd-key': { type: 'string' },
      'log-level': { type: 'string' },
      pool: { type: 'string' },
      add: { type: 'string', multiple: true },
      remove: { type: 'string', multiple: true },
      weight: { type: 'string', multiple: true },
      algorithm: { type: 'string' },
      keys: { type: 'string' },
      samples: { type: 'string' },
      json: { type: 'boolean' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.version) return void process.stdout.write(`${packageVersion()}\n`);
  // `switchyard help start` is `switchyard start --help`.
  const command = positionals[0] === 'help' && positionals[1] ? positionals[1] : positionals[0];
  if (values.help || positionals[0] === 'help' || !command) {
    const text = command ? commandHelp(command) : HELP;
    return text ? void process.stdout.write(text) : usage(`unknown command "${command}"`);
  }
  const needFile = (): string => {
    if (values.config) return values.config;
    const found = discoverConfig();
    if (found.file !== null) return found.file;
    const message = notFoundMessage(found.tried);
    if (command === 'validate' && values.json) {
      process.stdout.write(`${JSON.stringify({ ok: false, file: null, issues: [{ path: '(file)', message, file: null, line: null, col: null }] }, null, 2)}\n`);
      process.exit(2);
    }
    process.stderr.write(`switchyard: ${message}\n`);
    process.exit(2);
  };
  const int = (v: string | undefined, name: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    return Number.isInteger(n) && n >= 0 ? n : usage(`--${name}: expected a non-negative integer, got "${v}"`);
  };
  const level = (): LogLevel => {
    try {
      return parseLevel(values['log-level'] ?? 'info');
    } catch (err) {
      return usage((err as Error).message);
    }
  };
  switch (command) {
    case 'start': {
      const drain = int(values['drain-ms'], 'drain-ms', DEFAULT_DRAIN_MS);
      if (values.etcd === undefined && values['etcd-key'] === undefined) return start(needFile(), drain, level(), values.watch ?? false);
      if (values.config) usage('--etcd and -c are exclusive: the configuration comes from etcd or from a file');
      if (values.watch) usage('--watch watches a file; with --etcd the key is watched anyway');
      const endpoints = (values.etcd ?? '').split(',').map((u) => u.trim()).filter(Boolean);
      if (endpoints.length === 0 || endpoints.some((u) => !/^http:\/\/[^/\s]+$/.test(u))) usage(`--etcd: expected client URLs such as http://127.0.0.1:2379 (comma-separated), got "${values.etcd ?? ''}"`);
      if (!values['etcd-key']?.startsWith('/')) usage(`--etcd-key: expected a key such as /switchyard/config, got "${values['etcd-key'] ?? ''}"`);
      return startFromEtcd(endpoints, values['etcd-key']!, drain, level());
    }
    case 'reload': {
      // With --admin the file is only where the token comes from, so it may be absent.
      const file = values.config ?? (values.admin === undefined ? needFile() : discoverConfig().file);
      process.exitCode = await reloadCommand({ file, json: values.json ?? false, ...(values.admin === undefined ? {} : { admin: values.admin }) });
      return;
    }
    case 'upgrade': {
      const file = values.config ?? (values.admin === undefined ? needFile() : discoverConfig().file);
      process.exitCode = await upgradeCommand({
        file,
        json: values.json ?? false,
        ...(values.admin === undefined ? {} : { admin: values.admin }),
        ...(values.binary === undefined ? {} : { binary: values.binary }),
      });
      return;
    }
    case 'validate':
      return validate(needFile(), values.json ?? false);
    case 'demo':
      return demo(int(values.port, 'port', DEFAULT_DEMO_PORT), level());
    case 'plan':
      return plan({
        file: needFile(),
        add: values.add ?? [],
        remove: values.remove ?? [],
        weight: values.weight ?? [],
        json: values.json ?? false,
        ...(values.pool ? { pool: values.pool } : {}),
        ...(values.algorithm ? { algorithm: values.algorithm } : {}),
        ...(values.keys ? { keys: values.keys } : {}),
        ...(values.samples ? { samples: int(values.samples, 'samples', 100_000) } : {}),
      });
    default:
      usage(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (fatalLog) {
    // A balancer that fails to start says so in the format of its other log lines.
    const exitCode = err instanceof ConfigError ? 2 : 1;
    const prefix = err instanceof SwitchyardError && !(err instanceof ConfigError) ? `[${err.code}] ` : '';
    const fields = {
      // The same text as the plain-text report, so a reader of either finds the code and the field.
      error: `${prefix}${err instanceof Error ? err.message : String(err)}`,
      ...(err instanceof SwitchyardError ? { code: err.code } : {}),
      ...(err instanceof ConfigError ? { issues: err.issues } : {}),
      exit_code: exitCode,
    };
    fatalLog('start_failed', fields, 'fatal');
    process.exit(exitCode);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`switchyard: ${err.message}\n`);
    process.exit(2);
  }
  const code = err instanceof SwitchyardError ? ` [${err.code}]` : '';
  process.stderr.write(`switchyard:${code} ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof TypeError && /parseArgs|Unknown option/i.test(err.message) ? 2 : 1);
});
