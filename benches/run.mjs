#!/usr/bin/env node
// Switchyard's side-by-side benchmark (issue 3). Run through `npm run bench` (benches/run.sh),
// which installs missing peers and raises the fd limit first. See benches/README.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as procs from './lib/procs.mjs';
import { definePeers, startBackends, ensureIperf, switchyardBuildKind, switchyardAddon, takesPart, isHttpWorkload, isH2Workload } from './lib/peers.mjs';
import * as load from './lib/workloads.mjs';
import { defineH2Peers } from './lib/h2-peers.mjs';
import * as h2 from './lib/h2.mjs';
import { defineUdpPeers } from './lib/udp-peers.mjs';
import * as udp from './lib/udp.mjs';
import { summarize, markdown, chart, writeChart } from './lib/report.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
// TLS (issue 7): keep-alive (ka) and full handshakes (hs), with an ECDSA P-256 or (-rsa) an RSA 2048 certificate
const TLS_WORKLOADS = ['tls-ka', 'tls-hs', 'tls-ka-rsa', 'tls-hs-rsa'];
// HTTP (L7, issue 14): keep-alive, connection per request, 10 routes, idle keep-alive memory
const HTTP_WORKLOADS = ['http-ka', 'http-close', 'http-routed', 'http-mem'];
// HTTP/2 (issue 15): h2load with 1 and 64 streams per connection, gRPC unary calls over one channel
const H2_WORKLOADS = h2.H2_WORKLOADS;
// UDP (issue 17): 64 flows of 64-byte request/reply, a session per flow and per datagram
const UDP_WORKLOADS = udp.UDP_WORKLOADS;
const ALL_WORKLOADS = ['ka', 'close', 'bulk', 'mem', 'cpu', ...TLS_WORKLOADS, ...HTTP_WORKLOADS, ...H2_WORKLOADS, ...UDP_WORKLOADS];
/** h2load's options of an h2load workload, for the report. */
const h2load = (w) => {
  const { clients, streams, threads } = h2.H2LOAD_WORKLOADS[w];
  return `-c${clients} -m${streams} -t${threads}`;
};
/** What a TLS workload measures: { kind: a key of load.CERT_KINDS, hs: full handshakes (else keep-alive) }. */
const tlsOf = (w) => ({ kind: w.endsWith('-rsa') ? 'rsa' : 'ecdsa', hs: w.startsWith('tls-hs') });

const USAGE = `usage: npm run bench -- [options]
  --rounds N           rounds, interleaved (default 3)
  --duration S         seconds per wrk / iperf3 run (default 10)
  --threads 1,2        worker threads per proxy, each value run separately (default 1,2)
  --only a,b           peers: direct,floor,haproxy,haproxy-splice,haproxy-defer,nginx,node,switchyard,
                       switchyard-defer,haproxy-pp2,switchyard-pp2 (default all; the -defer ones run
                       the close workload only, the -pp2 ones (PROXY v2 to the backends) ka and
                       close, floor only ka and close at 1 thread); HTTP (L7, the http-* workloads only):
                       haproxy-http,nginx-http,caddy,node-http-proxy,switchyard-http; HTTP/2
                       (the h2-* and grpc-* workloads only): haproxy-h2,nginx-h2,switchyard-h2; UDP
                       (the udp-* workloads only, with direct): floor-udp,nginx-udp,switchyard-udp
  --workloads list     ka,close,bulk,mem,cpu,tls-ka,tls-hs,tls-ka-rsa,tls-hs-rsa,
                       http-ka,http-close,http-routed,http-mem,h2-1,h2-many,grpc-unary,
                       udp-flow,udp-dgram (default all)
  --idle-conns N       connections held for the memory workloads (default 10000)
  --switchyard-splice  auto|always|never for Switchyard's listeners (default auto)
  --switchyard-addon F load this addon instead of native/*.node (NAPI_RS_NATIVE_LIBRARY_PATH)
  --base-port P        first port used (default 27100; backends P+1..P+9 and P+11, proxies P+100..)
  --out DIR            where latest.{md,json,svg,png} go (default benches/results)
  --quick              1 round of 3 s: a smoke test
`;

