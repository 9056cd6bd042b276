#!/usr/bin/env node
// What an opt-in hook costs per request (issue 18): one Switchyard process (1 worker) with
// three HTTP listeners in front of the same nginx backend — the same route (a) without a hook,
// (b) with a synchronous hook, (c) with an async hook (both answer {}: keep the route's pool) —
// each driven by wrk (keep-alive, -t1 -c64) in turn, rounds interleaved. Reports requests/s,
// p50/p99 and the balancer's CPU per request (user+sys of its process, the steadier figure on
// a shared box), and how the hook calls ended (answered, or fallback by timeout/full).
//
//   node benches/hook-cost.mjs [--rounds 3] [--duration 5] [--connections 64] [--budget 2ms]
//                              [--base-port 27400] [--out benches/results/hook-latest.md]
//
// Needs nginx, wrk, the built addon and dist/ (npm run build). Stops every process it started
// (by process group), also on failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as procs from './lib/procs.mjs';
import { NGINX, nginxMain, nginxTempPaths } from './lib/peers.mjs';
import { wrk } from './lib/workloads.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
    budget: { type: 'string', default: '2ms' },
    'base-port': { type: 'string', default: '27400' },
    out: { type: 'string', default: path.join(here, 'results', 'hook-latest.md') },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.duration);
const CONNS = Number(values.connections);
const BASE = Number(values['base-port']);
const VARIANTS = [
  { name: 'no hook', port: BASE + 10 },
  { name: 'sync hook', port: BASE + 11, hook: 'sync' },
  { name: 'async hook', port: BASE + 12, hook: 'async' },
  // tcp: a connection per request (Connection: close), the hook asked once per connection.
  { name: 'tcp, no hook', port: BASE + 13, close: true },
  { name: 'tcp, sync hook', port: BASE + 14, hook: 'sync', close: true },
];

/** Poll `check` every 50 ms until it is true (or throw after `ms`). */
async function until(check, what, ms = 30_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const answers = async (port) => fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-hook-bench-'));
fs.mkdirSync(path.join(dir, 'logs'));
procs.initPidFile(path.join(dir, 'pids.json'));
const backendPort = BASE + 1;
fs.writeFileSync(
  path.join(dir, 'nginx.conf'),
  `${nginxMain({ workers: 1, dir, nofile: 4096 })}
http {
  access_log off;
  keepalive_timeout 600s;
  keepalive_requests 1000000000;
${nginxTempPaths(dir)}
  server { listen 127.0.0.1:${backendPort} backlog=4096; location / { return 200 "ok"; } }
}
`,
);

let nginx;
let lb;
const rows = [];
let counters = [];
try {
  nginx = procs.start('backend-nginx', NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'logs/error.log')], { logDir: dir });
  await until(() => answers(backendPort), 'nginx');
  lb = procs.start('switchyard', process.execPath, [path.join(here, 'lib', 'hook-balancer.mjs'), String(BASE + 10), `127.0.0.1:${backendPort}`, values.budget], { logDir: dir });
  for (const v of VARIANTS) await until(() => answers(v.port), `the ${v.name} listener`);
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of VARIANTS) {
      const before = procs.treeUsage(lb.pid).cpu_s;
      const w = await wrk({ port: v.port, seconds: SECONDS, connections: CONNS, threads: 1, close: v.close ?? false });
      const cpu = procs.treeUsage(lb.pid).cpu_s - before;
      rows.push({ round: r + 1, variant: v.name, rps: w.rps, p50: w.p50_ms, p99: w.p99_ms, us_per_req: (cpu / w.requests) * 1e6, non2xx: w.non2xx });
      process.stderr.write(`round ${r + 1} ${v.name}: ${Math.round(w.rps)} req/s, p99 ${w.p99_ms} ms\n`);
    }
  }
} finally {
  await procs.stop(lb);
  await procs.stop(nginx);
}
try {
  counters = JSON.parse(fs.readFileSync(path.join(dir, 'switchyard.out'), 'utf8').trim().split('\n').at(-1));
} catch {
  counters = [];
}
fs.rmSync(dir, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f1 = (x) => (x == null ? '—' : x.toFixed(1));
const f2 = (x) => (x == null ? '—' : x.toFixed(2));
const summary = VARIANTS.map((v) => {
  const rs = rows.filter((r) => r.variant === v.name);
  return { name: v.name, rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), us: median(rs.map((r) => r.us_per_req)) };
});
const baseOf = (name) => (name.startsWith('tcp') ? summary[3] : summary[0]);
const lines = [
  `# Hook cost (${new Date().toISOString().slice(0, 10)}, ${ROUNDS} rounds × ${SECONDS} s, wrk -t1 -c${CONNS}, 1 worker, budget ${values.budget})`,
  '',
  `One Switchyard process, three HTTP listeners in front of the same nginx backend (keep-alive both sides): the same route without a hook, with a synchronous hook, with an async hook (both answer \`{}\`: the route's own pool); and two tcp listeners driven with \`Connection: close\` (a connection per request): without rules, and with a catch-all policy rule asking the synchronous hook for each connection. Medians over the rounds; CPU is the balancer process's user+sys per request or connection (data-plane worker and the Node.js thread running the hooks).`,
  '',
  '| listener | requests (tcp: connections)/s | vs no hook | p50 (ms) | p99 (ms) | balancer CPU (µs per request or connection) |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...summary.map((s) => `| ${s.name} | ${Math.round(s.rps)} | ${((s.rps / baseOf(s.name).rps) * 100).toFixed(0)} % | ${f2(s.p50)} | ${f2(s.p99)} | ${f1(s.us)} |`),
  '',
  'How the hook calls ended (whole run; a fallback is counted by reason):',
  '',
  '| hook | calls | answered | timeout | full | error | late answers |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...counters.map((h) => `| ${h.name} | ${h.calls} | ${h.answered} | ${h.timeout} | ${h.full} | ${h.error} | ${h.late} |`),
  '',
  'Every round:',
  '',
  '| round | route | requests/s | p50 (ms) | p99 (ms) | µs/req | non-2xx |',
  '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.round} | ${r.variant} | ${Math.round(r.rps)} | ${f2(r.p50)} | ${f2(r.p99)} | ${f1(r.us_per_req)} | ${r.non2xx} |`),
  '',
];
const text = lines.join('\n');
process.stdout.write(`${text}\n`);
fs.mkdirSync(path.dirname(values.out), { recursive: true });
fs.writeFileSync(values.out, text);
