/**
 * `startKit`: a balancer in front of fake backends, on a `ManualClock`, with everything a test
 * of routing or of a control loop needs — drive traffic, switch a backend's behaviour, advance
 * the policies' clock, read weights, states and decisions, call the admin API — and one
 * `close()` that stops all of it (call it in `finally` / `afterEach`).
 *
 * The layout is fixed and small: one listener `front` (HTTP or TCP, `access_log` on so policies
 * see per-backend latency) over one pool `main`, one backend per id. With `file: true` the
 * configuration is written to a JSON file and the balancer started from it, so `reload()` is the
 * operator's reload (runtime weights are kept unless the file changes them).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Switchyard } from '../switchyard.js';
import type { Algorithm, BackendState, ListenerConfig, PoolConfig, SwitchyardConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { ManualClock } from '../policy/clock.js';
import type { Policy, PolicyDecision } from '../policy/types.js';
import { fakeBackend, type Behaviour, type FakeBackend } from './fake-backend.js';
import { httpRequests, tcpConnections, type TrafficOptions, type TrafficResult } from './traffic.js';
import { waitFor } from './wait.js';
import type { TraceQuery } from '../traces.js';
import type { KitTrace } from './traces.js';

/** One fake backend of a kit: its weight and first behaviour. */
export interface KitBackend {
  /** Default 1. */
  weight?: number;
  /** Default answer. */
  behaviour?: Behaviour;
}

/** Options of `startKit`. `Id`: the backend ids (inferred from `backends`). */
export interface KitOptions<Id extends string = string> {
  /** `http` (default) or `tcp`: the listener's protocol and the fakes'. */
  protocol?: 'http' | 'tcp';
  /** Backend ids (→ options): `{ a: {}, b: { weight: 3 } }` or `['a', 'b']`. */
  backends: Record<Id, KitBackend> | readonly Id[];
  /** Default round_robin. */
  algorithm?: Algorithm;
  /** More settings of pool `main` (passive detection, retries, …). */
  pool?: Omit<PoolConfig, 'backends' | 'algorithm'>;
  /** More settings of listener `front`. */
  listener?: Omit<ListenerConfig, 'address' | 'pool' | 'protocol'>;
  /** Policies to attach at start (`lb.use` works afterwards too). */
  policies?: Policy[];
  /** Run the admin API on a free loopback port (with a token); see `admin()`. Default false. */
  admin?: boolean;
  /** Start from a JSON file in a temporary directory, so `reload` re-reads it. Default false. */
  file?: boolean;
  /** Default 1. */
  workers?: number;
  logger?: Logger;
}

/** What an admin API call answered. */
export interface AdminReply {
  status: number;
  json: unknown;
  text: string;
}

/** A running kit (see the module doc). `Id`: its backend ids. */
export interface Kit<Id extends string = string> {
  readonly lb: Switchyard;
  /** The policies' clock: `await kit.clock.advance(ms)` runs their due ticks. */
  readonly clock: ManualClock;
  /** The fakes by id. */
  readonly backends: Record<Id, FakeBackend>;
  /** `host:port` of listener `front`. */
  readonly address: string;
  /** `http://host:port` of listener `front`. */
  readonly url: string;
  /** The pool's name (`main`). */
  readonly pool: string;
  /** The configuration as started (or as last reloaded). */
  readonly config: SwitchyardConfig;
  /** The configuration file, with `file: true`. */
  readonly file: string | undefined;
  /** `n` requests (HTTP) or connections (TCP); resolves once the balancer has counted them all. */
  send(n: number, options?: TrafficOptions): Promise<TrafficResult>;
  /** Move the policies' clock forward (each due tick runs and is awaited). */
  advance(ms: number): Promise<void>;
  /** The backend address of fake `id`. */
  addressOf(id: Id): string;
  /** Weights in force, by id. */
  weights(): Record<Id, number>;
  /** Operator states in force, by id. */
  states(): Record<Id, BackendState>;
  /** Policy decisions, oldest first, with the backend's id beside its address. */
  decisions(filter?: { policy?: string; action?: string }): (PolicyDecision & { id: Id | undefined })[];
  /**
   * Decision traces of the balancer (give listener `front` a `trace_sample`, or call
   * `lb.setTraceSample('front', 1)`), oldest first, with each backend's fake id beside its
   * address (`winner_id`, `candidates[].id`): check them with `assertTrace`.
   */
  traces(query?: TraceQuery): KitTrace[];
  /** With `file: true`: rewrite the file (after `change`, if given, edits the configuration) and reload it. */
  reload(change?: (config: SwitchyardConfig) => void): Promise<void>;
  /** GET (or another method) on the admin API with the kit's token (`admin: true`). */
  admin(path: string, init?: { method?: string; body?: unknown }): Promise<AdminReply>;
  /** Stop the balancer (no drain), the fakes and remove the temporary directory. Safe to call twice. */
  close(): Promise<void>;
}

const TOKEN = 'switchyard-test-kit-token';

