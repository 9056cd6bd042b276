// The HTTP/2 workloads (issue 15): h2load over h2c with prior knowledge (h2-1: one stream per
// connection, h2-many: many streams per connection), the gRPC unary load client (grpc-unary), the
// gRPC echo backends, and the h2c / gRPC readiness checks of the HTTP/2 peers.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as procs from './procs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** h2load's settings of each h2load workload: clients (-c), streams per connection (-m), threads (-t). */
export const H2LOAD_WORKLOADS = {
  'h2-1': { clients: 32, streams: 1, threads: 2 },
  'h2-many': { clients: 4, streams: 64, threads: 2 },
};
/** Concurrent calls of the grpc-unary load client, all over one channel (one HTTP/2 connection). */
export const GRPC_CONCURRENCY = 32;
/** Bytes of each gRPC request (echoed back). */
export const GRPC_PAYLOAD = 64;
/** The HTTP/2 workloads: run by the `h2: true` peers only. */
export const H2_WORKLOADS = [...Object.keys(H2LOAD_WORKLOADS), 'grpc-unary'];

/** Whether h2load (Debian's nghttp2-client) is on the PATH. */
export function hasH2load() {
  return !spawnSync('h2load', ['--version'], { stdio: 'ignore' }).error;
}

/** Parse h2load's summary: { rps, requests, succeeded, failed, errored, timeout, non2xx, mean_ms }. */
export function parseH2load(text) {
  const out = { rps: null, requests: null, succeeded: null, failed: null, errored: null, timeout: null, non2xx: 0, mean_ms: null };
  let m = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text);
  if (m) out.rps = Number(m[1]);
  m = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  if (m) Object.assign(out, { requests: +m[2], succeeded: +m[3], failed: +m[4], errored: +m[5], timeout: +m[6] });
  m = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  if (m) out.non2xx = +m[2] + +m[3] + +m[4];
  m = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(text);
  if (m) out.mean_ms = Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3 }[m[2]];
  return out;
}

/** p50 and p99 (ms) of an h2load --log-file (one line per request: start µs, status, duration µs). */
export function latencyOfLog(file) {
  const d = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const f = line.split('\t');
    if (f.length >= 3 && f[1] !== '-1') d.push(Number(f[2]) / 1000);
  }
  d.sort((a, b) => a - b);
  const q = (p) => (d.length ? d[Math.min(d.length - 1, Math.ceil(p * d.length) - 1)] : null);
  return { p50_ms: q(0.5), p99_ms: q(0.99), logged: d.length };
}

/**
 * One h2load run of `workload` against h2c (prior knowledge) on `port` for `seconds`. With
 * `logFile`, h2load writes every request's timing there (it costs h2load ~30 % of its rate on 2
 * cores, so throughput and latency are measured in separate runs).
 */
export async function h2load({ port, seconds, workload, logFile = null }) {
  const { clients, streams, threads } = H2LOAD_WORKLOADS[workload];
  const args = [`-c${clients}`, `-m${streams}`, `-t${threads}`, `-D${seconds}`, '-T5'];
  if (logFile) args.push(`--log-file=${logFile}`);
  args.push(`http://127.0.0.1:${port}/`);
  const r = await procs.run('h2load', args, { timeoutMs: (seconds + 30) * 1000 });
  const parsed = parseH2load(r.stdout);
  if (r.code !== 0 || parsed.rps == null) throw new Error(`h2load failed (code ${r.code}): ${(r.stderr || r.stdout).trim().slice(-300)}`);
  return parsed;
}

/** One grpc-unary run (benches/lib/grpc-load.mjs as its own process) against `port`. */
export async function grpcLoad({ port, seconds, concurrency = GRPC_CONCURRENCY, payload = GRPC_PAYLOAD }) {
  const args = [path.join(here, 'grpc-load.mjs'), '--target', `127.0.0.1:${port}`, '--concurrency', String(concurrency), '--duration', String(seconds), '--payload', String(payload)];
  const r = await procs.run(process.execPath, args, { timeoutMs: (seconds + 30) * 1000 });
  let j = null;
  try {
    j = JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {}
  if (r.code !== 0 || !j) throw new Error(`grpc-load failed (code ${r.code}): ${(r.stderr || r.stdout).trim().slice(-300)}`);
  return j;
}

/** The gRPC echo backends (one process, one server per port of ctx.ports.grpc). */
export async function startGrpcBackends(ctx) {
  const dir = path.join(ctx.workDir, 'backend');
  fs.mkdirSync(dir, { recursive: true });
  const proc = procs.start('backend-grpc', process.execPath, [path.join(here, 'grpc-echo-server.mjs'), ...ctx.ports.grpc.map(String)], { logDir: dir, cwd: ctx.repoRoot });
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (proc.exitInfo) throw new Error(`gRPC backends exited (code ${proc.exitInfo.code}): ${procs.tail(proc.logErr, 3)}`);
    if (fs.readFileSync(proc.logOut, 'utf8').includes('ready')) return proc;
    await sleep(50);
  }
  await procs.stop(proc);
  throw new Error('gRPC backends not ready after 30s');
}

/** One GET / over h2c with prior knowledge: resolves with { status, body }. */
export function h2cGet(port, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error('no HTTP/2 response in time'));
    }, timeoutMs);
    const fail = (e) => {
      clearTimeout(timer);
      session.destroy();
      reject(e);
    };
    session.on('error', fail);
    const req = session.request({ ':path': '/' });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = h[':status']));
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('error', fail);
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status, body });
    });
    req.end();
  });
}

/**
 * Wait until the peer answers `GET /` over h2c on p.httpPort with 200 "ok" and, when the gRPC
 * backends run (`grpc`), an Echo call through p.grpcPort; throws with the last failure.
 */
export async function waitH2Ready(proc, p, { grpc }) {
  const deadline = Date.now() + 30000;
  let last = 'not tried';
  const exited = () => {
    if (proc.exitInfo) throw new Error(`exited with code ${proc.exitInfo.code}: ${[procs.tail(proc.logErr, 3), procs.tail(proc.logOut, 3)].filter(Boolean).join(' | ')}`);
  };
  let h2ok = false;
  while (Date.now() < deadline) {
    exited();
    try {
      if (!h2ok) {
        const r = await h2cGet(p.httpPort);
        if (r.status !== 200 || r.body !== 'ok') throw new Error(`h2c GET / answered ${r.status} ${JSON.stringify(r.body.slice(0, 80))}`);
        h2ok = true;
      }
      if (!grpc) return;
      // loaded here, not at the top: only the gRPC workload needs @grpc/grpc-js
      const { echoClient, echoOnce } = await import('./grpc-load.mjs');
      const client = echoClient(`127.0.0.1:${p.grpcPort}`);
      try {
        await echoOnce(client, Buffer.from('ready?'), 3000);
      } finally {
        client.close();
      }
      return;
    } catch (e) {
      last = `${h2ok ? 'gRPC Echo' : 'h2c GET'} through the proxy failed: ${e.message}`;
    }
    await sleep(100);
  }
  throw new Error(`not ready after 30s (${last})`);
}
