// The `switchyard` command as a user runs it: a real process, real signals, curl as the client.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
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
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  it('starts three backends behind a balancer that curl reaches round robin', async () => {
    const d = daemon('demo', '--port', '0');
    const url = (await waitFor(() => /balancer: (http:\/\/\S+)/.exec(d.out()), 'the demo URL'))[1]!;
    const seen = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const { stdout } = await run('curl', ['-sS', '--max-time', '10', url]);
      seen.add(/backend (\d)/.exec(stdout)![1]!);
    }
    expect([...seen].sort()).toEqual(['1', '2', '3']);
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
