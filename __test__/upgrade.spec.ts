// `switchyard upgrade` against real processes: a new process takes the listening sockets, the
// admin socket and the established plain TCP connections of the running one. A transfer in
// flight (checksums compared) and 200 idle connections survive and are served by the new
// process once the old one has exited; wrk through an HTTP listener and /readyz see no error
// meanwhile; a new binary that cannot start, one that exits at once, and a broken file leave
// the old process serving.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openapiDocument } from '../ts/admin/openapi.js';
import { validate } from '../ts/admin/schema.js';
import { cli, json, listenerPort, runWrk, startBalancer, type Balancer } from './balancer-process.js';
import { connect, drain, echo, refusedPort, waitFor, type Peer } from './helpers.js';
import { spawnBackend, stopAll, track } from './processes.js';

afterEach(stopAll);

const IDLE = 200;

/** Send `msg` and read it back (through an echo backend). */
async function ping(s: net.Socket, msg: string): Promise<void> {
  const got = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      if (buf.length >= msg.length) {
        s.off('data', onData);
        resolve(buf);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(msg);
  });
  expect(got).toBe(msg);
}

/** Write distinct 64 KiB chunks until `more()` says stop, then end; resolves with what was sent. */
async function streamWhile(s: net.Socket, more: () => boolean): Promise<{ sha256: string; length: number }> {
  const h = createHash('sha256');
  const block = Buffer.alloc(64 * 1024, 0x5a);
  let length = 0;
  for (let i = 0; more() || i < 64; i++) {
    const piece = Buffer.from(block);
    piece.writeUInt32LE(i, 0);
    h.update(piece);
    length += piece.length;
    if (!s.write(piece)) await new Promise((r) => s.once('drain', r));
  }
  s.end();
  return { sha256: h.digest('hex'), length };
}

/** Is process `pid` still running? */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Setup {
  dir: string;
  file: string;
  adminPort: number;
  lb: Balancer;
  tcp: number;
  web: number;
  backend: Peer;
}

/** A balancer (its own process group) with a TCP listener to an echo backend and an HTTP listener. */
async function setup(extra: object = {}, env: Record<string, string> = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-upgrade-'));
  const backend = await echo();
  const http = await spawnBackend('h', 0, 'http-echo-server.mjs');
  const adminPort = await refusedPort();
  const file = join(dir, 'lb.json');
  json(file, {
    workers: 2,
    listeners: {
      tcp: { address: '127.0.0.1:0', pool: 'echo', idle_timeout: '5m' },
      web: { address: '127.0.0.1:0', protocol: 'http', pool: 'web' },
    },
    pools: { echo: { backends: [{ address: `127.0.0.1:${backend.port}` }] }, web: { backends: [{ address: http.address }] } },
    admin: { address: `127.0.0.1:${adminPort}` },
    ...extra,
  });
  const lb = startBalancer(['-c', file], env, true);
  await lb.logged('admin.started');
  return { dir, file, adminPort, lb, tcp: await listenerPort(lb, 'tcp'), web: await listenerPort(lb, 'web'), backend };
}

/** GET /readyz on a new connection each time, as keepalived's check does (curl). */
const readyz = (adminPort: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: adminPort, path: '/readyz', agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
  });

