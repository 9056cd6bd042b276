/**
 * Test peers and utilities: real TCP servers in this process, clients that
 * hash what they send and receive, and polling with generous deadlines
 * (never sleeps as synchronisation — the CI box is a loaded 2-core machine).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Switchyard } from '../ts/index.js';
import type { Duration, SwitchyardConfig } from '../ts/index.js';

/** Poll with a deadline: the test kit's own (`switchyard-lb/testing`), shared by every spec. */
export { waitFor } from '../ts/testing/wait.js';

/** A TCP server on 127.0.0.1 (or another local address) with a free port. */
export interface Peer {
  server: net.Server;
  port: number;
  address: string;
  /** Sockets accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

/** Start a server whose connections are handled by `onConn` (on `port`, default any free one; on `host`, default 127.0.0.1). */
export async function peer(onConn: (s: net.Socket) => void, port = 0, host = '127.0.0.1'): Promise<Peer> {
  const sockets = new Set<net.Socket>();
  const p = { accepted: 0 } as Peer;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    p.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 4096 }, resolve);
  });
  p.server = server;
  p.port = (server.address() as AddressInfo).port;
  p.address = `${host}:${p.port}`;
  p.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return p;
}

/** Echo: every byte back, FIN passed back after the last one. */
export const echo = (): Promise<Peer> => peer((s) => s.pipe(s));

/** A connection handler that replies with `id\n` and keeps echoing afterwards. */
const answerTag = (id: string) => (s: net.Socket) => {
  s.write(`${id}\n`);
  s.pipe(s);
};

/** Replies with `id\n` and keeps echoing afterwards. */
export const tagged = (id: string, port = 0): Promise<Peer> => peer(answerTag(id), port);

/** `tagged` on another local address (a free port). */
export const taggedOn = (id: string, host: string): Promise<Peer> => peer(answerTag(id), 0, host);

/** A port with nothing listening (bound, then released). */
export async function refusedPort(): Promise<number> {
  // Above the kernel's ephemeral range, so no other test's `listen(0)` or outgoing connection can
  // be given this port between now and its use (a port freed inside the range was, once, taken by
  // another test's backend during a parallel run, and "refused" connects succeeded).
  const top = ephemeralTop();
  for (let tries = 0; tries < 200; tries++) {
    const port = top + 1 + Math.floor(Math.random() * (65535 - top));
    const p = await peer(() => {}, port).catch(() => null);
    if (!p) continue; // in use: try another
    await p.close();
    return p.port;
  }
  throw new Error(`no free port above ${top}`);
}

/** The highest port the kernel hands out on its own (Linux: ip_local_port_range). */
function ephemeralTop(): number {
  try {
    const [, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (hi && hi < 65000) return hi;
  } catch {
    // not Linux: fall through
  }
  return 61000;
}

/** Connect to `port` on 127.0.0.1 (half-open allowed). */
export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Collect everything `s` sends until it ends; resolves with the bytes' sha256 and length. */
export function drain(s: net.Socket): Promise<{ sha256: string; length: number; text: string }> {
  const h = createHash('sha256');
  let length = 0;
  let head = '';
  return new Promise((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      h.update(d);
      length += d.length;
      if (head.length < 4096) head += d.toString('latin1');
    });
    s.once('end', () => resolve({ sha256: h.digest('hex'), length, text: head }));
    s.once('error', reject);
  });
}

/**
 * Write `total` pseudo-random bytes in `chunk`-sized pieces, honouring
 * back-pressure; optionally end (FIN) afterwards. Resolves with their sha256.
 */
export async function send(s: net.Socket, total: number, opts: { chunk?: number; end?: boolean; pauseEvery?: number } = {}): Promise<string> {
  const chunk = opts.chunk ?? 256 * 1024;
  const block = randomBytes(chunk);
  const h = createHash('sha256');
  let sent = 0;
  let i = 0;
  while (sent < total) {
    const n = Math.min(chunk, total - sent);
    // Vary the bytes per chunk so reordering or duplication changes the hash.
    const piece = Buffer.from(block.subarray(0, n));
    piece.writeUInt32LE(i++ >>> 0, 0);
    h.update(piece);
    sent += n;
    if (!s.write(piece)) await new Promise((r) => s.once('drain', r));
    if (opts.pauseEvery && i % opts.pauseEvery === 0) await new Promise((r) => setImmediate(r));
  }
  if (opts.end) s.end();
  return h.digest('hex');
}

/** Read one line from `s` (the tagged backend's id). */
export function readLine(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) {
        s.off('data', onData);
        resolve(buf.slice(0, i));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.once('end', () => reject(new Error(`connection ended before a line (got ${JSON.stringify(buf)})`)));
  });
}

/** The id of the tagged backend that one new connection through `port` reaches (the connection is closed after). */
export async function tagThrough(port: number): Promise<string> {
  const s = await connect(port);
  try {
    return await readLine(s);
  } finally {
    s.destroy();
  }
}

/** Resolve when `s` is closed by the other side (end or reset). */
export function closedByPeer(s: net.Socket): Promise<'end' | 'error'> {
  return new Promise((resolve) => {
    s.once('end', () => resolve('end'));
    s.once('error', () => resolve('error'));
    s.resume();
  });
}

/** A one-listener, one-pool config in front of `backends`. */
export function simpleConfig(backends: string[], extra: { splice?: 'auto' | 'always' | 'never'; idle_timeout?: Duration; retries?: number; port?: number } = {}): SwitchyardConfig {
  return {
    workers: 2,
    listeners: {
      front: {
        address: `127.0.0.1:${extra.port ?? 0}`,
        pool: 'main',
        ...(extra.splice ? { splice: extra.splice } : {}),
        ...(extra.idle_timeout !== undefined ? { idle_timeout: extra.idle_timeout } : {}),
      },
    },
    pools: {
      main: {
        connect_timeout: '1s',
        ...(extra.retries !== undefined ? { retries: extra.retries } : {}),
        backends: backends.map((address) => ({ address })),
      },
    },
  };
}

/** Start a balancer for `config`; returns it and the front port. */
export async function startLb(config: SwitchyardConfig): Promise<{ lb: Switchyard; port: number }> {
  const lb = await Switchyard.start(config);
  return { lb, port: lb.address('front').port };
}

/** How many times each value occurs in `values` (e.g. the backend ids that answered). */
export const tally = (values: string[]): Record<string, number> => values.reduce<Record<string, number>>((m, v) => ((m[v] = (m[v] ?? 0) + 1), m), {});
