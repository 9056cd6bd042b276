/** HTTP plumbing of the admin server: JSON errors, capped body reading, error mapping. */
import { METHODS, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConfigIssue } from '../errors.js';

/** Largest request body accepted (64 KiB); larger ones get 413 `payload_too_large`. */
export const BODY_LIMIT = 64 * 1024;
/** Largest request line plus headers (16 KiB, Node's default, set explicitly so the docs can
 * promise it); larger ones get 431 `headers_too_large`. */
export const HEADER_LIMIT = 16 * 1024;

/** An error with an HTTP status and a stable code, rendered as `{ "error": { code, message } }`. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: ConfigIssue[],
    /** Extra response headers (`Allow` of a 405, say). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The error body every failure returns. */
export function errorBody(e: AdminError): { error: { code: string; message: string; issues?: ConfigIssue[] } } {
  return { error: { code: e.code, message: e.message, ...(e.issues ? { issues: e.issues } : {}) } };
}

/** Map an error thrown by the balancer to an `AdminError` (by its `code`). */
export function fromLb(err: unknown): AdminError {
  if (err instanceof AdminError) return err;
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'SWITCHYARD_ERR_NOT_FOUND':
      return new AdminError(404, 'not_found', message);
    case 'SWITCHYARD_ERR_CONFLICT':
      return new AdminError(409, 'conflict', message);
    case 'SWITCHYARD_ERR_BIND':
      // A reload's new listener cannot bind (the address is in use, say); nothing was changed.
      return new AdminError(409, 'bind_failed', message);
    case 'SWITCHYARD_ERR_CONFIG': {
      const issues = (err as { issues?: ConfigIssue[] }).issues;
      return new AdminError(422, 'invalid_config', issues?.length ? `invalid configuration: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}` : message, issues ?? []);
    }
    case 'SWITCHYARD_ERR_CLOSED':
      return new AdminError(503, 'closed', message);
    default:
      return new AdminError(500, 'internal', message);
  }
}

/** Write a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Write a text response (metrics, the dashboard). */
export function sendText(res: ServerResponse, status: number, contentType: string, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/**
 * Read a request body of at most `BODY_LIMIT` bytes. Rejects with 413 as soon
 * as the declared or received length passes the cap (the rest is discarded).
 */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > BODY_LIMIT) {
    req.resume();
    throw new AdminError(413, 'payload_too_large', `request body of ${declared} bytes is over the ${BODY_LIMIT}-byte limit`);
  }
  // Events, not an async iterator: leaving a `for await` early would destroy the
  // socket before the 413 could be sent.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= BODY_LIMIT) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      req.resume();
      reject(new AdminError(413, 'payload_too_large', `request body is over the ${BODY_LIMIT}-byte limit`));
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** Does the request carry a body (a non-zero length or chunked encoding)? */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Read and parse a JSON body: `application/json` only, at most 64 KiB.
 * @throws AdminError 400 `bad_content_type`, 400 `bad_json`, 413 `payload_too_large`
 */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    req.resume();
    throw new AdminError(400, 'bad_content_type', `expected content-type application/json, got ${type ? JSON.stringify(type) : 'none'}`);
  }
  const raw = await readBody(req);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new AdminError(400, 'bad_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** The error a request gets that Node's HTTP parser refused before any handler ran. */
function parserError(err: NodeJS.ErrnoException & { rawPacket?: Buffer; reason?: string }): AdminError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new AdminError(431, 'headers_too_large', `the request line and headers are over the ${HEADER_LIMIT}-byte limit`);
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new AdminError(408, 'request_timeout', 'the request was not received in time');
    case 'HPE_INVALID_METHOD': {
      // Name the method when the packet starts with an unknown one (never echo arbitrary bytes;
      // with pipelining the packet may start with an earlier, valid request).
      const token = /^[\x21-\x7e]{1,24}(?= )/.exec(err.rawPacket?.toString('latin1') ?? '')?.[0];
      const method = token && !METHODS.includes(token) ? token : undefined;
      return new AdminError(400, 'bad_request', `unknown HTTP method${method ? ` ${JSON.stringify(method)}` : ''} (the admin API uses GET, HEAD, POST, PUT, DELETE)`);
    }
    default:
      return new AdminError(400, 'bad_request', `malformed HTTP request: ${err.reason ?? err.message}${err.code ? ` (${err.code})` : ''}`);
  }
}

/**
 * The server's `clientError` handler: a request Node's parser refused (oversized headers, an
 * unknown method, bad framing) still gets a JSON error, written to the raw socket (no
 * `ServerResponse` exists yet), then the connection is closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A response already under way on this connection (a stream, say) cannot be followed by another.
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const e = parserError(err);
  const text = `${JSON.stringify(errorBody(e), null, 2)}\n`;
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(text)}\r\n` +
      'cache-control: no-store\r\nconnection: close\r\n\r\n' +
      text,
  );
}
