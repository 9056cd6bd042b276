// The `switchyard` command as a user runs it: a real process, real signals, curl as the client.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { BindError, Switchyard } from '../ts/index.js';
import { readLine, connect, simpleConfig, tagged, waitFor } from './helpers.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-cli-'));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Run the CLI to completion; never throws, returns code and output. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliIn({}, ...args);
}

/** `cli` in another working directory and/or with extra environment variables. */
async function cliIn(opts: { cwd?: string; env?: Record<string, string> }, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // SWITCHYARD_CONFIG from the test runner's own environment must not leak into discovery tests.
  const { SWITCHYARD_CONFIG: _, ...env } = process.env;
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? process.cwd(), env: { ...env, ...opts.env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

interface Daemon {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

/** Daemons of the running test; each is killed and awaited after it, whether it passed or not. */
const daemons: Daemon[] = [];
afterEach(async () => {
  await Promise.all(
    daemons.splice(0).map((d) => {
      d.child.kill('SIGKILL'); // a no-op when it already exited
      return d.exited;
    }),
  );
});

/** A long-running CLI process with its output collected as it comes. */
function daemon(...args: string[]): Daemon {
  return daemonIn(process.cwd(), ...args);
}

/** `daemon` started in `cwd`. */
function daemonIn(cwd: string, ...args: string[]): Daemon {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const d = { child, out: () => out, exited };
  daemons.push(d);
  return d;
}

describe('switchyard validate', () => {
  it('exits 0 for a valid file', async () => {
    const f = file('ok.yaml', 'listeners:\n  web: { address: "127.0.0.1:0", pool: api }\npools:\n  api:\n    backends:\n      - address: 127.0.0.1:9001\n');
    const r = await cli('validate', '-c', f);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok');
  });

  it.each([
    ['unknown key', 'listeners:\n  web: { address: "127.0.0.1:0", pool: api, colour: red }\npools:\n  api: { backends: [{ address: "127.0.0.1:9001" }] }\n', 'listeners.web.colour'],
    ['bad address', 'listeners:\n  web: { address: "127.0.0.1:0", pool: api }\npools:\n  api: { backends: [{ address: "127.0.0.1:9001" }, { address: "127.0.0.1:9002" }, { address: "10.0.0.300:80" }] }\n', 'pools.api.backends[2].address'],
    ['duplicate listener port', 'listeners:\n  a: { address: "127.0.0.1:8000", pool: api }\n  b: { address: "127.0.0.1:8000", pool: api }\npools:\n  api: { backends: [{ address: "127.0.0.1:9001" }] }\n', 'listeners.b.address'],
    ['empty pool', 'listeners:\n  web: { address: "127.0.0.1:0", pool: api }\npools:\n  api: { backends: [] }\n', 'pools.api.backends'],
  ])('exits 2 and names the field for: %s', async (_what, text, path) => {
    const f = file('bad.yaml', text);
    const r = await cli('validate', '-c', f);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(f);
    expect(r.stderr).toContain(path);
  });

  it('exits 2 naming the file when it does not exist', async () => {
    const r = await cli('validate', '-c', join(dir, 'missing.yaml'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing.yaml');
  });
});

describe('switchyard start', () => {
  it('forwards traffic, logs lifecycle events as JSON lines, drains on SIGTERM and exits 0', async () => {
    const backend = await tagged('one');
    const f = file('start.yaml', `listeners:\n  web: { address: "127.0.0.1:0", pool: api }\npools:\n  api:\n    backends:\n      - address: ${backend.address}\n`);
    const d = daemon('start', '-c', f);
    const line = await waitFor(() => d.out().split('\n').find((l) => l.includes('"listener.started"')), 'the listener.started log line');
    const started = JSON.parse(line) as { listener: string; address: string };
    expect(started.listener).toBe('web');
    const port = Number(started.address.split(':')[1]);
    const s = await connect(port);
    expect(await readLine(s)).toBe('one');
    s.destroy();
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(d.out()).toContain('"event":"stopped"');
    await backend.close();
  });

  it('a second instance on the same address fails with a BindError naming it, and leaves the first alone', async () => {
    const backend = await tagged('first');
    // Two workers: the default shared accept queue (one socket), where SO_REUSEPORT used to let a
    // second process bind the port and take part of its connections.
    const yaml = (port: number) => `workers: 2\nlisteners:\n  web: { address: "127.0.0.1:${port}", pool: api }\npools:\n  api:\n    backends:\n      - address: ${backend.address}\n`;
    const first = daemon('start', '-c', file('first.yaml', yaml(0)));
    const line = await waitFor(() => first.out().split('\n').find((l) => l.includes('"listener.started"')), 'the first listener.started line');
    const port = Number((JSON.parse(line) as { address: string }).address.split(':')[1]);
    const second = await cli('start', '-c', file('second.yaml', yaml(port)));
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('[SWITCHYARD_ERR_BIND]');
    expect(second.stderr).toContain(`listeners.web: cannot bind 127.0.0.1:${port}`);
    // Every new connection still reaches the first instance.
    for (let i = 0; i < 5; i++) {
      const s = await connect(port);
      expect(await readLine(s)).toBe('first');
      s.destroy();
    }
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    await backend.close();
  });

  it('exits 2 on an invalid file without binding anything', async () => {
    const r = await cli('start', '-c', file('bad2.yaml', 'listeners: {}\npools: {}\nextra: 1\n'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('extra');
  });
});

describe('switchyard demo', () => {
  it('starts three backends behind a balancer that curl reaches round robin, and an HTTP listener that routes by header and path', async () => {
    const d = daemon('demo', '--port', '0');
    const url = (await waitFor(() => /balancer: (http:\/\/\S+)/.exec(d.out()), 'the demo URL'))[1]!;
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const { stdout } = await run('curl', ['-sS', '--max-time', '10', url]);
      seen.add(/backend (\d)/.exec(stdout)![1]!);
    }
    expect([...seen].sort()).toEqual(['1', '2', '3']);
    // The HTTP listener routes as the banner says: the canary header, then /api/, then the default.
    const httpUrl = (await waitFor(() => /http: +(http:\/\/\S+)/.exec(d.out()), 'the demo HTTP URL'))[1]!;
    const backendOf = async (...args: string[]) => /backend (\d) \((\w+) (\S+)\)/.exec((await run('curl', ['-sS', '--max-time', '10', ...args])).stdout)!.slice(1);
    expect(await backendOf('-H', 'X-Canary: true', `${httpUrl}api/users`)).toEqual(['3', 'GET', '/api/users']);
    const api = new Set<string>();
    for (let i = 0; i < 4; i++) api.add((await backendOf(`${httpUrl}api/users`))[0]!);
    expect([...api].sort()).toEqual(['1', '2']);
    expect(d.out()).toContain(`curl -s -H 'X-Canary: true' ${httpUrl}api/users`);
    // The banner's HTTP/2 line: h2c with prior knowledge, each request on route api.
    expect(d.out()).toContain(`curl -s --http2-prior-knowledge ${httpUrl}api/users`);
    const h2 = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const out = (await run('curl', ['-sS', '--max-time', '10', '--http2-prior-knowledge', '-w', ' http/%{http_version}', `${httpUrl}api/users`])).stdout;
      expect(out).toMatch(/ http\/2$/);
      h2.add(/backend (\d)/.exec(out)![1]!);
    }
    expect([...h2].sort()).toEqual(['1', '2']);
    d.child.kill('SIGINT');
    expect(await d.exited).toBe(0);
  });
});

describe('errors across the boundary', () => {
  it('a port in use is a BindError with a stable code', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const err = await Switchyard.start(simpleConfig(['127.0.0.1:9'], { port })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BindError);
    expect(err).toMatchObject({ code: 'SWITCHYARD_ERR_BIND' });
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    blocker.close();
  });

  it('prints the version', async () => {
    const r = await cli('--version');
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

it('a second instance on the same admin address fails with a BindError naming admin.address; a missing admin.token_file exits 2 naming it', async () => {
  const backend = await tagged('first');
  try {
    const yaml = (admin: string) => `listeners:\n  web: { address: "127.0.0.1:0", pool: api }\npools:\n  api:\n    backends:\n      - address: ${backend.address}\nadmin:\n  ${admin}\n`;
    const first = daemon('start', '-c', file('admin-first.yaml', yaml('address: "127.0.0.1:0"')));
    const line = await waitFor(() => first.out().split('\n').find((l) => l.includes('"admin.started"')), 'the first admin.started line');
    const adminAddress = (JSON.parse(line) as { address: string }).address;
    const second = daemon('start', '-c', file('admin-second.yaml', yaml(`address: "${adminAddress}"`)));
    expect(await second.exited).toBe(1);
    expect(second.out()).toContain(`[SWITCHYARD_ERR_BIND] admin.address: cannot bind ${adminAddress}: address already in use (EADDRINUSE)`);
    // The first instance's admin server still answers.
    expect((await fetch(`http://${adminAddress}/healthz`)).status).toBe(200);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const missing = join(dir, 'no-such-token');
    const bad = file('admin-token-file.yaml', yaml(`token_file: ${missing}`));
    const checked = await cli('validate', '-c', bad);
    expect(checked.code).toBe(2);
    expect(checked.stderr).toContain(bad);
    expect(checked.stderr).toContain(`admin.token_file: cannot read ${missing}: no such file`);
    // A daemon, so a start that wrongly succeeded would still be killed after the test.
    const started = daemon('start', '-c', bad);
    expect(await started.exited).toBe(2);
    expect(started.out()).toContain(`admin.token_file: cannot read ${missing}: no such file`);
  } finally {
    await backend.close();
  }
});

describe('config discovery, --help and validate --json', () => {
  const ok = (port = 0, backend = '127.0.0.1:9001') => `listeners:\n  web: { address: "127.0.0.1:${port}", pool: api }\npools:\n  api:\n    backends:\n      - address: ${backend}\n`;

  it('without -c, validate uses SWITCHYARD_CONFIG, else the first config name in the working directory, else exits 2 listing what it tried', async () => {
    const cwd = join(dir, 'discovery');
    mkdirSync(cwd, { recursive: true });
    const none = await cliIn({ cwd }, 'validate');
    expect(none.code).toBe(2);
    for (const name of ['switchyard.config.ts', 'switchyard.config.js', 'switchyard.yaml', 'switchyard.yml', 'switchyard.json']) expect(none.stderr).toContain(join(cwd, name));
    expect(none.stderr).toContain('SWITCHYARD_CONFIG');
    writeFileSync(join(cwd, 'switchyard.yml'), ok());
    const found = await cliIn({ cwd }, 'validate');
    expect(found.code).toBe(0);
    expect(found.stdout).toContain(`${join(cwd, 'switchyard.yml')}: ok`);
    // switchyard.yaml comes before switchyard.yml; this one is broken, so the exit code tells which was read.
    writeFileSync(join(cwd, 'switchyard.yaml'), `${ok()}extra: 1\n`);
    const first = await cliIn({ cwd }, 'validate');
    expect(first.code).toBe(2);
    expect(first.stderr).toContain(`${join(cwd, 'switchyard.yaml')}:7:1: extra: unknown key`);
    const env = await cliIn({ cwd, env: { SWITCHYARD_CONFIG: join(cwd, 'switchyard.yml') } }, 'validate');
    expect(env.code).toBe(0);
    const missing = await cliIn({ cwd, env: { SWITCHYARD_CONFIG: join(cwd, 'gone.yaml') } }, 'validate');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('gone.yaml');
  });

  it('start without -c runs the switchyard.yaml of its working directory', async () => {
    const backend = await tagged('found');
    const cwd = join(dir, 'discovery-start');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 'switchyard.yaml'), ok(0, backend.address));
    const d = daemonIn(cwd, 'start');
    const line = await waitFor(() => d.out().split('\n').find((l) => l.includes('"listener.started"')), 'the listener.started log line');
    const s = await connect(Number((JSON.parse(line) as { address: string }).address.split(':')[1]));
    expect(await readLine(s)).toBe('found');
    s.destroy();
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    await backend.close();
  });

  it('start --help and help validate print the flags with their defaults and exit 0', async () => {
    const start = await cli('start', '--help');
    expect(start.code).toBe(0);
    expect(start.stdout).toMatch(/^Usage: switchyard start \[-c FILE \| --etcd URL --etcd-key KEY\]/);
    expect(start.stdout).toMatch(/--drain-ms N .*\(default: 10000\)/);
    expect(start.stdout).toMatch(/-c, --config FILE .*\(default: \$SWITCHYARD_CONFIG, else the first of switchyard\.config\.ts/);
    const validate = await cli('help', 'validate');
    expect(validate.code).toBe(0);
    expect(validate.stdout).toContain('--json');
    expect((await cli('demo', '-h')).stdout).toMatch(/--port N .*\(default: 8080\)/);
    const unknown = await cli('frobnicate', '--help');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it('validate --json prints every issue with path, message, file, line and col, and exits 2', async () => {
    const f = file('json-issues.yaml', 'listeners:\n  web: { address: "127.0.0.1:0", pool: api }\npools:\n  api:\n    health_check: { interval: 10 }\n    backends:\n      - address: 10.0.0.300:80\n');
    const r = await cli('validate', '--json', '-c', f);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      ok: false,
      file: f,
      issues: [
        { path: 'pools.api.health_check.interval', message: '10 has no unit; write "10s" or "10ms"', file: f, line: 5, col: 31 },
        { path: 'pools.api.backends[0].address', message: 'expected "host:port" with an IP address, got "10.0.0.300:80"', file: f, line: 7, col: 18 },
      ],
    });
    const good = await cli('validate', '--json', '-c', file('json-ok.yaml', ok()));
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ ok: true, issues: [], listeners: 1, pools: 1 });
    const gone = await cli('validate', '--json', '-c', join(dir, 'gone.yaml'));
    expect(gone.code).toBe(2);
    expect(JSON.parse(gone.stdout)).toMatchObject({ ok: false, issues: [{ path: '(file)', line: null }] });
  });
});