function parseArgs(argv) {
  const o = {
    rounds: 3,
    duration: 10,
    threads: [1, 2],
    only: null,
    workloads: ALL_WORKLOADS,
    idleConns: 10000,
    switchyardSplice: 'auto',
    switchyardAddon: null,
    basePort: 27100,
    out: path.join(here, 'results'),
  };
  const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--rounds': o.rounds = Number(next()); break;
      case '--duration': o.duration = Number(String(next()).replace(/s$/, '')); break;
      case '--threads': o.threads = list(next()).map(Number); break;
      case '--only': o.only = list(next()); break;
      case '--workloads': o.workloads = list(next()); break;
      case '--idle-conns': o.idleConns = Number(next()); break;
      case '--switchyard-splice': o.switchyardSplice = next(); break;
      case '--switchyard-addon': o.switchyardAddon = path.resolve(next()); break;
      case '--base-port': o.basePort = Number(next()); break;
      case '--out': o.out = path.resolve(next()); break;
      case '--quick': o.rounds = 1; o.duration = 3; break;
      case '-h': case '--help': process.stdout.write(USAGE); process.exit(0);
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (!(o.rounds >= 1) || !(o.duration >= 1)) throw new Error('--rounds and --duration must be ≥ 1');
  if (!o.threads.length || o.threads.some((t) => !(t >= 1))) throw new Error('--threads must list counts ≥ 1');
  const bad = o.workloads.filter((w) => !ALL_WORKLOADS.includes(w));
  if (bad.length) throw new Error(`unknown workload(s) ${bad.join(', ')}; known: ${ALL_WORKLOADS.join(', ')}`);
  if (!['auto', 'always', 'never'].includes(o.switchyardSplice)) throw new Error('--switchyard-splice must be auto, always or never');
  return o;
}

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
}

function firstLine(s) {
  return String(s).split('\n')[0].trim();
}

/** First line a tool prints about its version (stdout or stderr: nginx -v uses stderr). */
function versionOf(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.error) return 'not found';
  return firstLine(`${r.stdout ?? ''}${r.stderr ?? ''}`.trim()) || 'unknown';
}

function machineInfo() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const nginxV = versionOf('/usr/sbin/nginx', ['-v']);
  let pkg = {};
  try {
    pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  } catch {}
  const gitRev = sh('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  return {
    date: new Date().toISOString(),
    nproc: sh('nproc', []),
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    versions: {
      switchyard: `${pkg.version ?? '?'}${/^[0-9a-f]{4,}$/.test(gitRev) ? ` (${gitRev})` : ''}`,
      haproxy: versionOf('/usr/sbin/haproxy', ['-v']).replace(/ - https?:.*$/, ''),
      nginx: nginxV.replace(/^nginx version:\s*/, ''),
      node: process.version,
      wrk: versionOf('wrk', ['-v']).replace(/ Copyright.*$/, ''),
      iperf3: versionOf('iperf3', ['--version']),
      caddy: versionOf('/usr/bin/caddy', ['version']),
      gcc: versionOf('gcc', ['--version']), // builds the floor proxy
      h2load: versionOf('h2load', ['--version']), // the HTTP/2 workloads
    },
    loadStart: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    busy: [],
  };
}

/** Names of known heavy processes (compilers, test runners) running now: recorded as noise. */
const NOISY = new Set(['rustc', 'cargo', 'cc1', 'cc1plus', 'ld', 'collect2', 'rust-lld', 'lld', 'tsc', 'esbuild']);
function noisyNow() {
  const seen = new Set();
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const comm = fs.readFileSync(`/proc/${ent}/comm`, 'utf8').trim();
      if (NOISY.has(comm)) seen.add(comm);
    } catch {}
  }
  return [...seen];
}

