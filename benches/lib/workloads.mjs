// The load generators: wrk (keep-alive and Connection: close), iperf3 (bulk) and a Node client
// that holds many idle connections (memory).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as procs from './procs.mjs';

function toMs(v, unit) {
  const n = Number(v);
  switch (unit) {
    case 'us':
      return n / 1000;
    case 'ms':
      return n;
    case 's':
      return n * 1000;
    case 'm':
      return n * 60000;
    default:
      return NaN;
  }
}

/** Parse wrk's text output (with --latency). */
export function parseWrk(text) {
  const out = { rps: null, requests: null, seconds: null, p50_ms: null, p99_ms: null, errors: {}, non2xx: 0 };
  let m = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (m) out.rps = Number(m[1]);
  m = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(text);
  if (m) {
    out.requests = Number(m[1]);
    out.seconds = toMs(m[2], m[3]) / 1000;
  }
  const dist = text.split('Latency Distribution')[1] ?? '';
  m = /50%\s+([\d.]+)(us|ms|s|m)\b/.exec(dist);
  if (m) out.p50_ms = toMs(m[1], m[2]);
  m = /99%\s+([\d.]+)(us|ms|s|m)\b/.exec(dist);
  if (m) out.p99_ms = toMs(m[1], m[2]);
  m = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  if (m) out.errors = { connect: +m[1], read: +m[2], write: +m[3], timeout: +m[4] };
  m = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  if (m) out.non2xx = Number(m[1]);
  return out;
}

