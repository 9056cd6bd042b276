// What an operator coming from nginx/HAProxy expects of reloads, drains, logs and local
// trouble: real balancers, real files, real sockets and, for the CLI and descriptor
// exhaustion, real child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Switchyard, type BackendEvent, type SwitchyardConfig } from '../ts/index.js';
import { consoleLogger, jsonLines, LEVELS } from '../ts/log.js';
import { closedByPeer, connect, peer, readLine, refusedPort, tagged, waitFor, type Peer } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-operator-'));

/** What a test started; stopped after it, passed or failed. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c().catch(() => {})));
});

function writeConfig(name: string, config: object): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

async function backend(id: string): Promise<Peer> {
  const p = await tagged(id);
  cleanups.push(() => p.close());
  return p;
}

interface Line {
  event: string;
  [field: string]: unknown;
}

/** A balancer from a file, its log lines and backend events collected. */
async function fromFile(path: string): Promise<{ lb: Switchyard; logs: Line[]; events: BackendEvent[] }> {
  const logs: Line[] = [];
  const lb = await Switchyard.fromFile(path, { logger: (event, fields = {}) => logs.push({ event, ...fields }) });
  cleanups.push(() => lb.close({ drainMs: 0 }));
  const events: BackendEvent[] = [];
  lb.on('backend', (e) => events.push(e));
  return { lb, logs, events };
}

/** One pool `main` behind listener `front` (`port` 0: any). */
function poolConfig(backends: object[], port = 0, pool: object = {}): SwitchyardConfig {
  return {
    workers: 1,
    listeners: { front: { address: `127.0.0.1:${port}`, pool: 'main' } },
    pools: { main: { ...pool, backends } } as SwitchyardConfig['pools'],
  };
}

async function admin(lb: Switchyard, method: string, path: string, json?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://${lb.adminAddress()!.address}${path}`, {
    method,
    ...(json === undefined ? {} : { body: JSON.stringify(json), headers: { 'content-type': 'application/json' } }),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

const stateOf = (lb: Switchyard, address: string) => lb.stats().pools[0]!.backends.find((b) => b.address === address)!;

describe('reload keeps runtime changes', () => {
  it('a drain set through the admin API survives a reload of an unchanged file; a file change of that field wins and says so', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const base = (backends: object[]) => ({ ...poolConfig(backends), admin: { address: '127.0.0.1:0' } });
    const path = writeConfig('reload.json', base([{ address: a.address }, { address: b.address }]));
    const { lb, logs, events } = await fromFile(path);

    const drained = await admin(lb, 'PUT', `/api/pools/main/backends/${a.address}/state`, { state: 'drain' });
    expect(drained.status, JSON.stringify(drained.body)).toBe(200);
    expect(stateOf(lb, a.address).state).toBe('drain');

    // The file did not change: the runtime drain stays, and the reload says it kept it.
    const same = await admin(lb, 'POST', '/api/reload');
    expect(same.status, JSON.stringify(same.body)).toBe(200);
    expect(stateOf(lb, a.address).state).toBe('drain');
    expect(lb.config.pools[0]!.backends[0]!.state).toBe('drain');
    expect(events.at(-1)).toMatchObject({ address: a.address, kind: 'kept', reason: 'state drain kept (runtime)' });
    expect(logs.filter((l) => l.event === 'backend.kept').at(-1)).toMatchObject({ address: a.address, reason: 'state drain kept (runtime)' });
    // New connections still avoid the drained backend.
    for (let i = 0; i < 4; i++) {
      const s = await connect(lb.address('front').port);
      expect(await readLine(s)).toBe('b');
      s.destroy();
    }

    // The file now changes that backend's state and b's weight: the file wins, and each change is logged.
    writeFileSync(path, JSON.stringify(base([{ address: a.address, state: 'maint' }, { address: b.address, weight: 5 }])));
    await lb.reload(path);
    expect(stateOf(lb, a.address).state).toBe('maint');
    expect(stateOf(lb, b.address).weight).toBe(5);
    expect(events.slice(-2)).toEqual([
      expect.objectContaining({ address: a.address, kind: 'maint', reason: 'state drain→maint (file)' }),
      expect.objectContaining({ address: b.address, kind: 'weight', reason: 'weight 1→5 (file)' }),
    ]);
    expect(logs.some((l) => l.event === 'backend.maint' && l.reason === 'state drain→maint (file)')).toBe(true);

    // A runtime weight survives the next reload of the same file; a runtime state back to ready too.
    await lb.setWeight('main', b.address, 2);
    await lb.ready('main', a.address);
    await lb.reload(path);
    expect(stateOf(lb, a.address).state).toBe('ready');
    expect(stateOf(lb, b.address).weight).toBe(2);
    expect(events.slice(-2).map((e) => e.reason)).toEqual(['state ready kept (runtime)', 'weight 2 kept (runtime)']);
  });
});

