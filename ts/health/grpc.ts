/**
 * The `grpc` check: one call of the standard gRPC health service,
 * `grpc.health.v1.Health/Check`, over a fresh HTTP/2 connection (h2c with prior
 * knowledge, or TLS with ALPN `h2` when `grpc.tls`), spoken with `node:http2`
 * and a hand-written codec of the two tiny messages (no gRPC library in the
 * product):
 *
 *   HealthCheckRequest  { string service = 1; }           tag 0x0a, varint length, UTF-8
 *   HealthCheckResponse { ServingStatus status = 1; }     tag 0x08, varint (UNKNOWN 0 = empty)
 *
 * each in a gRPC frame (1 byte compressed flag 0, 4-byte big-endian length).
 * Healthy only when grpc-status is 0 (trailers, or the headers of a
 * Trailers-Only answer) and the answer is SERVING.
 */
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { describeError, isLocalError, USER_AGENT, type Finish } from './reasons.js';
import type { ResolvedHealthCheck } from './types.js';

/** The method every gRPC health server implements (grpc/grpc doc/health-checking.md). */
export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';

/** `HealthCheckResponse.ServingStatus` names (3 is only sent by Watch, named for completeness). */
export const SERVING_STATUS: readonly string[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** gRPC status code names, by code. */
const GRPC_STATUS: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** A health answer is 7 bytes; more than this is not a health server: stop reading. */
const MAX_RESPONSE = 64 * 1024;
/** grpc-message is shown in the reason up to this many characters. */
const MAX_MESSAGE = 200;

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** The request body: a gRPC frame holding `HealthCheckRequest { service }` ("" = an empty message). */
export function encodeHealthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const message = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** Read a varint at `at`; null when it runs past the end or past 10 bytes. */
function readVarint(buf: Buffer, at: number): { value: number; next: number } | null {
  let value = 0;
  let scale = 1;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * scale;
    scale *= 0x80;
    if (b < 0x80) return { value, next: i + 1 };
  }
  return null;
}

/**
 * The serving status in a response body (one gRPC frame holding a
 * `HealthCheckResponse`), or why it is not one. Unknown fields are skipped, as
 * protobuf readers do; an absent `status` is UNKNOWN (0).
 */
export function decodeHealthResponse(body: Buffer): { status: number } | { error: string } {
  if (body.length === 0) return { error: 'no response message' };
  if (body.length < 5) return { error: 'truncated gRPC frame' };
  // The check never offers a compression (no grpc-accept-encoding), so a compressed frame is a broken peer.
  if (body[0] !== 0) return { error: 'compressed response message (none was offered)' };
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) return { error: 'truncated response message' };
  const msg = body.subarray(5, 5 + length);
  let status = 0;
  let at = 0;
  while (at < msg.length) {
    const key = readVarint(msg, at);
    if (!key) return { error: 'malformed HealthCheckResponse' };
    at = key.next;
    const wire = key.value % 8;
    const field = Math.floor(key.value / 8);
    if (wire === 0) {
      const v = readVarint(msg, at);
      if (!v) return { error: 'malformed HealthCheckResponse' };
      if (field === 1) status = v.value;
      at = v.next;
    } else if (wire === 2) {
      const len = readVarint(msg, at);
      if (!len || len.next + len.value > msg.length) return { error: 'malformed HealthCheckResponse' };
      at = len.next + len.value;
    } else if (wire === 1 || wire === 5) {
      at += wire === 1 ? 8 : 4;
      if (at > msg.length) return { error: 'malformed HealthCheckResponse' };
    } else {
      return { error: 'malformed HealthCheckResponse' };
    }
  }
  return { status };
}

/** "grpc-status 5 (NOT_FOUND): unknown service" from a grpc-status and grpc-message. */
export function describeGrpcStatus(code: number, message: string | undefined): string {
  const name = GRPC_STATUS[code];
  let text = '';
  if (message) {
    // grpc-message is percent-encoded UTF-8 (PROTOCOL-HTTP2.md); show it raw if it is not.
    try {
      text = decodeURIComponent(message);
    } catch {
      text = message;
    }
    text = text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
  }
  return `grpc-status ${code}${name ? ` (${name})` : ''}${text ? `: ${text}` : ''}`;
}

/** The verdict on a finished call: its grpc-status and its body. */
export function healthVerdict(grpcStatus: string | undefined, grpcMessage: string | undefined, body: Buffer): { ok: boolean; reason: string } {
  if (grpcStatus === undefined) return { ok: false, reason: 'gRPC answer without grpc-status' };
  const code = /^\d+$/.test(grpcStatus) ? Number(grpcStatus) : NaN;
  if (Number.isNaN(code)) return { ok: false, reason: `invalid grpc-status ${JSON.stringify(grpcStatus)}` };
  if (code !== 0) return { ok: false, reason: describeGrpcStatus(code, grpcMessage) };
  const decoded = decodeHealthResponse(body);
  if ('error' in decoded) return { ok: false, reason: `grpc health: ${decoded.error}` };
  const name = SERVING_STATUS[decoded.status] ?? `status ${decoded.status}`;
  return { ok: decoded.status === 1, reason: `grpc health: ${name}` };
}

