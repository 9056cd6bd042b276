/**
 * Traffic for tests: N HTTP requests (each on its own connection, `Connection: close`) or N TCP
 * connections through a balancer, a few at a time, and where each one went — read from the
 * fake backends' `x-backend` header (HTTP) or first line (TCP).
 */
import http from 'node:http';
import net from 'node:net';
import { BACKEND_HEADER } from './fake-backend.js';

/** Where the traffic went. */
export interface TrafficResult {
  /** Requests or connections attempted. */
  sent: number;
  /** Per backend id, how many it answered (HTTP: any status; TCP: its first line arrived). */
  byBackend: Record<string, number>;
  /** HTTP: per status code; TCP: empty. */
  statuses: Record<string, number>;
  /** Requests with no backend's answer: a Switchyard error response (no `x-backend`), a reset, a refused connect. */
  failed: number;
  /** The first few failures, for a test's message. */
  errors: string[];
}

/** Options of `httpRequests` / `tcpConnections`. */
export interface TrafficOptions {
  /** How many at once. Default 4. */
  concurrency?: number;
  /** HTTP: path (default `/`), method (default GET), extra headers. */
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  /** Give up on one request after this long. Default 10000. */
  timeoutMs?: number;
}

/** Run `one(i)` `n` times, `concurrency` at once. */
async function pool(n: number, concurrency: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await one(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker));
}

function result(n: number): TrafficResult {
  return { sent: n, byBackend: {}, statuses: {}, failed: 0, errors: [] };
}

const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

function failed(r: TrafficResult, why: string): void {
  r.failed++;
  if (r.errors.length < 5) r.errors.push(why);
}

/** `n` HTTP requests to `host:port`. */
export async function httpRequests(host: string, port: number, n: number, options: TrafficOptions = {}): Promise<TrafficResult> {
  const r = result(n);
  await pool(n, options.concurrency ?? 4, () =>
    new Promise<void>((resolve) => {
      const req = http.request(
        { host, port, path: options.path ?? '/', method: options.method ?? 'GET', agent: false, headers: { connection: 'close', ...options.headers }, timeout: options.timeoutMs ?? 10_000 },
        (res) => {
          res.resume();
          res.once('end', () => {
            bump(r.statuses, String(res.statusCode));
            const id = res.headers[BACKEND_HEADER];
            if (typeof id === 'string') bump(r.byBackend, id);
            else failed(r, `HTTP ${res.statusCode} from Switchyard (no ${BACKEND_HEADER})`);
            resolve();
          });
          res.once('error', (e) => (failed(r, e.message), resolve()));
        },
      );
      req.once('timeout', () => req.destroy(new Error('timed out')));
      req.once('error', (e) => (failed(r, e.message), resolve()));
      req.end();
    }),
  );
  return r;
}

/** `n` TCP connections to `host:port`, each closed once the backend's first line arrived. */
export async function tcpConnections(host: string, port: number, n: number, options: TrafficOptions = {}): Promise<TrafficResult> {
  const r = result(n);
  await pool(n, options.concurrency ?? 4, () =>
    new Promise<void>((resolve) => {
      const s = net.connect({ host, port });
      let buf = '';
      let done = false;
      const finish = (why?: string) => {
        if (done) return;
        done = true;
        if (why !== undefined) failed(r, why);
        s.destroy();
        resolve();
      };
      s.setTimeout(options.timeoutMs ?? 10_000, () => finish('timed out'));
      s.on('data', (d: Buffer) => {
        buf += d.toString();
        const i = buf.indexOf('\n');
        if (i < 0) return;
        bump(r.byBackend, buf.slice(0, i));
        finish();
      });
      s.once('end', () => finish('closed before a line'));
      s.once('error', (e) => finish(e.message));
    }),
  );
  return r;
}