const log = (s) => process.stderr.write(`${s}\n`);

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const workDir = path.join(here, 'work');
  fs.mkdirSync(workDir, { recursive: true });
  fs.mkdirSync(opts.out, { recursive: true });
  procs.initPidFile(path.join(workDir, 'pids.json'));

  // Each idle connection costs the proxy two fds (client and backend leg). Where the hard fd
  // limit cannot be raised (no CAP_SYS_RESOURCE, e.g. in a container) hold fewer: the result is
  // per connection anyway.
  const nofile = Number(sh('sh', ['-c', 'ulimit -n'])) || 1024;
  const fit = Math.max(100, Math.floor((nofile - 2000) / 2 / 1000) * 1000);
  const startNotes = [];
  if ((opts.workloads.includes('mem') || opts.workloads.includes('http-mem')) && opts.idleConns > fit) {
    startNotes.push(`the fd limit is ${nofile} and cannot be raised here, so the memory workloads hold ${fit} idle connections instead of ${opts.idleConns} (two fds each in an L4 proxy)`);
    log(`bench: ${startNotes[0]}`);
    opts.idleConns = fit;
  }

  const ports = {
    http: [opts.basePort + 1, opts.basePort + 2],
    // the same backend behind `listen … proxy_protocol`: for the peers that send a PROXY header
    ppHttp: [opts.basePort + 3, opts.basePort + 4],
    iperf: opts.basePort + 11,
    // the gRPC echo backends of the grpc-unary workload (HTTP/2)
    grpc: [opts.basePort + 5, opts.basePort + 6, opts.basePort + 7],
    // the UDP echo backends of the udp-* workloads (UDP ports)
    udpEcho: [opts.basePort + 8, opts.basePort + 9],
  };
  if (opts.switchyardAddon) {
    // run from a copy, so a rebuild of the original during the run does not change what is measured
    const copy = path.join(workDir, 'switchyard-addon.node');
    fs.copyFileSync(opts.switchyardAddon, copy);
    startNotes.push(`Switchyard loaded the addon ${path.relative(repoRoot, opts.switchyardAddon)} (modified ${fs.statSync(opts.switchyardAddon).mtime.toISOString()}, copied at the start) through NAPI_RS_NATIVE_LIBRARY_PATH instead of native/`);
    opts.switchyardAddonOriginal = opts.switchyardAddon;
    opts.switchyardAddon = copy;
  }
  const ctx = { workDir, repoRoot, ports, nofile, idleConns: opts.idleConns, switchyardAddon: opts.switchyardAddon };
  let peers = [...definePeers({ switchyardSplice: opts.switchyardSplice }), ...defineH2Peers(), ...defineUdpPeers()];
  if (opts.only) {
    const unknown = opts.only.filter((n) => !peers.some((p) => p.name === n));
    if (unknown.length) throw new Error(`unknown peer(s) ${unknown.join(', ')}`);
    peers = peers.filter((p) => opts.only.includes(p.name));
  }
  peers.forEach((p, i) => {
    const at = opts.basePort + 100 + 10 * i;
    // HTTP (L7) peers: no bulk listener; the routed listener on +3
    // HTTP/2 peers: the h2c listener (h2load) on +0, the gRPC one on +4
    // UDP peers: the per-flow listener on +0, the per-datagram one on +1 (UDP ports)
    if (p.udp) p.ports = { httpPort: at, bulkPort: null, dgramPort: at + 1 };
    else if (p.h2) p.ports = { httpPort: at, bulkPort: null, grpcPort: at + 4 };
    else p.ports = p.http ? { httpPort: at, bulkPort: null, routedPort: at + 3 } : { httpPort: at, bulkPort: at + 1, tlsPort: at + 2 };
    p.unavailableReason = p.unavailable(ctx);
    if (p.unavailableReason) log(`bench: ${p.name}: ${p.unavailableReason}`);
  });

  // what actually runs: cpu is measured during the close and bulk runs
  const wl = opts.workloads;
  const runWorkloads = ['ka', 'close', 'bulk', 'mem', ...TLS_WORKLOADS, ...HTTP_WORKLOADS, ...H2_WORKLOADS, ...UDP_WORKLOADS].filter((w) => wl.includes(w) || (wl.includes('cpu') && (w === 'close' || w === 'bulk')));
  const reportWorkloads = [...new Set([...wl, ...runWorkloads])];

  const machine = machineInfo();
  // Switchyard's peers (L4 and HTTP): the same build
  const syPeers = peers.filter((p) => ['switchyard', 'switchyard-http', 'switchyard-pp2', 'switchyard-h2', 'switchyard-udp'].includes(p.name));
  const sy = syPeers[0];
  if (sy && !sy.unavailableReason) {
    const kind = switchyardBuildKind(switchyardAddon(ctx));
    if (opts.switchyardAddonOriginal) machine.versions.switchyard += `, addon ${path.relative(repoRoot, opts.switchyardAddonOriginal)}`;
    if (kind !== 'release') log(`bench: warning: the Switchyard addon looks like a debug build: its numbers will not be representative`);
  }
  const certKinds = [...new Set(runWorkloads.filter((w) => TLS_WORKLOADS.includes(w)).map((w) => tlsOf(w).kind))];
  const config = {
    rounds: opts.rounds,
    duration: opts.duration,
    threads: opts.threads,
    workloads: reportWorkloads,
    idleConns: opts.idleConns,
    switchyardSplice: opts.switchyardSplice,
    wrk: '-c64 -t2 --latency (1 s warm-up run first)',
    tls: certKinds.length
      ? 'self-signed certificates made with openssl at the start (ECDSA P-256 for tls-ka/tls-hs, RSA 2048 for tls-ka-rsa/tls-hs-rsa), the same files for every peer; each peer terminates TLS itself in front of the same HTTP backends; tls-hs, tls-hs-rsa: session resumption off on every peer (wrk resumes sessions when the server allows it)'
      : undefined,
    iperf3: 'one stream, -t duration, then again with -R',
    http: runWorkloads.some(isHttpWorkload)
      ? 'HTTP (L7) peers in front of the same two backends: keep-alive to the backends (up to 64 idle connections per backend), X-Forwarded-For added; http-close: Connection: close from wrk (a connection per request on the client side, backend connections reused); http-routed: 10 path-prefix routes /r0/../r9/ to the same backends, wrk cycling over them (Lua script); http-mem: idle keep-alive client connections that have each done one request'
      : undefined,
    h2: runWorkloads.some(isH2Workload)
      ? `HTTP/2 peers with h2c (prior knowledge) listeners, at most 128 concurrent streams per client connection: h2-1 (h2load ${h2load('h2-1')}) and h2-many (h2load ${h2load('h2-many')}) in front of the same two HTTP/1.1 backends as the HTTP workloads (kept-alive backend connections); req/s and CPU per request from one run, p50/p99 from a separate run of up to 5 s with --log-file (which slows h2load down); grpc-unary: ${h2.GRPC_CONCURRENCY} concurrent unary calls of ${h2.GRPC_PAYLOAD} B over one @grpc/grpc-js channel (benches/lib/grpc-load.mjs) through HTTP/2 to three grpc-js echo backends (round robin)`
      : undefined,
    udp: runWorkloads.some(udp.isUdpWorkload)
      ? `UDP peers in front of two echo backends (benches/udp-load, recvmmsg/sendmmsg), round robin; load: benches/udp-load (Rust, built into benches/work/udp-load), ${udp.UDP_LOAD.flows} flows (connected sockets, distinct source ports) × ${udp.UDP_LOAD.size}-byte request/reply, ${udp.UDP_LOAD.window} request in flight per flow (closed loop), 1 s warm-up run first; a request unanswered after 1 s (or 1 s after the run) is lost; udp-flow: a session per client address (Switchyard udp.responses 0, nginx proxy_responses unset), udp-dgram: a session per datagram (Switchyard udp.responses 1, nginx proxy_responses 1 + proxy_requests 1); nginx listens with rcvbuf=4m, both peers flow_idle_timeout / proxy_timeout 60s`
      : undefined,
    notes: [...startNotes],
  };

  // rough time estimate
  const runnable = peers.filter((p) => !p.unavailableReason);
  const perPeer = {
    ka: opts.duration + 1.7,
    close: opts.duration + 1.7,
    bulk: 2 * opts.duration + 1,
    mem: 5,
    ...Object.fromEntries(TLS_WORKLOADS.map((w) => [w, opts.duration + 2.5])),
    'http-ka': opts.duration + 1.7,
    'http-close': opts.duration + 1.7,
    'http-routed': opts.duration + 1.7,
    'http-mem': 5,
    // warm-up, the run, and (h2load) the latency run with --log-file
    'h2-1': opts.duration + Math.min(opts.duration, 5) + 2,
    'h2-many': opts.duration + Math.min(opts.duration, 5) + 2,
    'grpc-unary': opts.duration + 2,
    // warm-up, the run and the drain
    'udp-flow': opts.duration + 3,
    'udp-dgram': opts.duration + 3,
  };
  let est = 0;
  for (const threads of opts.threads) for (const w of runWorkloads) for (const p of runnable) if (takesPart(p, w, threads)) est += perPeer[w];
  est *= opts.rounds;
  log(`bench: ${runnable.length} peer(s), workloads ${runWorkloads.join(',')}, threads ${opts.threads.join(',')}, ${opts.rounds} round(s) × ${opts.duration}s: about ${Math.ceil(est / 60)} min`);

  const measurements = [];
  let interrupted = false;
  const writeOutputs = (dir, tag) => {
    machine.loadEnd = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const summary = summarize({ measurements, peers, threadsList: opts.threads, workloads: reportWorkloads });
    const md = markdown({ machine, config, summary, peers, threadsList: opts.threads, workloads: reportWorkloads });
    fs.writeFileSync(path.join(dir, `${tag}.md`), md);
    const c = chart({ summary, peers, threadsList: opts.threads, workloads: reportWorkloads });
    const how = writeChart(c, path.join(dir, `${tag}.svg`), path.join(dir, `${tag}.png`));
    fs.writeFileSync(
      path.join(dir, `${tag}.json`),
      JSON.stringify({ machine, config, peers: peers.map((p) => ({ name: p.name, label: p.label, status: p.unavailableReason ?? 'ok' })), summary, measurements }, null, 1),
    );
    return { md, how };
  };

  const onSignal = async (sig) => {
    if (interrupted) return;
    interrupted = true;
    log(`\nbench: ${sig}: stopping every process it started`);
    await procs.killAll();
    try {
      config.notes.push(`interrupted by ${sig}: partial results`);
      writeOutputs(workDir, 'interrupted');
      log(`bench: partial results in ${path.relative(process.cwd(), workDir)}/interrupted.md`);
    } catch {}
    process.exit(130);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGHUP', () => onSignal('SIGHUP'));
  process.on('exit', () => procs.killAllSync('SIGKILL'));

  ctx.tls = {}; // key type → { cert, key, combined }
  for (const kind of certKinds) {
    ctx.tls[kind] = await load.makeCert(path.join(workDir, 'tls'), kind);
    log(`bench: made an ${load.CERT_KINDS[kind].label} certificate in ${path.relative(process.cwd(), path.dirname(ctx.tls[kind].cert))}/ for the TLS workloads`);
  }

  if (runWorkloads.includes('http-routed')) ctx.routesScript = load.writeRoutesScript(workDir);

  log('bench: starting backends (nginx return 200 on two ports and two proxy_protocol ones, iperf3 -s)');
  const backends = await startBackends(ctx);
  if (runWorkloads.includes('grpc-unary') && peers.some((p) => p.h2 && !p.unavailableReason)) {
    log(`bench: starting the gRPC echo backends on ${ctx.ports.grpc.join(', ')}`);
    try {
      ctx.grpcBackends = await h2.startGrpcBackends(ctx);
    } catch (e) {
      // the other workloads still run; every grpc-unary measurement says why it failed
      ctx.grpcBackendsError = e.message;
      config.notes.push(`the gRPC echo backends did not start (${e.message}): no grpc-unary results`);
      log(`bench: ${config.notes.at(-1)}`);
    }
  }

  if (runWorkloads.some(udp.isUdpWorkload)) {
    // the load generator and echo backends: a small Rust crate of its own, built only now
    try {
      log('bench: building benches/udp-load (cargo build --release, target benches/work/udp-load)');
      ctx.udpLoad = udp.buildUdpLoad(ctx);
      log(`bench: starting the UDP echo backends on ${ctx.ports.udpEcho.join(', ')}`);
      ctx.udpEcho = await udp.startUdpEcho(ctx);
    } catch (e) {
      // the other workloads still run; every UDP measurement says why it failed
      ctx.udpLoadError = e.message;
      config.notes.push(`the UDP load generator or echo backends are not available (${e.message}): no UDP results`);
      log(`bench: ${config.notes.at(-1)}`);
    }
  }

  const busy = new Set();
  for (const threads of opts.threads) {
    for (let round = 1; round <= opts.rounds; round++) {
      for (const w of runWorkloads) {
        // rotate the order each round so no peer always runs first (or last) after a change
        const order = peers.map((_, i) => peers[(i + round - 1) % peers.length]);
        for (const peer of order) {
          if (!takesPart(peer, w, threads)) continue;
          for (const n of noisyNow()) busy.add(n);
          const rec = await measure({ ctx, backends, peer, workload: w, threads, round, opts, wl });
          measurements.push(rec);
          log(`bench: threads=${threads} round=${round} ${w.padEnd(11)} ${peer.name.padEnd(15)} ${describe(rec)}`);
        }
      }
    }
  }
  machine.busy = [...busy];
  const addons = new Set(measurements.map((m) => m.addon_mtime).filter(Boolean));
  if (addons.size > 1) config.notes.push(`the Switchyard addon was rebuilt during the run (${addons.size} versions seen, modified ${[...addons].join(', ')}): its rounds are not comparable`);
  const kinds = new Set(measurements.map((m) => m.addon_kind).filter(Boolean));
  if (sy && kinds.size) {
    machine.versions.switchyard += `, addon: ${[...kinds].join(' + ')}`;
    if ([...kinds].some((k) => k !== 'release')) {
      for (const p of syPeers) p.label += ' [debug build?]';
      config.notes.push(
        `the Switchyard addon of ${kinds.size > 1 ? 'some' : 'all'} measurements carries .debug_info although the release profile strips symbols: probably an unoptimised debug build (\`npm run build\` makes a release one); such numbers are not representative`,
      );
    }
  }
  // what the TLS peers negotiated (openssl s_client before each TLS measurement)
  const negotiated = new Map();
  for (const m of measurements) {
    const t = m.metrics?.tls;
    if (!t) continue;
    const key = `${m.workload}: ${m.peer}`;
    if (!negotiated.has(key)) negotiated.set(key, new Set());
    negotiated.get(key).add(`${t.protocol} ${t.cipher}, key exchange ${t.temp_key ?? '?'}, signature ${t.peer_sig ?? '?'}, session resumption ${t.resumed == null ? 'unknown' : t.resumed ? 'accepted' : 'refused'}`);
  }
  if (negotiated.size) config.notes.push(`TLS negotiated (openssl s_client; resumption checked with -sess_out/-sess_in): ${[...negotiated].map(([k, v]) => `${k} ${[...v].join(' / ')}`).join('; ')}`);
  if (machine.busy.length) config.notes.push(`${machine.busy.join(', ')} ran during the measurements: numbers are noisy`);
  await procs.stop(backends.nginx);
  await procs.stop(backends.iperf);
  await procs.stop(ctx.grpcBackends);
  await procs.stop(ctx.udpEcho);

  const { md, how } = writeOutputs(opts.out, 'latest');
  if (path.resolve(opts.out) === path.join(here, 'results')) updateReadme(md);
  log(`bench: chart rendered with ${how}`);
  log(`bench: wrote ${path.relative(process.cwd(), opts.out)}/latest.{md,json,svg,png}\n`);
  process.stdout.write(md);
}