/** One header value as a string (HTTP/2 headers may arrive as arrays). */
function header(h: http2.IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A reason for an HTTP/2 session or stream error. */
function describeHttp2Error(err: NodeJS.ErrnoException, handshaking: boolean): string {
  const code = err.code ?? '';
  // A server that knows ALPN but not h2 refuses the handshake with this alert (RFC 7301).
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') return 'TLS: the backend did not agree to HTTP/2 (alert no_application_protocol)';
  if (code === 'ERR_HTTP2_STREAM_ERROR') return `stream reset by the backend: ${err.message}`;
  // nghttp2's own error: what an HTTP/1.x server's answer to the h2 preface produces.
  if (code === 'ERR_HTTP2_ERROR') return `HTTP/2: ${err.message} (not an HTTP/2 server?)`;
  if (code.startsWith('ERR_HTTP2')) return `HTTP/2: ${err.message}`;
  return describeError(err, handshaking);
}

/** `grpc` over h2c or TLS; returns the cleanup (destroys the session and its socket). */
export function grpcCheck(target: { host: string; port: number }, check: ResolvedHealthCheck, ca: Buffer | undefined, finish: Finish): () => void {
  const g = check.grpc!;
  const t = check.tls;
  const hostPort = net.isIPv6(target.host) ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
  let handshaking = false;
  // Our own socket, so the reasons can tell a refused connect from a failed handshake, and ALPN is checked first.
  const socket: net.Socket = t
    ? tls.connect({ ...target, servername: t.sni ?? undefined, rejectUnauthorized: t.verify, ca, ALPNProtocols: ['h2'] })
    : net.connect(target);
  socket.on('error', (err) => finish(false, describeHttp2Error(err, handshaking), isLocalError(err)));
  if (t) {
    socket.once('connect', () => (handshaking = true));
    socket.once('secureConnect', () => {
      handshaking = false;
      const alpn = (socket as tls.TLSSocket).alpnProtocol;
      if (alpn !== 'h2') finish(false, `TLS: the backend did not agree to HTTP/2 (ALPN: ${alpn || 'none'})`);
    });
  }
  const session = http2.connect(`${t ? 'https' : 'http'}://${hostPort}`, { createConnection: () => socket });
  session.on('error', (err: NodeJS.ErrnoException) => finish(false, describeHttp2Error(err, handshaking), isLocalError(err)));
  session.on('close', () => finish(false, 'connection closed before a response'));
  const req = session.request(
    {
      ':method': 'POST',
      ':path': HEALTH_CHECK_PATH,
      ':authority': g.authority ?? hostPort,
      'content-type': 'application/grpc',
      te: 'trailers',
      // The backend may give up when we do (grpc-timeout: at most 8 digits; 1h in ms has 7).
      'grpc-timeout': `${check.timeout_ms}m`,
      'user-agent': USER_AGENT,
    },
    { endStream: false },
  );
  let body = Buffer.alloc(0);
  let headers: http2.IncomingHttpHeaders | null = null;
  let trailers: http2.IncomingHttpHeaders | null = null;
  req.on('response', (h) => {
    headers = h;
    const status = Number(h[':status']);
    if (status !== 200) return finish(false, `HTTP ${status} (not a gRPC answer)`);
    const type = header(h, 'content-type') ?? '';
    if (!type.startsWith('application/grpc')) return finish(false, `not a gRPC answer (content-type ${JSON.stringify(type)})`);
  });
  req.on('data', (chunk: Buffer) => {
    body = Buffer.concat([body, chunk]);
    if (body.length > MAX_RESPONSE) finish(false, `grpc health: response larger than ${MAX_RESPONSE} bytes`);
  });
  req.on('trailers', (tr) => (trailers = tr));
  req.on('end', () => {
    // The stream also ends when the connection goes before any answer.
    if (!headers) return finish(false, 'connection closed before a response');
    // Trailers-Only: grpc-status comes in the (only) headers, e.g. 5 NOT_FOUND for an unknown service.
    const from = trailers ?? headers;
    const verdict = healthVerdict(header(from, 'grpc-status'), header(from, 'grpc-message'), body);
    finish(verdict.ok, verdict.reason);
  });
  req.on('error', (err: NodeJS.ErrnoException) => finish(false, describeHttp2Error(err, handshaking), isLocalError(err)));
  // A reset with NO_ERROR emits no 'error'; any close before 'end' is a failure.
  req.on('close', () => finish(false, req.rstCode ? `stream reset by the backend (code ${req.rstCode})` : 'stream closed before a response'));
  req.end(encodeHealthRequest(g.service));
  return () => {
    session.destroy();
    socket.destroy();
  };
}