describe('drain written in the config file', () => {
  it('closes the backend connections after drain_timeout and emits drain and drain_closed, like the API', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const config = (drained?: string) =>
      poolConfig([a, b].map((p) => ({ address: p.address, state: p.address === drained ? 'drain' : 'ready' })), 0, { drain_timeout: '1s' });
    const path = writeConfig('drain.json', config());
    const { lb, logs, events } = await fromFile(path);
    // This connection stays open on whichever backend it landed on; that one is drained in the file.
    const s = await connect(lb.address('front').port);
    const target = (await readLine(s)) === 'a' ? a.address : b.address;
    const closed = closedByPeer(s);

    writeFileSync(path, JSON.stringify(config(target)));
    await lb.reload(path);
    expect(stateOf(lb, target).state).toBe('drain');
    expect(events.find((e) => e.kind === 'drain')).toMatchObject({ address: target, reason: 'state ready→drain (file)' });
    await closed;
    const done = await waitFor(() => events.find((e) => e.kind === 'drain_closed'), 'the drain_closed event');
    expect(done).toMatchObject({ address: target, reason: 'drain_timeout (1000 ms) passed' });
    expect(logs.some((l) => l.event === 'backend.drain_closed' && l.address === target)).toBe(true);
    await waitFor(() => stateOf(lb, target).active === 0, 'no connection left on the drained backend');
  });

  it('a backend that starts in drain gets the same deadline', async () => {
    const a = await backend('a');
    const path = writeConfig('start-drain.json', poolConfig([{ address: a.address, state: 'drain' }, { address: (await backend('b')).address }], 0, { drain_timeout: '1s' }));
    const { lb, events } = await fromFile(path);
    // Listeners registered after start miss the first events: read the history.
    expect(lb.events().find((e) => e.kind === 'drain')).toMatchObject({ address: a.address });
    const done = await waitFor(() => lb.events().find((e) => e.kind === 'drain_closed') ?? events.find((e) => e.kind === 'drain_closed'), 'drain_closed');
    expect(done.address).toBe(a.address);
  });
});

