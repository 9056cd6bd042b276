/**
 * The admin HTTP server: JSON API, `/metrics`, the dashboard and its event
 * stream, in front of a running balancer (an `AdminTarget`, such as a `Switchyard`).
 * Start it with `startAdmin`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { BindError } from '../errors.js';
import type { BackendEvent } from '../events.js';
import { silent, type Logger } from '../log.js';
import { Auth } from './auth.js';
import { AdminError, HEADER_LIMIT, answerClientError, errorBody, hasBody, readBody, readJson, sendJson, sendText } from './http.js';
import { ROUTES, matchPath, type Ctx, type Route } from './routes.js';
import { validate } from './schema.js';
import type { AdminTarget, Upgrader } from './target.js';
import { listenerViews, poolViews } from './view.js';

/** A running admin server. */
export interface AdminServer {
  address: { host: string; port: number; address: string };
  /** The listening socket's descriptor (to hand it to a new process in an upgrade), where Node exposes it. */
  fd(): number | null;
  /** Stop accepting (a new process accepts on the same socket now); open connections are still served until `close()`. */
  stopListening(): void;
  /** Stop listening, end live streams and close every connection. */
  close(): Promise<void>;
}

export type { Upgrader } from './target.js';

export interface AdminOptions {
  /** The file `POST /api/reload` re-reads. Without it reload answers 409 `no_config_file`. */
  configPath?: string;
  /** Receives `admin.started`, `admin.change` (what changed), `admin.stopped`. Default: silent. */
  logger?: Logger;
  /** Interval of the `stats` events of `/api/stream`, ms. Default 1000. */
  streamIntervalMs?: number;
  /** Serve on this inherited listening socket (an upgrade) instead of binding `admin.address`. */
  fd?: number;
  /** What `POST /api/upgrade` runs. Without it upgrade answers 409 `upgrade_unavailable`. */
  upgrade?: Upgrader;
}


function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  if (i < 0) throw new AdminError(500, 'internal', `admin address ${JSON.stringify(address)} has no port`);
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/** Why a bind failed, in words, for the errno codes `listen(2)` reports. */
const BIND_REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)',
  EADDRNOTAVAIL: 'address not available (not an address of this host)',
};

/** The admin socket could not bind: a `BindError` naming the config field, like a listener's. */
function bindError(address: string, err: NodeJS.ErrnoException): BindError {
  const reason = (err.code && BIND_REASONS[err.code]) ?? err.message;
  return new BindError('SWITCHYARD_ERR_BIND', `admin.address: cannot bind ${address}: ${reason}${err.code ? ` (${err.code})` : ''}`, { cause: err });
}

/** Paths of the routes that need no token. */
const PUBLIC_PATHS = new Set(ROUTES.filter((r) => r.public).map((r) => r.path));

/** The route for `method` on `path` (HEAD runs the GET route; Node then sends no body), or the methods the path allows. */
function findRoute(method: string, path: string): { route?: Route; params?: Record<string, string>; allowed: string[] } {
  const want = method === 'HEAD' ? 'GET' : method;
  const allowed: string[] = [];
  for (const r of ROUTES) {
    const params = matchPath(r.path, path);
    if (!params) continue;
    if (r.method === want) return { route: r, params, allowed };
    allowed.push(...(r.method === 'GET' ? ['GET', 'HEAD'] : [r.method]));
  }
  return { allowed };
}

/** Fan-out of the live stream: one timer and one balancer listener for every client. */
class StreamHub {
  readonly #clients = new Set<ServerResponse>();
  #timer: NodeJS.Timeout | undefined;
  readonly #onBackend = (e: BackendEvent) => this.#send('backend', e);

  constructor(
    private readonly lb: AdminTarget,
    private readonly intervalMs: number,
  ) {}

  add(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    this.#clients.add(res);
    res.on('close', () => this.#remove(res));
    if (this.#clients.size === 1) {
      this.lb.on('backend', this.#onBackend);
      this.#timer = setInterval(() => this.#tick(), this.intervalMs);
    }
    this.#write(res, 'stats', this.#snapshot());
  }

  #remove(res: ServerResponse): void {
    if (!this.#clients.delete(res) || this.#clients.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.lb.off('backend', this.#onBackend);
  }

  #snapshot(): unknown {
    try {
      return { time: Date.now(), listeners: listenerViews(this.lb), pools: poolViews(this.lb) };
    } catch (err) {
      return { time: Date.now(), error: (err as Error).message };
    }
  }

  #tick(): void {
    this.#send('stats', this.#snapshot());
  }

  #send(event: string, data: unknown): void {
    for (const res of this.#clients) this.#write(res, event, data);
  }