export async function wrk({ port, seconds, close = false, https = false, connections = 64, threads = 2 }) {
  const args = [`-c${connections}`, `-t${threads}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  if (close) args.push('-H', 'Connection: close');
  args.push(`${https ? 'https' : 'http'}://127.0.0.1:${port}/`);
  const r = await procs.run('wrk', args, { timeoutMs: (seconds + 30) * 1000 });
  const parsed = parseWrk(r.stdout);
  if (r.code !== 0 || parsed.rps == null) {
    throw new Error(`wrk failed (code ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  }
  return parsed;
}

/** The certificate key types of the TLS workloads: `tls-ka`/`tls-hs` use ecdsa, `*-rsa` rsa. */
export const CERT_KINDS = {
  ecdsa: { label: 'ECDSA P-256', prefix: '', newkey: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] },
  rsa: { label: 'RSA 2048', prefix: 'rsa-', newkey: ['-newkey', 'rsa:2048'] },
};

/**
 * A self-signed certificate (key type `kind` of CERT_KINDS) for localhost / 127.0.0.1, made with
 * the openssl CLI in `dir` (the work directory, not committed). Returns { cert, key, combined }
 * (absolute paths; combined = cert + key in one file, as HAProxy wants it); the RSA files are
 * prefixed `rsa-`.
 */
export async function makeCert(dir, kind = 'ecdsa') {
  const { prefix, newkey } = CERT_KINDS[kind];
  const cert = path.join(dir, `${prefix}chain.pem`);
  const key = path.join(dir, `${prefix}key.pem`);
  const combined = path.join(dir, `${prefix}combined.pem`);
  fs.mkdirSync(dir, { recursive: true });
  const r = await procs.run('openssl', [
    'req', '-x509', ...newkey, '-nodes',
    '-keyout', key, '-out', cert, '-days', '7', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  if (r.code !== 0) throw new Error(`openssl req failed: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  fs.writeFileSync(combined, fs.readFileSync(cert, 'utf8') + fs.readFileSync(key, 'utf8'), { mode: 0o600 });
  fs.chmodSync(key, 0o600);
  return { cert, key, combined };
}

/**
 * What a TLS listener negotiates, and whether it resumes: one `openssl s_client` connection
 * saves its session (-sess_out; stdin held open briefly so the TLS 1.3 tickets arrive), a second
 * one offers it (-sess_in). Returns { protocol, cipher, temp_key, peer_sig, resumed } (peer_sig:
 * the server's signature type, e.g. ECDSA or RSA-PSS; resumed is false too when the server gave
 * the first connection nothing to resume with).
 */
export async function tlsProbe(port, workDir) {
  const sess = path.join(workDir, `probe-${port}.sess`);
  fs.rmSync(sess, { force: true });
  const base = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost'];
  const first = await procs.run('sh', ['-c', 'sleep 0.3 | "$@" 2>&1', 'sh', 'openssl', ...base, '-sess_out', sess], { timeoutMs: 10000 });
  const m = /^(New|Reused), (\S+), Cipher is (\S+)/m.exec(first.stdout);
  if (!m) throw new Error(`openssl s_client failed: ${first.stdout.trim().split('\n').slice(-3).join(' ').slice(0, 200)}`);
  const out = {
    protocol: m[2],
    cipher: m[3],
    temp_key: /Server Temp Key: ([^\n]+)/.exec(first.stdout)?.[1]?.trim() ?? null,
    peer_sig: /Peer signature type: (\S+)/.exec(first.stdout)?.[1] ?? null,
    resumed: null,
  };
  // no session file: the server sent no ticket (TLS 1.3) / no session id, so nothing to resume
  if (!fs.existsSync(sess) || fs.statSync(sess).size === 0) out.resumed = false;
  else {
    const second = await procs.run('sh', ['-c', '"$@" < /dev/null 2>&1', 'sh', 'openssl', ...base, '-sess_in', sess], { timeoutMs: 10000 });
    const m2 = /^(New|Reused), /m.exec(second.stdout);
    if (m2) out.resumed = m2[1] === 'Reused';
  }
  fs.rmSync(sess, { force: true });
  return out;
}

/** One iperf3 run; returns { gbps, bytes }. Retries while the server is still busy. */
export async function iperf3({ port, seconds, reverse = false }) {
  const args = ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'];
  if (reverse) args.push('-R');
  let last = '';
  for (let attempt = 0; attempt < 4; attempt++) {
    const r = await procs.run('iperf3', args, { timeoutMs: (seconds + 30) * 1000 });
    let j = null;
    try {
      j = JSON.parse(r.stdout);
    } catch {}
    if (j && !j.error && j.end?.sum_received) {
      const s = j.end.sum_received;
      // bytes forwarded = what the receiving side got (equal to what went through the proxy)
      return { gbps: s.bits_per_second / 1e9, bytes: s.bytes };
    }
    last = j?.error ?? (r.stderr || r.stdout).trim().slice(0, 300);
    if (!/busy|unable to (connect|receive|send)|reset/i.test(last)) break;
    await sleep(1000);
  }
  throw new Error(`iperf3 failed: ${last}`);
}

/**
 * Open `count` connections to port, each sends one small HTTP request and reads the response
 * (so the proxy's backend leg exists for certain), then stays open and idle.
 * Returns { sockets, failed, firstError }.
 */
export async function openIdle({ port, count, concurrency = 200, timeoutMs = 120000 }) {
  const sockets = [];
  let failed = 0;
  let firstError = null;
  let started = 0;
  const deadline = Date.now() + timeoutMs;
  const req = 'GET / HTTP/1.1\r\nHost: bench\r\n\r\n';

  const one = () =>
    new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      let buf = '';
      let settled = false;
      const finish = (ok, err) => {
        if (settled) return;
        settled = true;
        clearTimeout(t);
        if (ok) sockets.push(s);
        else {
          failed++;
          if (!firstError) firstError = err;
          s.destroy();
        }
        resolve();
      };
      const t = setTimeout(() => finish(false, 'timeout waiting for the response'), 15000);
      s.on('connect', () => s.write(req));
      s.on('data', (d) => {
        buf += d;
        if (buf.endsWith('ok')) finish(true);
      });
      s.on('error', (e) => finish(false, e.message));
      s.on('close', () => finish(false, 'closed before the response'));
    });

  const workers = [];
  for (let w = 0; w < concurrency; w++) {
    workers.push(
      (async () => {
        while (started < count && Date.now() < deadline) {
          started++;
          await one();
        }
      })(),
    );
  }
  await Promise.all(workers);
  // errors after the response (e.g. the proxy dropping idle connections) count as failures too
  for (const s of sockets) s.on('error', () => {});
  return { sockets, failed, firstError };
}

export async function closeAll(sockets) {
  for (const s of sockets) s.destroy();
  await sleep(200);
}