describe('logs', () => {
  it('logs each health transition once', async () => {
    const port = await refusedPort();
    const address = `127.0.0.1:${port}`;
    const path = writeConfig('health.json', poolConfig([{ address }], 0, { health_check: { interval: '100ms', timeout: '100ms', rise: 1, fall: 1 } }));
    const { logs, events } = await fromFile(path);
    // The event is emitted after every log line of the transition was written.
    await waitFor(() => events.some((e) => e.kind === 'down'), 'the down event');
    expect(logs.filter((l) => l.event === 'backend.down')).toHaveLength(1);
    const back = await tagged('back', port);
    cleanups.push(() => back.close());
    await waitFor(() => events.some((e) => e.kind === 'up'), 'the up event');
    expect(logs.filter((l) => l.event === 'backend.up')).toHaveLength(1);
    expect(logs.filter((l) => l.event === 'backend.down')).toHaveLength(1);
  });

  it('folds repeated ejection_skipped events: at most one per backend per second, with the count, in the log and the events list', async () => {
    const dead = `127.0.0.1:${await refusedPort()}`;
    // Accepts, then resets before a byte: each connection is a success (the streak restarts) and
    // then a failure, so every connection is one skipped ejection while the other backend is out.
    const resetting = await peer((s) => s.resetAndDestroy());
    cleanups.push(() => resetting.close());
    const passive = { consecutive_failures: 1, max_ejection_percent: 50, ejection_time: '60s' };
    const path = writeConfig('skipped.json', poolConfig([{ address: dead }, { address: resetting.address, state: 'maint' }], 0, { retries: 1, passive }));
    const { lb, logs } = await fromFile(path);
    const port = lb.address('front').port;
    // First the dead backend takes the one ejection the pool allows.
    await closedByPeer(await connect(port));
    await waitFor(() => lb.events().some((e) => e.kind === 'ejected' && e.address === dead), 'the dead backend ejected');
    await lb.ready('main', resetting.address);
    const N = 25;
    for (let i = 0; i < N; i++) {
      const s = await connect(port);
      s.write('x');
      await closedByPeer(s);
    }
    const skipped = () => lb.events().filter((e) => e.kind === 'ejection_skipped');
    const total = () => skipped().reduce((n, e) => n + 1 + (e.repeated ?? 0), 0);
    // Nothing is lost: the shown events and their counts add up to every skipped ejection.
    await waitFor(() => total() >= N, `the folded count to reach ${N}`);
    const shown = skipped();
    expect(shown.length).toBeLessThan(total());
    expect(shown.some((e) => (e.repeated ?? 0) > 0)).toBe(true);
    for (let i = 1; i < shown.length; i++) {
      if (shown[i]!.address !== shown[i - 1]!.address) continue;
      // Timers never fire early; allow for clock granularity only.
      expect(Date.parse(shown[i]!.time) - Date.parse(shown[i - 1]!.time)).toBeGreaterThanOrEqual(990);
    }
    const lines = logs.filter((l) => l.event === 'backend.ejection_skipped');
    expect(lines.length).toBe(shown.length);
    expect(lines.filter((l) => typeof l.repeated === 'number').length).toBe(shown.filter((e) => e.repeated).length);
  });

  it('formats pino-compatible JSON lines, and readable lines on a terminal', () => {
    const out: string[] = [];
    const log = jsonLines({ write: (l: string) => out.push(l) }, { level: 'info' });
    log('backend.down', { pool: 'main', address: '127.0.0.1:1', reason: 'connection refused', level: 'x', time: 'y' });
    log('started', { workers: 2 });
    log('chatty', {}, 'debug');
    expect(out).toHaveLength(2);
    const [down, started] = out.map((l) => JSON.parse(l));
    expect(down).toMatchObject({ level: LEVELS.warn, event: 'backend.down', msg: 'backend.down main 127.0.0.1:1: connection refused', pid: process.pid });
    expect(typeof down.time).toBe('number');
    expect(started).toMatchObject({ level: 30, event: 'started', workers: 2, msg: 'started' });

    const tty: string[] = [];
    consoleLogger({ stream: { isTTY: true, write: (l: string) => tty.push(l) } })('backend.down', { pool: 'main', reason: 'HTTP 503' });
    expect(tty[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}backend\.down pool=main reason="HTTP 503"\n$/);
  });
});

interface Daemon {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** A child process with its output collected; killed and awaited after the test. */
function child(command: string, args: string[]): Daemon {
  const c = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  cleanups.push(() => {
    c.kill('SIGKILL'); // a no-op once it exited
    return exited;
  });
  return { child: c, stdout: () => out, stderr: () => err, exited };
}

const jsonOf = (text: string): Line[] => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);

