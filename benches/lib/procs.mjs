// Process bookkeeping for the benchmark: spawn children in their own process groups, remember
// them, stop them (also on Ctrl-C), and read their memory and CPU from /proc.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const live = new Map(); // pid -> { name, child, cmdline }
let pidFile = null;

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

function writePidFile() {
  if (!pidFile) return;
  const rows = [...live.entries()].map(([pid, p]) => ({ pid, name: p.name, cmdline: p.cmdline }));
  try {
    fs.writeFileSync(pidFile, JSON.stringify(rows, null, 1));
  } catch {}
}

function cmdlineOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return null;
  }
}

/**
 * Remember where the pids of this run are written, and end the leftovers of an earlier run
 * that died without cleaning up (only pids whose command line still matches what was recorded).
 */
export function initPidFile(file) {
  pidFile = file;
  let old = [];
  try {
    old = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {}
  for (const { pid, name, cmdline } of old) {
    if (cmdlineOf(pid) === cmdline) {
      process.stderr.write(`bench: ending leftover ${name} (pid ${pid}) from an earlier run\n`);
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
  }
  writePidFile();
}

/**
 * Spawn a long-lived child in its own process group; stdout/stderr go to files in logDir.
 * Returns { pid, child, name, exited: Promise<{code, signal}>, logOut, logErr }.
 */
export function start(name, cmd, args, { cwd, logDir, env } = {}) {
  const logOut = path.join(logDir, `${name}.out`);
  const logErr = path.join(logDir, `${name}.err`);
  const out = fs.openSync(logOut, 'w');
  const err = fs.openSync(logErr, 'w');
  const child = spawn(cmd, args, {
    cwd,
    env: env ?? process.env,
    detached: true,
    stdio: ['ignore', out, err],
  });
  fs.closeSync(out);
  fs.closeSync(err);
  const proc = { name, child, pid: child.pid, logOut, logErr, exitInfo: null };
  proc.exited = new Promise((resolve) => {
    child.on('error', (e) => {
      proc.exitInfo = { code: null, signal: null, error: e.message };
      resolve(proc.exitInfo);
    });
    child.on('exit', (code, signal) => {
      proc.exitInfo = { code, signal };
      live.delete(child.pid);
      writePidFile();
      resolve(proc.exitInfo);
    });
  });
  if (child.pid) {
    live.set(child.pid, { name, child, cmdline: [cmd, ...args].join(' ') });
    writePidFile();
  }
  return proc;
}

/** Stop a child started with start(): SIGTERM to its group, SIGKILL after graceMs. */
export async function stop(proc, graceMs = 4000) {
  if (!proc || proc.exitInfo || !proc.pid) return;
  const kill = (sig) => {
    try {
      process.kill(-proc.pid, sig);
    } catch {
      try {
        process.kill(proc.pid, sig);
      } catch {}
    }
  };
  kill('SIGTERM');
  const done = await Promise.race([proc.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    kill('SIGKILL');
    await Promise.race([proc.exited, sleep(2000)]);
  }
  // make sure nothing of its group survives (e.g. nginx workers of a killed master)
  kill('SIGKILL');
}

/** Run a command to completion, capturing stdout and stderr (tracked, so Ctrl-C ends it too). */
export function run(cmd, args, { timeoutMs = 120000, cwd } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const name = path.basename(cmd);
    if (child.pid) {
      live.set(child.pid, { name, child, cmdline: [cmd, ...args].join(' ') });
      writePidFile();
    }
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: stderr + e.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child.pid);
      writePidFile();
      resolve({ code: code ?? -1, signal, stdout, stderr });
    });
  });
}

/** End everything still running (used on exit and on Ctrl-C). Synchronous on purpose. */
export function killAllSync(sig = 'SIGKILL') {
  for (const pid of live.keys()) {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {}
    }
  }
}

export async function killAll() {
  killAllSync('SIGTERM');
  const deadline = Date.now() + 3000;
  while (live.size && Date.now() < deadline) await sleep(100);
  killAllSync('SIGKILL');
  live.clear();
  writePidFile();
}

// ---------------------------------------------------------------- /proc readings

function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); field n is rest[n - 3]
    return {
      ppid: Number(rest[1]),
      utime: Number(rest[11]),
      stime: Number(rest[12]),
      cutime: Number(rest[13]),
      cstime: Number(rest[14]),
    };
  } catch {
    return null;
  }
}

