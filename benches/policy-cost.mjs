#!/usr/bin/env node
// What policy rules cost (issue 18): a listener with 100 rules, none of which matches the
// traffic (so every request or connection is tested against all 100, the worst case), against
// the same listener with none; HAProxy with the same 100 rules (ACLs) in the same run. Measured:
// requests/s (http, keep-alive) or connections/s (tcp, wrk with Connection: close) and the
// proxy's CPU µs per request/connection, with wrk against one nginx backend, 1 worker each.
//
//   node benches/policy-cost.mjs [--seconds 5] [--rounds 2] [--rules 100] [--out FILE]
//
// Needs dist/ and the addon (npm run build), wrk, nginx, haproxy. Stops every process it started.
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as procs from './lib/procs.mjs';
import { wrk } from './lib/workloads.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '2' }, rules: { type: 'string', default: '100' }, out: { type: 'string' } } });
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const RULES = Number(values.rules);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-policy-bench-'));

const free = () => new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
async function untilListening(port, what, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((r) => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); }); s.on('error', () => r(false)); });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${what} did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `n` http rules that never match a request for `/` from 127.0.0.1: a mix of every condition kind. */
function httpRules(n) {
  return Array.from({ length: n }, (_, i) => {
    const kinds = [
      { match: { path_prefix: `/r${i}/` } },
      { match: { host: `h${i}.example.com` } },
      { match: { header: { 'x-tenant': `t${i}` } } },
      { match: { source: `10.${i % 256}.0.0/16` } },
      { match: { path_regex: `/re${i}/[0-9]+` } },
    ];
    return { name: `r${i}`, ...kinds[i % kinds.length], pool: 'app', tag: `t${i % 10}` };
  });
}

/** `n` tcp rules that never match a connection from 127.0.0.1 to the listener's port. */
function tcpRules(n) {
  return Array.from({ length: n }, (_, i) => (i % 2 === 0 ? { name: `r${i}`, match: { source: `10.${i % 256}.0.0/16` }, pool: 'app' } : { name: `r${i}`, match: { port: 20000 + i }, pool: 'app' }));
}

function switchyardConfig(kind, port, backend, rules) {
  const listener = kind === 'http' ? { address: `127.0.0.1:${port}`, protocol: 'http', pool: 'app' } : { address: `127.0.0.1:${port}`, pool: 'app' };
  const config = { workers: 1, listeners: { front: listener }, pools: { app: { backends: [{ address: `127.0.0.1:${backend}` }] } } };
  if (rules > 0) config.policy = { rules: { front: kind === 'http' ? httpRules(rules) : tcpRules(rules) } };
  return config;
}

function haproxyConfig(kind, port, backend, rules) {
  const acl = [];
  for (let i = 0; i < rules; i++) {
    if (kind === 'tcp') acl.push(i % 2 === 0 ? `  use_backend app if { src 10.${i % 256}.0.0/16 }` : `  use_backend app if { dst_port ${20000 + i} }`);
    else {
      const conds = [`path_beg /r${i}/`, `hdr(host) -i h${i}.example.com`, `req.hdr(x-tenant) -m str t${i}`, `src 10.${i % 256}.0.0/16`, `path_reg ^/re${i}/[0-9]+$`];
      acl.push(`  use_backend app if { ${conds[i % conds.length]} }`);
    }
  }
  return `global
  nbthread 1
  maxconn 4000
defaults
  mode ${kind}
  timeout connect 5s
  timeout client 30s
  timeout server 30s
${kind === 'http' ? '  option http-keep-alive\n' : ''}frontend front
  bind 127.0.0.1:${port}
${acl.join('\n')}
  default_backend app
backend app
${kind === 'http' ? '  http-reuse always\n' : ''}  server s1 127.0.0.1:${backend}
`;
}

async function measure(name, start, port, kind) {
  const proc = start();
  try {
    await untilListening(port, name);
    await wrk({ port, seconds: 1, close: kind === 'tcp', connections: 32, threads: 1 }); // warm-up
    const before = procs.treeUsage(proc.pid);
    const r = await wrk({ port, seconds: SECONDS, close: kind === 'tcp', connections: 32, threads: 1 });
    const after = procs.treeUsage(proc.pid);
    const count = r.rps * SECONDS;
    return { rps: r.rps, p99: r.p99_ms, cpu_us: ((after.cpu_s - before.cpu_s) * 1e6) / count };
  } finally {
    await procs.stop(proc);
  }
}