/** Put the latest table into benches/README.md, after its marker line. */
function updateReadme(md) {
  const file = path.join(here, 'README.md');
  const marker = '<!-- latest-results -->';
  try {
    const text = fs.readFileSync(file, 'utf8');
    const at = text.indexOf(marker);
    if (at < 0) return;
    const body = md
      .replace(/^# .*\n+/, '')
      .replace(/^(#+) /gm, '$1# ')
      .replace(/`latest\.(png|svg|json)`/g, (m, ext) => `[\`results/latest.${ext}\`](results/latest.${ext})`);
    fs.writeFileSync(file, `${text.slice(0, at + marker.length)}\n\n${body.trim()}\n\n![ratios to HAProxy](results/latest.png)\n`);
  } catch (e) {
    log(`bench: could not update README.md: ${e.message}`);
  }
}

function describe(rec) {
  if (rec.skipped) return `skipped: ${rec.skipped}`;
  if (rec.startError) return `FAILED TO START: ${rec.startError}`;
  const m = rec.metrics;
  const parts = [];
  if (m.rps != null) parts.push(`${Math.round(m.rps)} req/s p50 ${m.p50_ms?.toFixed(3)}ms p99 ${m.p99_ms?.toFixed(3)}ms`);
  if (m.cps != null) parts.push(`${Math.round(m.cps)} ${rec.workload.startsWith('tls-hs') ? 'handshakes' : 'conn'}/s p99 ${m.p99_ms?.toFixed(3)}ms`);
  if (m.loss_pct != null) parts.push(`loss ${m.loss_pct.toFixed(3)} % (${m.lost} of ${m.sent})`);
  if (m.cpu_us_per_req != null) parts.push(`cpu ${m.cpu_us_per_req.toFixed(2)} µs, ${m.ctx_per_req.toFixed(3)} ctx switches per ${m.cps != null ? 'conn' : 'req'}`);
  if (m.up_gbps != null) parts.push(`up ${m.up_gbps.toFixed(2)} down ${m.down_gbps?.toFixed(2)} Gbit/s`);
  if (m.cpu_per_gb != null) parts.push(`cpu ${m.cpu_per_gb.toFixed(3)} s/GB`);
  if (m.kib_per_conn != null) parts.push(`${m.kib_per_conn.toFixed(2)} KiB/conn (${m.held} held, ${m.backend_conns} backend legs)`);
  if (rec.error) parts.push(`ERROR: ${rec.error}`);
  return parts.join('; ');
}

async function measure({ ctx, backends, peer, workload, threads, round, opts, wl }) {
  const rec = { threads, round, workload, peer: peer.name, metrics: {} };
  if (peer.unavailableReason) {
    rec.startError = peer.unavailableReason;
    return rec;
  }
  const dur = opts.duration;
  let proc = null;
  const isTls = TLS_WORKLOADS.includes(workload);
  const { kind, hs } = tlsOf(workload);
  if (isTls && !peer.tls) {
    rec.skipped = 'does not terminate TLS';
    return rec;
  }
  let httpPort = ctx.ports.http[0];
  let bulkPort = ctx.ports.iperf;
  if (workload === 'bulk') await ensureIperf(ctx, backends);
  if (!peer.direct) {
    try {
      // tls-hs* measure full handshakes: every peer refuses session resumption there
      const tls = isTls ? { ...ctx.tls[kind], resumption: !hs } : null;
      proc = await peer.start(ctx, threads, { ...peer.ports, tls });
    } catch (e) {
      rec.startError = e.message.replace(/\s+/g, ' ').slice(0, 300);
      return rec;
    }
    httpPort = peer.ports.httpPort;
    bulkPort = peer.ports.bulkPort;
    if (peer.name.startsWith('switchyard')) {
      // the addon may be rebuilt while the benchmark runs: remember which one each run used
      try {
        rec.addon_mtime = fs.statSync(switchyardAddon(ctx)).mtime.toISOString();
      } catch {}
      rec.addon_kind = switchyardBuildKind(switchyardAddon(ctx));
    }
  }
  const usage = () => (proc ? procs.treeUsage(proc.pid) : null); // CPU and context switches
  // HTTP (L7): http-ka and http-close on the http listener, http-routed on the routed one; all
  // three are reported per request (http-close: a request is a connection)
  const httpWrk = ['http-ka', 'http-close', 'http-routed'].includes(workload);
  try {
    if (workload === 'ka' || workload === 'close' || isTls || httpWrk) {
      const close = workload === 'close' || workload === 'http-close' || (isTls && hs);
      const port = isTls ? peer.ports.tlsPort : workload === 'http-routed' && !peer.direct ? peer.ports.routedPort : httpPort;
      const script = workload === 'http-routed' ? ctx.routesScript : null;
      let probe = null;
      if (isTls) {
        probe = await load.tlsProbe(port, ctx.workDir);
        if (hs && probe.resumed) throw new Error(`the peer resumed a TLS session although resumption is configured off: ${workload} would not measure full handshakes`);
        // ECDSA, or RSA / RSA-PSS: the peer signed with the certificate of this workload
        if (probe.peer_sig && !probe.peer_sig.startsWith(kind === 'rsa' ? 'RSA' : 'ECDSA')) throw new Error(`the peer signed with ${probe.peer_sig}, not with the ${load.CERT_KINDS[kind].label} key`);
      }
      await load.wrk({ port, seconds: 1, close, https: isTls, script }); // warm-up
      const u0 = usage();
      const r = await load.wrk({ port, seconds: dur, close, https: isTls, script });
      const u1 = usage();
      const errs = Object.values(r.errors).reduce((a, b) => a + b, 0);
      if (close && !httpWrk) {
        rec.metrics = { cps: r.rps, p99_ms: r.p99_ms, p50_ms: r.p50_ms, connections: r.requests, socket_errors: r.errors, non2xx: r.non2xx };
      } else {
        rec.metrics = { rps: r.rps, p50_ms: r.p50_ms, p99_ms: r.p99_ms, requests: r.requests, socket_errors: r.errors, non2xx: r.non2xx };
      }
      if (proc) {
        // the proxy's cost per request wrk completed (with close: per connection)
        const per = (x) => (r.requests > 0 ? x / r.requests : null);
        const cpuS = u1.cpu_s - u0.cpu_s;
        const ctx = u1.ctx_switches - u0.ctx_switches;
        Object.assign(rec.metrics, { cpu_s: cpuS, ctx_switches: ctx, cpu_us_per_req: per(cpuS * 1e6), ctx_per_req: per(ctx) });
        if (close && !httpWrk) rec.metrics.cpu_per_100k = per(cpuS * 1e5);
      }
      if (probe) rec.metrics.tls = probe;
      if (r.non2xx || errs > Math.max(10, r.requests * 0.001)) {
        rec.error = `wrk saw ${errs} socket errors ${JSON.stringify(r.errors)} and ${r.non2xx} non-2xx responses of ${r.requests}`;
      }
    } else if (udp.isUdpWorkload(workload)) {
      // direct: the load generator talks to the first echo backend
      const port = peer.direct ? ctx.ports.udpEcho[0] : peer.ports[udp.UDP_LISTENER[workload]];
      Object.assign(rec.metrics, await udp.measureUdp(ctx, { port, seconds: dur, usage }));
      if (rec.metrics.error) {
        rec.error = rec.metrics.error;
        delete rec.metrics.error;
      }
    } else if (isH2Workload(workload)) {
      Object.assign(rec.metrics, await measureH2({ ctx, peer, workload, dur, usage }));
      if (rec.metrics.error) {
        rec.error = rec.metrics.error;
        delete rec.metrics.error;
      }
    } else if (workload === 'bulk') {
      const c0 = usage()?.cpu_s;
      const up = await load.iperf3({ port: bulkPort, seconds: dur });
      await ensureIperf(ctx, backends);
      const down = await load.iperf3({ port: bulkPort, seconds: dur, reverse: true });
      const c1 = usage()?.cpu_s;
      const bytes = up.bytes + down.bytes;
      rec.metrics = { up_gbps: up.gbps, down_gbps: down.gbps, bytes };
      if (proc) {
        rec.metrics.cpu_s = c1 - c0;
        rec.metrics.cpu_per_gb = (c1 - c0) / (bytes / 1e9);
      }
    } else if (workload === 'mem' || workload === 'http-mem') {
      // warm up the proxy's allocator and pools, then take the baseline
      const warm = await load.openIdle({ port: httpPort, count: 64, concurrency: 64 });
      await load.closeAll(warm.sockets);
      await sleep(500);
      const before = procs.treeRssKiB(proc.pid);
      const held = await load.openIdle({ port: httpPort, count: opts.idleConns });
      // Idle at steady state, the same wait for every peer: Switchyard parks a keep-alive
      // connection (drops hyper's buffers) at once under a crowd, or once quiet for 1-2 s, closes
      // idle backend connections after its pool's keepalive.idle_timeout (4 s) and hands freed
      // heap back at its next 1 s heartbeat; HAProxy purges idle backend connections after its
      // pool-purge-delay (5 s). 8 s after the last connection opened, every peer's connections
      // have been idle for longer than any of these (Switchyard measured 1.46 KiB per connection
      // at 3.5 s, before its backend connections idled out).
      await sleep(workload === 'http-mem' ? 8000 : 1500);
      const after = procs.treeRssKiB(proc.pid);
      // the proxy's own sockets connected to a backend: one per held client connection for an
      // L4 proxy; an HTTP proxy keeps only its pool of idle backend connections (recorded)
      const legs = procs.establishedTo(ctx.ports.http, procs.treeSocketInodes(proc.pid));
      const n = held.sockets.length;
      rec.metrics = {
        kib_per_conn: n > 0 ? (after - before) / n : null,
        baseline_kib: before,
        loaded_kib: after,
        held: n,
        failed: held.failed,
        backend_conns: legs,
      };
      if (held.failed) rec.error = `${held.failed} of ${opts.idleConns} connections failed (first: ${held.firstError})`;
      else if (legs < n && workload === 'mem') rec.error = `only ${legs} backend connections for ${n} client connections`;
      await load.closeAll(held.sockets);
    }
  } catch (e) {
    rec.error = e.message.replace(/\s+/g, ' ').slice(0, 300);
    if (proc?.exitInfo) rec.error += ` (proxy exited: code ${proc.exitInfo.code} ${procs.tail(proc.logErr, 2)})`;
  } finally {
    await procs.stop(proc);
    await sleep(300);
  }
  return rec;
}

/**
 * An HTTP/2 workload on `peer`: a 1 s warm-up, the measured run (req/s, the proxy's CPU and
 * context switches per request), and for h2load a separate latency run with --log-file (p50,
 * p99); the grpc-unary load client measures its latencies itself. `error` when requests failed.
 */
async function measureH2({ ctx, peer, workload, dur, usage }) {
  const grpc = workload === 'grpc-unary';
  if (grpc && !ctx.grpcBackends) throw new Error(`the gRPC echo backends are not running: ${ctx.grpcBackendsError ?? 'not started'}`);
  if (!grpc && !h2.hasH2load()) throw new Error('h2load missing (Debian nghttp2-client; benches/install-peers.sh installs it)');
  const port = grpc ? peer.ports.grpcPort : peer.ports.httpPort;
  const run = (seconds, logFile) => (grpc ? h2.grpcLoad({ port, seconds }) : h2.h2load({ port, seconds, workload, logFile }));
  await run(1); // warm-up
  const u0 = usage();
  const r = await run(dur);
  const u1 = usage();
  const done = grpc ? r.calls : r.succeeded;
  const failed = grpc ? r.errors : r.failed + r.errored + r.timeout;
  const m = { rps: r.rps, requests: done, failed };
  if (grpc) Object.assign(m, { p50_ms: r.p50_ms, p99_ms: r.p99_ms, concurrency: h2.GRPC_CONCURRENCY });
  else {
    const logFile = path.join(ctx.workDir, `h2load-${peer.name}.log`);
    try {
      await run(Math.min(dur, 5), logFile);
      Object.assign(m, h2.latencyOfLog(logFile), { mean_ms: r.mean_ms, non2xx: r.non2xx });
    } finally {
      fs.rmSync(logFile, { force: true });
    }
  }
  if (u0 && u1 && done > 0) {
    const cpuS = u1.cpu_s - u0.cpu_s;
    const ctxSw = u1.ctx_switches - u0.ctx_switches;
    Object.assign(m, { cpu_s: cpuS, ctx_switches: ctxSw, cpu_us_per_req: (cpuS * 1e6) / done, ctx_per_req: ctxSw / done });
  }
  if (failed || m.non2xx || !done) {
    const first = grpc && r.first_error ? ` (first: ${r.first_error})` : '';
    m.error = `${failed} failed and ${m.non2xx ?? 0} non-2xx of ${done + failed} ${grpc ? 'calls' : 'requests'}${first}`;
  }
  return m;
}

main().catch(async (e) => {
  log(`bench: ${e.stack ?? e}`);
  await procs.killAll();
  process.exit(1);
});