function isIdList<Id extends string>(b: Record<Id, KitBackend> | readonly Id[]): b is readonly Id[] {
  return Array.isArray(b);
}

/** Start fakes and a balancer in front of them (see the module doc). On failure, whatever started is stopped. */
export async function startKit<Id extends string>(options: KitOptions<Id>): Promise<Kit<Id>> {
  const protocol = options.protocol ?? 'http';
  const list = options.backends;
  const specs: Record<string, KitBackend> = isIdList(list) ? Object.fromEntries(list.map((id) => [id, {}])) : list;
  const backends = {} as Record<Id, FakeBackend>;
  let lb: Switchyard | undefined;
  let dir: string | undefined;
  const stop = async () => {
    await lb?.close({ drainMs: 0 });
    await Promise.all(Object.values<FakeBackend>(backends).map((b) => b.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const [id, spec] of Object.entries(specs)) backends[id as Id] = await fakeBackend(id, protocol, spec.behaviour ? { behaviour: spec.behaviour } : {});
    let config: SwitchyardConfig = {
      workers: options.workers ?? 1,
      listeners: { front: { ...options.listener, address: '127.0.0.1:0', protocol, pool: 'main', access_log: options.listener?.access_log ?? true } },
      pools: {
        main: {
          connect_timeout: '1s',
          ...options.pool,
          algorithm: options.algorithm ?? 'round_robin',
          backends: Object.entries(specs).map(([id, spec]) => ({ address: backends[id as Id].address, weight: spec.weight ?? 1 })),
        },
      },
      ...(options.admin ? { admin: { address: '127.0.0.1:0', token: TOKEN } } : {}),
    };
    const clock = new ManualClock(Date.now());
    const start = { clock, policies: options.policies ?? [], ...(options.logger ? { logger: options.logger } : {}) };
    let file: string | undefined;
    if (options.file) {
      dir = await mkdtemp(join(tmpdir(), 'switchyard-kit-'));
      file = join(dir, 'switchyard.json');
      await writeFile(file, JSON.stringify(config, null, 2));
      lb = await Switchyard.fromFile(file, start);
    } else {
      lb = await Switchyard.start(config, start);
    }
    const running = lb;
    const front = running.address('front');
    const idOf = new Map(Object.entries<FakeBackend>(backends).map(([id, b]) => [b.address, id as Id]));
    const byId = <T>(value: (b: { address: string; weight: number; state: BackendState }) => T) => {
      const pool = running.config.pools.find((p) => p.name === 'main')!;
      return Object.fromEntries(pool.backends.map((b) => [idOf.get(b.address) ?? b.address, value(b)])) as Record<Id, T>;
    };
    let closing: Promise<void> | undefined;
    const kit: Kit<Id> = {
      lb: running,
      clock,
      backends,
      address: front.address,
      url: `http://${front.address}`,
      pool: 'main',
      get config() {
        return config;
      },
      file,
      async send(n, traffic = {}) {
        const r = protocol === 'http' ? await httpRequests(front.host, front.port, n, traffic) : await tcpConnections(front.host, front.port, n, traffic);
        // Counters and access records are final once the balancer has closed every client connection.
        await waitFor(() => running.stats().connections_active === 0, 'the balancer to close the test connections');
        return r;
      },
      advance: (ms) => clock.advance(ms),
      addressOf(id) {
        const b = backends[id];
        if (!b) throw new Error(`no fake backend "${id}" (ids: ${Object.keys(backends).join(', ')})`);
        return b.address;
      },
      weights: () => byId((b) => b.weight),
      states: () => byId((b) => b.state),
      decisions(filter = {}) {
        return running
          .policyDecisions(filter.policy ? { policy: filter.policy } : {})
          .filter((d) => !filter.action || d.action === filter.action)
          .map((d) => ({ ...d, id: idOf.get(d.address) }));
      },
      traces(query = {}) {
        return running.traces(query).map((t) => ({
          ...t,
          winner_id: t.winner === null ? undefined : idOf.get(t.winner),
          candidates: t.candidates.map((c) => ({ ...c, id: idOf.get(c.address) })),
        }));
      },
      async reload(change) {
        if (!file) throw new Error('kit.reload needs startKit({ file: true })');
        const next = structuredClone(config);
        change?.(next);
        await writeFile(file, JSON.stringify(next, null, 2));
        await running.reload(file);
        config = next;
      },
      async admin(path, init = {}) {
        const where = running.adminAddress();
        if (!where) throw new Error('kit.admin needs startKit({ admin: true })');
        const res = await fetch(`http://${where.address}${path}`, {
          method: init.method ?? 'GET',
          headers: { authorization: `Bearer ${TOKEN}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        });
        const text = await res.text();
        let json: unknown = undefined;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON (/metrics): `text` has it
        }
        return { status: res.status, json, text };
      },
      close: () => (closing ??= stop()),
    };
    return kit;
  } catch (err) {
    await stop();
    throw err;
  }
}
