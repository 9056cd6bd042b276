/**
 * Passive health for gRPC: calls are judged by their final grpc-status. UNKNOWN, INTERNAL,
 * UNAVAILABLE and DATA_LOSS count like a 5xx toward `passive.consecutive_5xx`; answers
 * (NOT_FOUND …) and the client's own deadline do not. Three real grpc-js backends behind an
 * h2c listener and an http2 pool, one real grpc-js client channel; the per-route
 * `grpc_statuses` are compared with what the client saw.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Switchyard } from '../ts/index.js';
import type { BackendEvent, BackendStats, SwitchyardConfig } from '../ts/index.js';
import { EchoClient, grpcPeer, type EchoRequest, type GrpcError, type GrpcPeer } from './fixtures/grpc-servers.js';
import { waitFor } from './helpers.js';

/** gRPC status codes the tests name. */
const OK = 0;
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;
const UNAVAILABLE = 14;

/** What the current test started, stopped after it whatever happened. */
const started = { lbs: [] as Switchyard[], peers: [] as GrpcPeer[], clients: [] as EchoClient[] };
afterEach(async () => {
  for (const c of started.clients) c.close();
  await Promise.all(started.lbs.map((lb) => lb.close({ drainMs: 0 })));
  await Promise.all(started.peers.map((p) => p.close()));
  Object.assign(started, { lbs: [], peers: [], clients: [] });
});

/** A running balancer with its backends, its events and a client channel on its h2c listener. */
interface Rig {
  lb: Switchyard;
  peers: GrpcPeer[];
  client: EchoClient;
  events: BackendEvent[];
  /** The pool's stats of `peer`. */
  stats(peer: GrpcPeer): BackendStats;
  /** The route's gRPC status counts, index = code. */
  grpcStatuses(): number[];
}

/**
 * Three grpc-js backends (`forced[i]` overrides what backend i answers) behind an h2c listener
 * whose pool speaks h2c to them, round robin, with `passive` settings (ejections last 60 s).
 */
async function rig(forced: EchoRequest[], passive: Record<string, unknown>): Promise<Rig> {
  const peers = await Promise.all(forced.map((f, i) => grpcPeer(`g${i + 1}`, f)));
  started.peers.push(...peers);
  const config = {
    workers: 2,
    listeners: { front: { address: '127.0.0.1:0', protocol: 'http', pool: 'grpc', http: { h2c: true } } },
    pools: { grpc: { http2: true, connect_timeout: '1s', passive: { ejection_time: '60s', ...passive }, backends: peers.map((p) => ({ address: p.address })) } },
  } as unknown as SwitchyardConfig;
  const lb = await Switchyard.start(config);
  started.lbs.push(lb);
  const events: BackendEvent[] = [];
  lb.on('backend', (e) => events.push(e));
  const client = new EchoClient(`127.0.0.1:${lb.address('front').port}`);
  started.clients.push(client);
  return {
    lb,
    peers,
    client,
    events,
    stats: (peer) => lb.stats().pools[0]!.backends.find((b) => b.address === peer.address)!,
    grpcStatuses: () => lb.stats().listeners[0]!.routes[0]!.grpc_statuses,
  };
}

/** One call's outcome as the client saw it. */
interface Outcome {
  code: number;
  details: string;
  /** The backend that answered (successful calls). */
  id?: string;
}

/** `n` unary calls one after another (so each is judged before the next is balanced). */
async function calls(client: EchoClient, n: number, req: EchoRequest = {}, deadlineMs?: number): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const reply = await client.unary(req, deadlineMs ? { deadline: Date.now() + deadlineMs } : {});
      out.push({ code: OK, details: '', id: reply.id });
    } catch (e) {
      const err = e as GrpcError;
      out.push({ code: err.code, details: err.details });
    }
  }
  return out;
}

/** The outcomes' codes counted like `grpc_statuses`: index = code, 17 entries. */
const byCode = (outcomes: Outcome[]): number[] => outcomes.reduce((counts, o) => ((counts[o.code] = (counts[o.code] ?? 0) + 1), counts), new Array<number>(17).fill(0));

/** `after` minus `before`, element by element. */
const minus = (after: number[], before: number[]): number[] => after.map((v, i) => v - (before[i] ?? 0));

