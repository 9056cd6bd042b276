#!/usr/bin/env node
// How long an established connection pauses while `switchyard upgrade` hands it to a new
// process (issue 19's target: < 50 ms at p99). N clients each ping-pong 64 bytes through a TCP
// listener to an echo backend without pause; the upgrade runs in the middle; for every
// connection the longest gap between two answers around the upgrade is its pause. The same
// gap before the upgrade (the box's own jitter) is reported beside it. No peer: HAProxy and
// nginx keep established connections in the old process instead of moving them.
//
//   node benches/upgrade-pause.mjs [--connections 200] [--rounds 3] [--out FILE]
//
// Needs the built addon and dist/ (npm run build). Stops the balancer's whole process group.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '200' }, rounds: { type: 'string', default: '3' }, out: { type: 'string' } } });
const N = Number(values.connections);
const ROUNDS = Number(values.rounds);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');
const MSG = Buffer.alloc(64, 0x61);

const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
const free = async () => { const s = net.createServer(); const p = await listen(s); await new Promise((r) => s.close(r)); return p; };

/** Poll `check` every 20 ms until it returns a value (or throw after `ms`). */
async function until(check, what, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One client: ping-pong until stopped; the times (ms) at which answers completed. */
function client(port) {
  return new Promise((resolve, reject) => {
    const times = [];
    let got = 0;
    let stop = false;
    const s = net.connect({ port, host: '127.0.0.1' }, () => {
      s.setNoDelay(true);
      s.write(MSG);
      resolve({ times, stop: () => { stop = true; }, socket: s });
    });
    s.on('data', (d) => {
      got += d.length;
      while (got >= MSG.length) {
        got -= MSG.length;
        times.push(performance.now());
        if (!stop) s.write(MSG);
      }
    });
    s.once('error', reject);
    s.on('error', () => {}); // after the round: reset by the kill
  });
}

const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
/** The longest gap between consecutive answers in [from, to]. */
function maxGap(times, from, to) {
  let worst = 0;
  for (let i = 1; i < times.length; i++) if (times[i] >= from && times[i - 1] <= to) worst = Math.max(worst, times[i] - times[i - 1]);
  return worst;
}

async function round() {
  const echo = net.createServer((s) => {
    s.on('error', () => {}); // reset when the round's processes are killed
    s.pipe(s);
  });
  const backend = await listen(echo);
  const [front, admin] = [await free(), await free()];
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-pause-'));
  const file = join(dir, 'lb.json');
  writeFileSync(file, JSON.stringify({ workers: 1, listeners: { tcp: { address: `127.0.0.1:${front}`, pool: 'echo' } }, pools: { echo: { backends: [{ address: `127.0.0.1:${backend}` }] } }, admin: { address: `127.0.0.1:${admin}` } }));
  const lb = spawn(process.execPath, [CLI, 'start', '-c', file, '--log-level', 'warn'], { stdio: 'ignore', detached: true });
  try {
    await until(() => fetch(`http://127.0.0.1:${admin}/readyz`).then((r) => r.ok, () => false), 'the balancer');
    const clients = [];
    for (let i = 0; i < N; i++) clients.push(await client(front));
    await until(() => clients.every((c) => c.times.length > 50), 'traffic on every connection');
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${admin}/api/upgrade`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const report = await res.json();
    if (!res.ok) throw new Error(`upgrade failed: ${JSON.stringify(report)}`);
    const t1 = performance.now();
    // Every connection answers again after the upgrade.
    await until(() => clients.every((c) => c.times.at(-1) > t1 + 100), 'answers after the upgrade');
    clients.forEach((c) => c.stop());
    const pauses = clients.map((c) => maxGap(c.times, t0, t1 + 100));
    const before = clients.map((c) => maxGap(c.times.filter((t) => t < t0), 0, t0));
    clients.forEach((c) => c.socket.destroy());
    return { report, upgradeMs: t1 - t0, p50: q(pauses, 0.5), p99: q(pauses, 0.99), max: Math.max(...pauses), baseP99: q(before, 0.99) };
  } finally {
    try { process.kill(-lb.pid, 'SIGKILL'); } catch {}
    echo.close();
  }
}

const results = [];
for (let r = 0; r < ROUNDS; r++) results.push(await round());
const f = (x) => x.toFixed(1);
const lines = [
  `# Upgrade pause (${new Date().toISOString().slice(0, 10)}, ${N} connections, ${ROUNDS} rounds, 1 worker)`,
  '',
  `Each of ${N} clients ping-pongs 64 bytes through a TCP listener to an echo backend; \`POST /api/upgrade\` runs meanwhile. A connection's pause is the longest gap between two answers from the request to 100 ms after the answer. "Before" is the same gap measured before the upgrade (the box's own jitter). Target: p99 pause < 50 ms.`,
  '',
  '| round | handed over | upgrade request (ms) | pause p50 (ms) | pause p99 (ms) | pause max (ms) | gap before, p99 (ms) |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...results.map((r, i) => `| ${i + 1} | ${r.report.connections} | ${f(r.upgradeMs)} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.baseP99)} |`),
  '',
];
const text = lines.join('\n');
process.stdout.write(`${text}\n`);
if (values.out) writeFileSync(values.out, text);