describe('the command line', () => {
  it('writes every line as JSON with level, time and msg; --log-level warn drops info lines', async () => {
    const live = await backend('live');
    const dead = `127.0.0.1:${await refusedPort()}`;
    const hc = { health_check: { interval: '100ms', timeout: '100ms', rise: 1, fall: 1 } };
    const path = writeConfig('cli.json', poolConfig([{ address: live.address }, { address: dead }], 0, hc));

    const info = child(process.execPath, [CLI, 'start', '-c', path]);
    await waitFor(() => info.stdout().includes('"backend.down"'), 'the down line at info');
    info.child.kill('SIGTERM');
    expect(await info.exited).toBe(0);
    const lines = jsonOf(info.stdout());
    for (const l of lines) {
      expect(typeof l.level).toBe('number');
      expect(typeof l.time).toBe('number');
      expect(typeof l.msg).toBe('string');
    }
    expect(lines.find((l) => l.event === 'listener.started')?.level).toBe(30);
    expect(lines.find((l) => l.event === 'backend.down')).toMatchObject({ level: 40, address: dead });

    const warn = child(process.execPath, [CLI, 'start', '-c', path, '--log-level', 'warn']);
    await waitFor(() => warn.stdout().includes('"backend.down"'), 'the down line at warn');
    warn.child.kill('SIGTERM');
    expect(await warn.exited).toBe(0);
    const kept = jsonOf(warn.stdout());
    expect(kept.some((l) => l.event === 'backend.down')).toBe(true);
    expect(kept.every((l) => (l.level as number) >= 40)).toBe(true);
  });

  it('reports a failed start as one fatal JSON line off a terminal, and rejects an unknown level', async () => {
    const bad = writeConfig('bad.json', { listeners: {}, pools: {}, extra: 1 });
    const r = child(process.execPath, [CLI, 'start', '-c', bad]);
    expect(await r.exited).toBe(2);
    const [line, ...rest] = jsonOf(r.stderr());
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ level: 60, event: 'start_failed', code: 'SWITCHYARD_ERR_CONFIG', exit_code: 2 });
    expect(JSON.stringify(line!.issues)).toContain('extra');

    const level = child(process.execPath, [CLI, 'start', '-c', bad, '--log-level', 'loud']);
    expect(await level.exited).toBe(2);
    expect(level.stderr()).toContain('--log-level: expected one of trace, debug, info, warn, error, fatal, got "loud"');
  });
});

describe('local descriptor exhaustion', () => {
  it('EMFILE in the health checks marks no backend down and is logged as a local error', async () => {
    const live = await backend('live');
    // The child runs a real balancer with fast checks, lets the backend come up, then takes every
    // free descriptor so the checks fail with EMFILE for real; it gives them back once a folded
    // warning shows several checks skipped, and waits for a check to succeed again.
    const script = join(dir, 'emfile.mjs');
    writeFileSync(
      script,
      `import { openSync, closeSync } from 'node:fs';
const { Switchyard } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'index.js')).href)});
const lines = [];
const logger = (event, fields = {}) => { lines.push({ event, ...fields }); process.stdout.write(JSON.stringify({ event, ...fields }) + '\\n'); };
const until = async (check, what) => {
  const deadline = Date.now() + 30000;
  while (!check()) {
    if (Date.now() > deadline) { process.stdout.write(JSON.stringify({ event: 'timeout', what }) + '\\n'); process.exit(3); }
    await new Promise((r) => setTimeout(r, 20));
  }
};
const lb = await Switchyard.start({
  workers: 1,
  listeners: { front: { address: '127.0.0.1:0', pool: 'main' } },
  pools: { main: { health_check: { interval: '100ms', timeout: '100ms', rise: 1, fall: 2 }, backends: [{ address: ${JSON.stringify(live.address)} }] } },
}, { logger });
await until(() => lb.health()[0].status === 'up', 'up');
const held = [];
try { for (;;) held.push(openSync('/dev/null', 'r')); } catch (err) { if (err.code !== 'EMFILE') throw err; }
await until(() => lines.some((l) => l.event === 'health.local_error' && l.repeated >= 3), 'skipped checks');
const during = lb.health()[0].status;
for (const fd of held) closeSync(fd);
const before = lb.health()[0].last.at;
await until(() => lb.health()[0].last.at > before && lb.health()[0].last.ok, 'a check after the descriptors came back');
process.stdout.write(JSON.stringify({ event: 'result', during, held: held.length }) + '\\n');
await lb.close({ drainMs: 0 });
`,
    );
    const c = child('bash', ['-c', `ulimit -n 256 && exec "${process.execPath}" "${script}"`]);
    const code = await c.exited;
    const lines = jsonOf(c.stdout());
    expect(code, c.stdout() + c.stderr()).toBe(0);
    const result = lines.find((l) => l.event === 'result')!;
    expect(result.held).toBeGreaterThan(0);
    expect(result.during).toBe('up');
    expect(lines.filter((l) => l.event === 'backend.down')).toEqual([]);
    const local = lines.filter((l) => l.event === 'health.local_error');
    expect(local.length).toBeGreaterThanOrEqual(2);
    expect(String(local[0]!.reason)).toContain('EMFILE');
  });
});