describe('gRPC passive health: calls judged by their grpc-status', () => {
  it('a backend answering every call UNAVAILABLE is ejected after 3 (stats, an ejected event); the following calls all go to the other two and succeed', async () => {
    const { peers, client, events, stats, grpcStatuses } = await rig([{}, {}, { status: UNAVAILABLE, message: 'backend g3 is failing' }], { consecutive_5xx: 3 });
    const [g1, g2, bad] = peers;
    const first = await calls(client, 12);
    const failed = first.filter((o) => o.code !== OK);
    console.log('first 12 calls:', first.map((o) => o.id ?? o.code).join(' '));
    // Round robin: every third call reached g3 until its third UNAVAILABLE ejected it. The
    // backend answered, so the call is not retried: the client sees the backend's status.
    expect(failed).toEqual([0, 1, 2].map(() => ({ code: UNAVAILABLE, details: 'backend g3 is failing' })));
    expect(bad!.calls).toBe(3);
    expect(stats(bad!)).toMatchObject({ ejected: true, available: false });
    expect(stats(bad!).ejection_left_ms).toBeGreaterThan(0);
    const ejected = await waitFor(() => events.find((e) => e.kind === 'ejected' && e.address === bad!.address), 'an ejected event for g3');
    console.log('ejected event:', ejected);
    expect(ejected.pool).toBe('grpc');
    // Why: the three failed calls in a row (worded like HTTP 5xx, which they count as).
    expect(ejected.reason).toMatch(/3 in a row/);
    // Nobody else was ejected.
    expect(events.filter((e) => e.kind === 'ejected' && e.address !== bad!.address)).toEqual([]);

    const after = await calls(client, 30);
    expect(after.map((o) => o.code)).toEqual(after.map(() => OK));
    expect(bad!.calls).toBe(3);
    expect(after.filter((o) => o.id === 'g1')).toHaveLength(15);
    expect(after.filter((o) => o.id === 'g2')).toHaveLength(15);
    expect(g1!.calls + g2!.calls).toBe(9 + 30);
    for (const p of [g1!, g2!]) expect(stats(p)).toMatchObject({ ejected: false, available: true });
    // The route counted exactly the statuses the client saw.
    expect(grpcStatuses()).toEqual(byCode([...first, ...after]));
  });

  it('NOT_FOUND answers are not failures: a backend answering every call NOT_FOUND stays in and keeps its share', async () => {
    const { peers, client, events, stats, grpcStatuses } = await rig([{}, {}, { status: NOT_FOUND, message: 'no such widget' }], { consecutive_5xx: 3 });
    const bad = peers[2]!;
    const outcomes = await calls(client, 30);
    expect(outcomes.filter((o) => o.code === NOT_FOUND)).toHaveLength(10);
    expect(outcomes.filter((o) => o.code === OK)).toHaveLength(20);
    expect(bad.calls).toBe(10);
    expect(stats(bad)).toMatchObject({ ejected: false, available: true, failures: 0 });
    expect(events.filter((e) => e.kind === 'ejected')).toEqual([]);
    expect(grpcStatuses()).toEqual(byCode(outcomes));
  });

  it("the client's own DEADLINE_EXCEEDED is not a backend failure: 12 calls past their deadline (4 per backend in a row) eject nobody", async () => {
    const { peers, client, events, stats, grpcStatuses } = await rig([{}, {}, {}], { consecutive_5xx: 3 });
    const before = grpcStatuses();
    // Each backend holds the call 2 s; the client gives up after 100 ms (grpc-timeout, which
    // Switchyard also enforces).
    const late = await calls(client, 12, { hold_ms: 2_000 }, 100);
    expect(late.map((o) => o.code)).toEqual(late.map(() => DEADLINE_EXCEEDED));
    // Every backend got its four calls (so four deadlines in a row each).
    await waitFor(() => peers.every((p) => p.calls === 4), 'each backend to receive 4 calls');
    console.log('grpc_statuses after 12 late calls:', minus(grpcStatuses(), before));
    for (const p of peers) expect(stats(p)).toMatchObject({ ejected: false, available: true });
    expect(events.filter((e) => e.kind === 'ejected')).toEqual([]);
    // And all three serve the next calls.
    const next = await calls(client, 9);
    expect(next.map((o) => o.code)).toEqual(next.map(() => OK));
    expect(new Set(next.map((o) => o.id))).toEqual(new Set(['g1', 'g2', 'g3']));
  });

  it("a pool whose backends are all ejected: the next call gets UNAVAILABLE with Switchyard's message and reaches no backend", async () => {
    const failing = { status: UNAVAILABLE, message: 'backend is failing' };
    const { peers, client, stats, grpcStatuses } = await rig([failing, failing, failing], { consecutive_5xx: 3, max_ejection_percent: 100 });
    const first = await calls(client, 9);
    expect(first.map((o) => o.details)).toEqual(first.map(() => 'backend is failing'));
    for (const p of peers) expect(stats(p)).toMatchObject({ ejected: true, available: false });
    const [refused] = await calls(client, 1);
    // Switchyard's own answer (Refusal::NoBackend), not a backend's, and not an HTTP 503.
    expect(refused).toEqual({ code: UNAVAILABLE, details: 'no backend is available' });
    expect(peers.map((p) => p.calls)).toEqual([3, 3, 3]);
    expect(grpcStatuses()).toEqual(byCode([...first, refused!]));
  });
});
