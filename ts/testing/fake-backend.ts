/**
 * Fake backends for tests: real HTTP or TCP servers on 127.0.0.1 whose behaviour can be switched
 * while traffic flows — answer, delay, answer 5xx (HTTP), reset, refuse (the port closed).
 *
 * An HTTP fake answers `200` with the body `<id>\n` and the header `x-backend: <id>` (5xx answers
 * carry the header too, so traffic is attributed). A TCP fake writes `<id>\n` and then echoes.
 * The public types use no Node.js types, so the kit's declarations need no `@types/node`.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** What a fake backend does with the next request (HTTP) or connection (TCP). */
export type Behaviour =
  | { mode: 'answer' }
  | { mode: 'delay'; ms: number }
  | { mode: 'fail'; status: number }
  | { mode: 'reset' }
  | { mode: 'refuse' };

/** The header an HTTP fake names itself in. */
export const BACKEND_HEADER = 'x-backend';

/** A fake backend (see the module doc). Switching behaviour affects requests that arrive afterwards. */
export interface FakeBackend {
  readonly id: string;
  readonly protocol: 'http' | 'tcp';
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly port: number;
  /** Requests (HTTP) or connections (TCP) that reached it. */
  readonly hits: number;
  readonly behaviour: Behaviour;
  /** Answer normally (re-listening on the same port after `refuse`). */
  answer(): Promise<void>;
  /** Answer after `ms` milliseconds. */
  delay(ms: number): Promise<void>;
  /** HTTP: answer `status` (default 500). TCP: close at once without a byte. */
  fail(status?: number): Promise<void>;
  /** Reset each connection (RST) as soon as it is accepted (HTTP: when a request arrives). */
  reset(): Promise<void>;
  /** Stop listening and close every open connection: connects are refused. */
  refuse(): Promise<void>;
  /** Switch to `behaviour` (what the methods above do). */
  set(behaviour: Behaviour): Promise<void>;
  /** Stop for good. */
  close(): Promise<void>;
}

/** Options of `fakeBackend`. */
export interface FakeBackendOptions {
  /** Listen on this port (default: a free one). */
  port?: number;
  /** Start with this behaviour (default answer). */
  behaviour?: Behaviour;
}

class Fake implements FakeBackend {
  hits = 0;
  behaviour: Behaviour = { mode: 'answer' };
  port = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #listening = false;
  #closed = false;

  constructor(
    readonly id: string,
    readonly protocol: 'http' | 'tcp',
  ) {
    this.#server = protocol === 'http' ? http.createServer((req, res) => this.#request(req, res)) : net.createServer({ allowHalfOpen: true }, (s) => this.#connection(s));
    this.#server.on('connection', (s: net.Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
      s.on('error', () => {});
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ port, host: '127.0.0.1', backlog: 1024 }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.#server.address() as AddressInfo).port;
    this.#listening = true;
  }

  async set(b: Behaviour): Promise<void> {
    if (this.#closed) throw new Error(`fake backend ${this.id} is closed`);
    this.behaviour = b;
    if (b.mode === 'refuse' && this.#listening) await this.#stop();
    else if (b.mode !== 'refuse' && !this.#listening) await this.listen(this.port);
  }

  answer = () => this.set({ mode: 'answer' });
  delay = (ms: number) => this.set({ mode: 'delay', ms });
  fail = (status = 500) => this.set({ mode: 'fail', status });
  reset = () => this.set({ mode: 'reset' });
  refuse = () => this.set({ mode: 'refuse' });

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#listening) await this.#stop();
  }

  /** Close the listening socket and every open connection; clear pending delays. */
  #stop(): Promise<void> {
    this.#listening = false;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    return new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const s of this.#sockets) s.destroy();
    });
  }

  /** Run `f` after the current delay (at once when not delaying). */
  #later(f: () => void): void {
    const b = this.behaviour;
    if (b.mode !== 'delay') return f();
    const t = setTimeout(() => {
      this.#timers.delete(t);
      f();
    }, b.ms);
    this.#timers.add(t);
  }

  #request(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.hits++;
    const b = this.behaviour;
    if (b.mode === 'reset') return req.socket.resetAndDestroy() as unknown as void;
    req.resume();
    req.once('end', () =>
      this.#later(() => {
        if (res.destroyed) return;
        res.writeHead(b.mode === 'fail' ? b.status : 200, { [BACKEND_HEADER]: this.id, 'content-type': 'text/plain' });
        res.end(`${this.id}\n`);
      }),
    );
  }

  #connection(s: net.Socket): void {
    this.hits++;
    const b = this.behaviour;
    if (b.mode === 'reset') return s.resetAndDestroy() as unknown as void;
    if (b.mode === 'fail') return s.end() as unknown as void;
    this.#later(() => {
      if (s.destroyed) return;
      s.write(`${this.id}\n`);
      s.pipe(s);
    });
  }
}

/** Start a fake HTTP or TCP backend named `id` on 127.0.0.1. */
export async function fakeBackend(id: string, protocol: 'http' | 'tcp' = 'http', options: FakeBackendOptions = {}): Promise<FakeBackend> {
  const f = new Fake(id, protocol);
  await f.listen(options.port ?? 0);
  if (options.behaviour) await f.set(options.behaviour);
  return f;
}