describe('switchyard upgrade', () => {
  it('hands a transfer in flight and 200 idle connections to the new process, which serves them after the old one exited; wrk and /readyz see no error', async () => {
    const s = await setup();
    const idle = await Promise.all(Array.from({ length: IDLE }, () => connect(s.tcp)));
    // A reset is asserted through `ping`; after a failure, the cleanup's resets are not errors.
    idle.forEach((c) => c.on('error', () => {}));
    await Promise.all(idle.map((c, i) => ping(c, `hello ${i}\n`)));

    let upgraded = false;
    const transfer = await connect(s.tcp);
    transfer.on('error', () => {}); // asserted through `drain`
    const received = drain(transfer);
    const sent = streamWhile(transfer, () => !upgraded);
    const wrk = runWrk(`http://127.0.0.1:${s.web}/`);
    // /readyz polled with fresh connections all along: a keepalived check would never fail.
    const probes: number[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) probes.push(await readyz(s.adminPort).catch(() => 0));
    })();
    await waitFor(async () => {
      const r = (await (await fetch(`http://127.0.0.1:${s.adminPort}/api/listeners`)).json()) as { listeners: { name: string; accepted: number }[] };
      return r.listeners.find((l) => l.name === 'web')!.accepted >= 16;
    }, 'wrk connected');

    const up = await cli(['upgrade', '-c', s.file, '--json']);
    upgraded = true;
    expect(up, up.stderr).toMatchObject({ code: 0 });
    const report = JSON.parse(up.stdout) as { pid: number; connections: number; bytes: number; ms: number };
    // As documented in the OpenAPI document (`Upgraded`).
    expect(validate(report, { $ref: '#/components/schemas/Upgraded' }, openapiDocument(), 'response')).toEqual([]);
    // Every idle connection and the transfer went over (wrk's go through the HTTP listener and drain in the old one).
    expect(report.connections).toBe(IDLE + 1);
    const oldPid = s.lb.child.pid!;
    expect(report.pid).not.toBe(oldPid);

    // The old process drains what it kept (wrk's HTTP connections: told to reconnect) and exits.
    await waitFor(() => s.lb.exited(), 'the old process exited', 30_000);
    expect(s.lb.lines().find((l) => l.event === 'upgrade.completed')).toMatchObject({ new_pid: report.pid, connections: IDLE + 1 });
    expect(alive(report.pid)).toBe(true);

    const [out, back] = await Promise.all([sent, received]);
    expect(back.length).toBe(out.length);
    expect(back.sha256).toBe(out.sha256);
    // Served by the new process: the old one is gone.
    await Promise.all(idle.map((c, i) => ping(c, `still here ${i}\n`)));
    const fresh = await connect(s.tcp);
    await ping(fresh, 'a new connection\n');
    fresh.destroy();
    idle.forEach((c) => c.destroy());

    const w = await wrk.stop();
    probing = false;
    await prober;
    expect(w.requests).toBeGreaterThan(0);
    expect(w.errors, w.text).toEqual({ connect: 0, read: 0, write: 0, timeout: 0 });
    expect(w.non2xx, w.text).toBe(0);
    expect(probes.length).toBeGreaterThan(0);
    expect(probes.filter((p) => p !== 200)).toEqual([]);
    expect(await readyz(s.adminPort)).toBe(200);
    console.log(`upgrade: ${report.connections} connections (${report.bytes} bytes in flight) in ${report.ms} ms; ${w.requests} wrk requests, ${probes.length} readyz probes`);
    s.backend.close();
  });

  it('tells systemd READY=1 once serving, and the new process of an upgrade sends MAINPID=<its pid> with READY=1', async () => {
    // systemd's notify socket: a Unix datagram socket (Node has none; python3 prints each datagram as JSON).
    const path = join(mkdtempSync(join(tmpdir(), 'switchyard-notify-')), 'notify.sock');
    const receiver = spawn(
      'python3',
      ['-c', 'import json,socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound",flush=True)\nwhile True: print(json.dumps(s.recv(4096).decode()),flush=True)', path],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    void track(receiver);
    let got = '';
    receiver.stdout!.on('data', (d: Buffer) => (got += d.toString()));
    await waitFor(() => got.includes('bound'), 'the notify socket');
    const datagrams = () => got.split('\n').filter((l) => l.startsWith('"')).map((l) => JSON.parse(l) as string);

    const s = await setup({}, { NOTIFY_SOCKET: path });
    await waitFor(() => datagrams().includes('READY=1'), 'READY=1 from the first process');
    const up = await cli(['upgrade', '-c', s.file, '--json']);
    expect(up, up.stderr).toMatchObject({ code: 0 });
    const { pid } = JSON.parse(up.stdout) as { pid: number };
    await waitFor(() => datagrams().includes(`MAINPID=${pid}\nREADY=1`), 'MAINPID and READY=1 from the new process');
    s.backend.close();
  });

  it('a binary that does not exist, one that exits at once, and a broken file leave the old process serving; a good upgrade still works after', async () => {
    const s = await setup();
    const held = await connect(s.tcp);
    await ping(held, 'before\n');

    const missing = await cli(['upgrade', '-c', s.file, '--binary', join(s.dir, 'no-such-switchyard')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/502 upgrade_failed: cannot start .*no-such-switchyard.*ENOENT/);

    const quits = join(s.dir, 'quits.sh');
    writeFileSync(quits, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    const exits = await cli(['upgrade', '-c', s.file, '--binary', quits]);
    expect(exits.code).toBe(1);
    expect(exits.stderr).toMatch(/502 upgrade_failed: the new process .* exited with status 3/);

    // A file the new process refuses (an unknown algorithm; the admin section still reads).
    const good = JSON.stringify(JSON.parse(await (await import('node:fs/promises')).readFile(s.file, 'utf8')));
    const broken = JSON.parse(good) as { pools: { echo: { algorithm?: string } } };
    broken.pools.echo.algorithm = 'no_such_algorithm';
    json(s.file, broken);
    const refused = await cli(['upgrade', '-c', s.file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/502 upgrade_failed: the new process .* exited with status 2/);

    // Through all of it the old process kept serving, the held connection too.
    expect(s.lb.exited()).toBe(false);
    await ping(held, 'after the failures\n');
    const fresh = await connect(s.tcp);
    await ping(fresh, 'new\n');
    fresh.destroy();
    expect(await readyz(s.adminPort)).toBe(200);
    expect(s.lb.lines().filter((l) => l.event === 'upgrade.failed')).toHaveLength(3);

    writeFileSync(s.file, good);
    const ok = await cli(['upgrade', '-c', s.file]);
    expect(ok, ok.stderr).toMatchObject({ code: 0 });
    expect(ok.stdout).toMatch(/^upgraded: pid \d+ .* 1 established connection\(s\) handed over/);
    await waitFor(() => s.lb.exited(), 'the old process exited', 30_000);
    await ping(held, 'served by the new process\n');
    held.destroy();
    s.backend.close();
  });
});
