// The UDP workloads (issue 17): 64 flows of 64-byte request/reply through a UDP proxy, per flow
// (udp-flow) and a flow per datagram (udp-dgram). The load generator and the echo backends are
// benches/udp-load (a small Rust crate outside the main workspace, built here when a UDP
// workload runs); this file builds it, starts the echo backends, runs the load and checks that
// a UDP peer relays.
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import * as procs from './procs.mjs';

/** The UDP workloads: run by the `udp: true` peers and direct only. */
export const UDP_WORKLOADS = ['udp-flow', 'udp-dgram'];
/** The load of every UDP workload: flows (sockets, distinct source ports), bytes per datagram, requests in flight per flow. */
export const UDP_LOAD = { flows: 64, size: 64, window: 1 };
/** Which listener of a UDP peer a workload uses: per flow (responses 0) or a flow per datagram (responses 1). */
export const UDP_LISTENER = { 'udp-flow': 'httpPort', 'udp-dgram': 'dgramPort' };

/** Whether `workload` is a UDP one. */
export function isUdpWorkload(workload) {
  return workload.startsWith('udp-');
}

/** Where the run builds the crate to (benches/work/udp-load) and its binary. */
function udpLoadBinary(ctx) {
  return path.join(ctx.workDir, 'udp-load', 'release', 'udp-load');
}

/**
 * `cargo build --release` of benches/udp-load into benches/work/udp-load (its own workspace and
 * target directory: the main workspace is never built). Returns the binary, or throws with why.
 */
export function buildUdpLoad(ctx) {
  const manifest = path.join(ctx.repoRoot, 'benches/udp-load/Cargo.toml');
  const r = spawnSync('cargo', ['build', '--release', '--quiet', '--manifest-path', manifest, '--target-dir', path.join(ctx.workDir, 'udp-load')], {
    encoding: 'utf8',
    cwd: ctx.repoRoot,
  });
  if (r.error) throw new Error(`cargo ${r.error.code === 'ENOENT' ? 'missing' : r.error.message}`);
  if (r.status !== 0) {
    const lines = String(r.stderr).trim().split('\n');
    throw new Error(`cargo build failed: ${(lines.find((l) => /error/.test(l)) ?? lines.at(-1)).slice(0, 200)}`);
  }
  return udpLoadBinary(ctx);
}

/** The echo backends: one process, one socket and thread per port of ctx.ports.udpEcho. */
export async function startUdpEcho(ctx) {
  const dir = path.join(ctx.workDir, 'backend');
  fs.mkdirSync(dir, { recursive: true });
  const proc = procs.start('backend-udp-echo', ctx.udpLoad, ['echo', '--port', ctx.ports.udpEcho.join(',')], { logDir: dir, cwd: ctx.repoRoot });
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    if (proc.exitInfo) throw new Error(`UDP echo backends exited (code ${proc.exitInfo.code}): ${procs.tail(proc.logErr, 3)}`);
    if (fs.readFileSync(proc.logOut, 'utf8').includes('ready')) {
      for (const port of ctx.ports.udpEcho) await waitUdpEcho(proc, port, deadline);
      return proc;
    }
    await sleep(50);
  }
  await procs.stop(proc);
  throw new Error('UDP echo backends not ready after 10s');
}

/** One request/reply over UDP: resolves true when `port` echoes a datagram within `timeoutMs`. */
export function udpEchoes(port, timeoutMs = 300) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const probe = Buffer.from(`ready? ${process.pid} ${Date.now()}`);
    const done = (ok) => {
      clearTimeout(timer);
      s.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.on('message', (m) => done(m.equals(probe)));
    s.on('error', () => done(false));
    s.send(probe, port, '127.0.0.1');
  });
}

/** Wait until a datagram to `port` comes back (through the proxy `proc`, or from the backend). */
export async function waitUdpEcho(proc, port, deadline = Date.now() + 30000) {
  while (Date.now() < deadline) {
    if (proc.exitInfo) {
      const why = proc.exitInfo.error ?? `exited with code ${proc.exitInfo.code}`;
      throw new Error(`${why}: ${[procs.tail(proc.logErr, 3), procs.tail(proc.logOut, 3)].filter(Boolean).join(' | ')}`);
    }
    if (await udpEchoes(port)) return;
  }
  throw new Error(`no UDP echo through port ${port} in time`);
}

/** One run of the load generator against 127.0.0.1:`port`: its JSON summary. */
export async function udpLoad(ctx, { port, seconds }) {
  const { flows, size, window } = UDP_LOAD;
  const args = ['load', '--target', `127.0.0.1:${port}`, '--flows', String(flows), '--size', String(size), '--window', String(window), '--duration', String(seconds)];
  const r = await procs.run(ctx.udpLoad, args, { timeoutMs: (seconds + 30) * 1000 });
  let j = null;
  try {
    j = JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {}
  if (r.code !== 0 || !j) throw new Error(`udp-load failed (code ${r.code}): ${(r.stderr || r.stdout).trim().slice(-300)}`);
  return j;
}

/**
 * A UDP workload against `port`: a 1 s warm-up, then the counted run. Exchanges/s, loss (requests
 * never answered: timed out after 1 s, or unanswered 1 s after the run), round-trip p50/p99, and
 * the proxy's CPU µs and context switches per exchange (`usage`: its process tree, or null).
 */
export async function measureUdp(ctx, { port, seconds, usage }) {
  if (!ctx.udpLoad) throw new Error(`the UDP load generator is not available: ${ctx.udpLoadError ?? 'not built'}`);
  if (!ctx.udpEcho || ctx.udpEcho.exitInfo) throw new Error('the UDP echo backends are not running');
  await udpLoad(ctx, { port, seconds: 1 }); // warm-up
  const u0 = usage();
  const r = await udpLoad(ctx, { port, seconds });
  const u1 = usage();
  const m = {
    rps: r.rate,
    requests: r.exchanges,
    sent: r.sent,
    answered: r.answered,
    lost: r.lost,
    late: r.late,
    loss_pct: r.loss_pct,
    p50_ms: r.p50_us == null ? null : r.p50_us / 1000,
    p99_ms: r.p99_us == null ? null : r.p99_us / 1000,
    flows: r.flows,
    size: r.size,
    window: r.window,
  };
  if (u0 && u1 && r.exchanges > 0) {
    const cpuS = u1.cpu_s - u0.cpu_s;
    const ctxSw = u1.ctx_switches - u0.ctx_switches;
    Object.assign(m, { cpu_s: cpuS, ctx_switches: ctxSw, cpu_us_per_req: (cpuS * 1e6) / r.exchanges, ctx_per_req: ctxSw / r.exchanges });
  }
  if (!r.exchanges) m.error = `no exchange completed (${r.sent} sent)`;
  else if (r.errors) m.error = `${r.errors} socket errors (first: ${r.first_error})`;
  return m;
}