async function main() {
  procs.initPidFile(join(dir, 'pids.json'));
  const backendPort = await free();
  writeFileSync(join(dir, 'nginx.conf'), `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  keepalive_requests 1000000; server { listen 127.0.0.1:${backendPort} reuseport backlog=4096; location / { return 200 "ok\\n"; } } }
`);
  const nginx = procs.start('nginx', '/usr/sbin/nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { logDir: dir });
  const rows = [];
  try {
    await untilListening(backendPort, 'nginx');
    // Rounds outermost, so drift of the shared box spreads over every configuration alike.
    const samples = new Map();
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of ['http', 'tcp']) {
        for (const rules of [0, RULES]) {
          for (const peer of ['switchyard', 'haproxy']) {
            const port = await free();
            const file = join(dir, `${peer}-${kind}-${rules}.${peer === 'switchyard' ? 'json' : 'cfg'}`);
            writeFileSync(file, peer === 'switchyard' ? JSON.stringify(switchyardConfig(kind, port, backendPort, rules)) : haproxyConfig(kind, port, backendPort, rules));
            const start = peer === 'switchyard'
              ? () => procs.start(`switchyard-${kind}-${rules}`, process.execPath, [CLI, 'start', '-c', file, '--log-level', 'warn'], { logDir: dir })
              : () => procs.start(`haproxy-${kind}-${rules}`, '/usr/sbin/haproxy', ['-db', '-f', file], { logDir: dir });
            const m = await measure(`${peer} ${kind} ${rules}`, start, port, kind);
            process.stderr.write(`round ${round + 1}: ${peer} ${kind} ${rules} rules: ${Math.round(m.rps)}/s p99 ${m.p99?.toFixed(2)} ms, ${m.cpu_us.toFixed(1)} µs CPU each\n`);
            const key = `${kind}/${rules}/${peer}`;
            samples.set(key, [...(samples.get(key) ?? []), m]);
          }
        }
      }
    }
    for (const [key, list] of samples) {
      const [kind, rules, peer] = key.split('/');
      const best = list.reduce((a, b) => (b.rps > a.rps ? b : a));
      rows.push({ kind, rules: Number(rules), peer, ...best, cpu_us: Math.min(...list.map((x) => x.cpu_us)) });
    }
  } finally {
    await procs.stop(nginx);
  }
  const get = (kind, rules, peer) => rows.find((r) => r.kind === kind && r.rules === rules && r.peer === peer);
  const lines = [
    `# Policy rules: cost of ${RULES} rules (none matching: every request tests all of them)`,
    '',
    `\`node benches/policy-cost.mjs --seconds ${SECONDS} --rounds ${ROUNDS} --rules ${RULES}\`, ${new Date().toISOString().slice(0, 10)}: wrk -t1 -c32 against one nginx backend (\`return 200\`), 1 worker / nbthread 1 per proxy, best of ${ROUNDS} rounds; CPU = the proxy's user+system time per request (http, keep-alive) or per connection (tcp, \`Connection: close\`). HAProxy runs the same ${RULES} conditions as ACLs (\`use_backend ... if { ... }\`).`,
    '',
    '| listener | proxy | 0 rules | 100 rules | throughput | CPU µs, 0 → 100 rules | cost per rule |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const kind of ['http', 'tcp']) {
    for (const peer of ['switchyard', 'haproxy']) {
      const a = get(kind, 0, peer);
      const b = get(kind, RULES, peer);
      const unit = kind === 'http' ? 'req/s' : 'conn/s';
      lines.push(`| ${kind} | ${peer} | ${Math.round(a.rps)} ${unit} | ${Math.round(b.rps)} ${unit} | ${(b.rps / a.rps).toFixed(2)}× | ${a.cpu_us.toFixed(1)} → ${b.cpu_us.toFixed(1)} | ${(((b.cpu_us - a.cpu_us) * 1000) / RULES).toFixed(0)} ns |`);
    }
  }
  lines.push(
    '',
    'Reading: "cost per rule" is the CPU difference divided by the rule count; on this shared 2-core box a proxy\'s CPU per request varies by a few µs between rounds (per connection: ±10 µs), so a difference below that (or negative) says the rules cost less than the noise. The hook\'s cost per request is in hook-latest.md (`npm run bench:hooks`).',
  );
  const md = `${lines.join('\n')}\n`;
  process.stdout.write(md);
  if (values.out) writeFileSync(values.out, md);
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exitCode = 1;
});