  #write(res: ServerResponse, event: string, data: unknown): void {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  close(): void {
    for (const res of [...this.#clients]) {
      res.end();
      this.#remove(res);
    }
  }
}

/**
 * Start the admin server for `lb` on `admin.address` (`host:port`; port 0 picks a free one).
 * With a token, every request needs `Authorization: Bearer <token>` (see `auth.ts` for the
 * dashboard cookie). Resolves when the socket is bound.
 */
export async function startAdmin(
  lb: AdminTarget,
  admin: { address: string; token: string | null },
  opts: AdminOptions = {},
): Promise<AdminServer> {
  const log = opts.logger ?? silent;
  const auth = new Auth(admin.token);
  const hub = new StreamHub(lb, opts.streamIntervalMs ?? 1000);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const method = req.method ?? 'GET';

    // The dashboard's one-time `?token=`: set the cookie and drop the token from the URL.
    if (method === 'GET' && url.pathname === '/' && url.searchParams.has('token') && auth.required) {
      if (!auth.matches(url.searchParams.get('token') ?? '')) throw new AdminError(401, 'unauthorized', 'wrong token');
      res.writeHead(303, { location: '/', 'set-cookie': auth.setCookie(false), 'cache-control': 'no-store', 'content-length': 0 });
      res.end();
      return;
    }
    // Probes (/healthz, /readyz: fixed paths) answer without a token; everything else, unknown
    // paths too, needs it, before anything about the path is revealed.
    if (!PUBLIC_PATHS.has(url.pathname) && !auth.allows(req)) {
      throw new AdminError(401, 'unauthorized', 'this admin server requires "Authorization: Bearer <token>"');
    }
    const { route, params, allowed } = findRoute(method, url.pathname);
    if (!route || !params) {
      if (allowed.length) {
        throw new AdminError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname} (allowed: ${allowed.join(', ')})`, undefined, { allow: allowed.join(', ') });
      }
      throw new AdminError(404, 'not_found', `no route ${method} ${url.pathname}`);
    }

    let body: unknown;
    if (route.body) {
      body = await readJson(req);
      const issues = validate(body, route.body);
      if (issues.length) {
        throw new AdminError(400, 'bad_request', `invalid request body: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
      }
    } else if (hasBody(req)) {
      // Bodies are ignored here, but still capped.
      await readBody(req);
    }

    const ctx: Ctx = {
      lb,
      req,
      res,
      params,
      query: url.searchParams,
      body,
      log,
      configPath: opts.configPath,
      upgrade: opts.upgrade,
      admin,
      subscribe: (r) => hub.add(r),
    };
    const reply = await route.handle(ctx);
    if (!reply) return;
    if ('json' in reply) sendJson(res, reply.status, reply.json);
    else sendText(res, reply.status, reply.contentType, reply.text);
  };

  const server = createServer({ maxHeaderSize: HEADER_LIMIT }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = err instanceof AdminError ? err : new AdminError(500, 'internal', err instanceof Error ? err.message : String(err));
      if (e.status === 500) log('admin.error', { method: req.method, path: req.url, message: e.message });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const headers: Record<string, string> = { ...e.headers };
      if (e.status === 401) headers['www-authenticate'] = 'Bearer realm="switchyard"';
      sendJson(res, e.status, errorBody(e), headers);
    });
  });
  // Requests the parser refuses never reach the handler; they still get a JSON error.
  server.on('clientError', answerClientError);
  server.keepAliveTimeout = 5_000;

  const { host, port } = splitHostPort(admin.address);
  await new Promise<void>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => reject(bindError(admin.address, err));
    server.once('error', fail);
    server.listen(opts.fd === undefined ? { host, port } : { fd: opts.fd }, () => {
      server.off('error', fail);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  log('admin.started', { address: shown, auth: auth.required ? 'bearer' : 'none', config: opts.configPath ?? null, ...(opts.fd === undefined ? {} : { inherited: true }) });

  let closing: Promise<void> | undefined;
  return {
    address: { host: bound.address, port: bound.port, address: shown },
    fd() {
      // Node keeps a listening socket's descriptor on its (undocumented, long-stable) handle.
      const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
      return typeof fd === 'number' && fd >= 0 ? fd : null;
    },
    stopListening() {
      // net.Server's close, not http.Server's: the latter also closes idle connections, and a
      // connection accepted just before the switch, its request not yet read, counts as idle:
      // its probe would fail. Requests on open connections are still answered here.
      if (server.listening) net.Server.prototype.close.call(server);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        hub.close();
        server.close(() => {
          log('admin.stopped', { address: shown });
          resolve();
        });
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
