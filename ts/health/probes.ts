/**
 * One active check of one backend: a TCP connect, a TLS handshake, an HTTP(S)
 * request, a gRPC health call (`grpc.ts`), or a UDP datagram and its reply
 * (`udp.ts`). Every outcome, including failures, resolves to a `CheckResult`
 * whose reason a person can act on ("HTTP 503", "timeout after 1000 ms",
 * "connection refused", "TLS: certificate has expired", "grpc health:
 * NOT_SERVING", "port unreachable"); `probe` never rejects.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { grpcCheck } from './grpc.js';
import { describeError, isLocalError, USER_AGENT, type Finish } from './reasons.js';
import type { ResolvedHealthCheck } from './types.js';
import { udpCheck } from './udp.js';

export { isLocalError } from './reasons.js';

/** The outcome of one check. */
export interface CheckResult {
  ok: boolean;
  reason: string;
  duration_ms: number;
  /** When the check started (epoch ms). */
  at: number;
  /** Set when the check could not run for a local reason (this process is out of file
   * descriptors: EMFILE/ENFILE). Such a result says nothing about the backend: no verdict. */
  local?: true;
}

/** Only this much of an HTTP body is searched for `expect_body`: checks must stay cheap. */
const MAX_BODY = 64 * 1024;

/** Split `ip:port` / `[v6]:port` (the validator's canonical forms). */
export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(i + 1)) };
}

/** Whether `status` is one of the accepted codes. */
export function statusAccepted(status: number, check: ResolvedHealthCheck): boolean {
  return (check.http?.expect_status ?? []).some((r) => status >= r.from && status <= r.to);
}

/**
 * Check `address` (`ip:port`, the port replaced by `check.port` when set) once.
 * Resolves after at most `check.timeout_ms` (connect and answer together), or at
 * once when `signal` aborts; the socket is always destroyed.
 */
export async function probe(address: string, check: ResolvedHealthCheck, signal?: AbortSignal): Promise<CheckResult> {
  const at = Date.now();
  const started = performance.now();
  const done = (ok: boolean, reason: string, local = false): CheckResult => ({
    ok,
    reason,
    duration_ms: Math.round(performance.now() - started),
    at,
    ...(local ? { local: true as const } : {}),
  });
  let ca: Buffer | undefined;
  if (check.tls?.ca) {
    try {
      ca = await readFile(check.tls.ca);
    } catch (err) {
      return done(false, `TLS: cannot read CA bundle ${check.tls.ca}: ${(err as Error).message}`, isLocalError(err));
    }
  }
  const { host, port: backendPort } = splitAddress(address);
  const target = { host, port: check.port ?? backendPort };
  return new Promise<CheckResult>((resolve) => {
    let cleanup = (): void => {};
    let settled = false;
    const finish = (ok: boolean, reason: string, local = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      cleanup();
      resolve(done(ok, reason, local));
    };
    const onAbort = (): void => finish(false, 'check cancelled');
    const timer = setTimeout(() => finish(false, `timeout after ${check.timeout_ms} ms`), check.timeout_ms);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort);
    if (check.type === 'http') cleanup = httpCheck(target, check, ca, finish);
    else if (check.type === 'grpc') cleanup = grpcCheck(target, check, ca, finish);
    else if (check.type === 'udp') cleanup = udpCheck(target, check, finish);
    else cleanup = socketCheck(target, check, ca, finish);
  });
}

/** `tcp` (connected) or `tls` (handshake done); returns the cleanup. */
function socketCheck(target: { host: string; port: number }, check: ResolvedHealthCheck, ca: Buffer | undefined, finish: Finish): () => void {
  const t = check.tls;
  let connected = false;
  const socket = t
    ? tls.connect({ ...target, servername: t.sni ?? undefined, rejectUnauthorized: t.verify, ca })
    : net.connect(target);
  socket.on('connect', () => {
    connected = true;
    if (!t) finish(true, 'connected');
  });
  socket.on('secureConnect', () => finish(true, 'TLS handshake ok'));
  socket.on('error', (err) => finish(false, describeError(err, t !== null && connected), isLocalError(err)));
  socket.on('close', () => finish(false, t && connected ? 'TLS: connection closed during the handshake' : 'connection closed'));
  return () => socket.destroy();
}

/** `http` over TCP or TLS; returns the cleanup. */
function httpCheck(target: { host: string; port: number }, check: ResolvedHealthCheck, ca: Buffer | undefined, finish: Finish): () => void {
  const h = check.http!;
  const t = check.tls;
  const hostHeader = h.host ?? (net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`);
  const options: https.RequestOptions = {
    ...target,
    method: h.method,
    path: h.path,
    // A fresh connection per check, closed after it: pooled sockets would hide a dead backend.
    agent: false,
    headers: { 'user-agent': USER_AGENT, ...h.headers, host: hostHeader, connection: 'close' },
  };
  let handshaking = false;
  const req = t
    ? https.request({ ...options, servername: t.sni ?? undefined, rejectUnauthorized: t.verify, ca })
    : http.request(options);
  req.on('socket', (s) => s.once('connect', () => (handshaking = t !== null)));
  if (t) req.on('socket', (s) => s.once('secureConnect', () => (handshaking = false)));
  req.on('error', (err) => finish(false, describeError(err, handshaking), isLocalError(err)));
  req.on('response', (res) => {
    const status = res.statusCode ?? 0;
    if (!statusAccepted(status, check)) return finish(false, `HTTP ${status}`);
    const want = h.expect_body;
    if (want === null) return finish(true, `HTTP ${status}`);
    const needle = Buffer.from(want);
    let body = Buffer.alloc(0);
    const lacks = (): void => finish(false, `HTTP ${status} but body lacks ${JSON.stringify(want)}`);
    res.on('data', (chunk: Buffer) => {
      body = Buffer.concat([body, chunk]).subarray(0, MAX_BODY);
      if (body.includes(needle)) finish(true, `HTTP ${status}`);
      else if (body.length >= MAX_BODY) lacks();
    });
    res.on('end', lacks);
    res.on('error', (err) => finish(false, describeError(err, false)));
  });
  req.end();
  return () => req.destroy();
}