/** pid and all its live descendants. */
export function processTree(rootPid) {
  const children = new Map();
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    const st = readStat(ent);
    if (!st) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(ent));
  }
  const out = [];
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}

/** Sum of VmRSS (KiB) over the process and its descendants. */
export function treeRssKiB(rootPid) {
  let sum = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) sum += Number(m[1]);
    } catch {}
  }
  return sum;
}

/** Voluntary + involuntary context switches of every live thread of pid. */
function ctxSwitches(pid) {
  let sum = 0;
  let tids = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {}
  for (const tid of tids) {
    try {
      for (const m of fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8').matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) sum += Number(m[1]);
    } catch {}
  }
  return sum;
}

/**
 * What the process and its live descendants have used so far; differences of two readings give
 * the cost of a run.
 * - cpu_s: CPU seconds (user + system) from /proc/PID/stat, which counts all threads of a
 *   process, exited ones included, plus what its reaped children used (cutime/cstime of the root).
 * - ctx_switches: voluntary + involuntary context switches summed over /proc/PID/task/TID/status.
 *   The kernel shows them per thread only, so the switches of threads (and processes) that exit
 *   between the two readings are lost: a proxy that starts threads per connection is undercounted.
 */
export function treeUsage(rootPid) {
  let ticks = 0;
  let ctx = 0;
  for (const pid of processTree(rootPid)) {
    const st = readStat(pid);
    if (!st) continue;
    ticks += st.utime + st.stime;
    if (pid === rootPid) ticks += st.cutime + st.cstime;
    ctx += ctxSwitches(pid);
  }
  return { cpu_s: ticks / CLK_TCK, ctx_switches: ctx };
}

/** Local ports in LISTEN state on IPv4/IPv6 (from /proc/net/tcp{,6}). */
export function listeningPorts() {
  const ports = new Set();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue;
      ports.add(parseInt(cols[1].split(':')[1], 16));
    }
  }
  return ports;
}

/** Socket inodes held open by the process tree of rootPid. */
export function treeSocketInodes(rootPid) {
  const inodes = new Set();
  for (const pid of processTree(rootPid)) {
    let fds = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {}
    }
  }
  return inodes;
}

/**
 * Number of ESTABLISHED TCP sockets whose remote port is one of `ports`; with `inodes`, only
 * sockets among them (e.g. those of one process tree).
 */
export function establishedTo(ports, inodes = null) {
  const want = new Set(ports);
  // count distinct sockets: /proc/net/tcp is read in chunks and may repeat entries while the
  // table changes under heavy connection churn
  const seen = new Set();
  let orphans = 0;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '01') continue;
      if (!want.has(parseInt(cols[2].split(':')[1], 16))) continue;
      if (inodes && !inodes.has(cols[9])) continue;
      if (cols[9] === '0') orphans++;
      else seen.add(cols[9]);
    }
  }
  return seen.size + orphans;
}

/** One TCP connect attempt; resolves true if it connected. */
export function tryConnect(port, host = '127.0.0.1', timeoutMs = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/** One request (GET `reqPath`) with Connection: close over an open socket; resolves with the raw response. */
function request(s, readyEvent, what, timeoutMs, reqPath = '/') {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`timeout waiting for an ${what} response`));
    }, timeoutMs);
    s.on(readyEvent, () => s.write(`GET ${reqPath} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n`));
    s.on('data', (d) => (buf += d));
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(buf);
    });
  });
}

/** Send one HTTP request (GET `reqPath`) with Connection: close and return the raw response (or throw). */
export function httpGet(port, host = '127.0.0.1', timeoutMs = 3000, reqPath = '/') {
  return request(net.connect({ port, host }), 'connect', 'HTTP', timeoutMs, reqPath);
}

/** One HTTPS request (any certificate accepted, SNI localhost); resolves with the raw response. */
export function httpsGet(port, host = '127.0.0.1', timeoutMs = 3000) {
  return request(tls.connect({ port, host, servername: 'localhost', rejectUnauthorized: false }), 'secureConnect', 'HTTPS', timeoutMs);
}

export function tail(file, lines = 5) {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join(' | ').slice(0, 400);
  } catch {
    return '';
  }
}
