/**
 * The fleet's shared health view (`etcd.shared_health`, off by default). Each node publishes its
 * own active-check verdicts under `PREFIX/POOL/ADDRESS/NODE` (value `up` or `down`), attached to a
 * lease kept alive while the node runs — a dead node's verdicts expire with its lease — and
 * watches everyone's. The verdict a node gives its data plane is the fleet's majority: a backend
 * down on more than half of the nodes that have a verdict is down everywhere, up on more than
 * half is up everywhere; on a tie the node's own verdict stands. So a node that cannot reach a
 * backend the others can (a local network problem) keeps sending it traffic, and a backend most
 * nodes see failing is avoided by all of them at once. While etcd is unreachable the last votes
 * held stand; a lease lost (an outage longer than its TTL) is replaced and the own verdicts are
 * published again.
 */
import { Etcd3, type Lease, type Watcher } from 'etcd3';
import type { Logger } from '../log.js';
import { ETCD_DEFAULTS } from './defaults.js';
import type { ResolvedSharedHealth } from './types.js';

/** One backend's verdict to apply to the data plane. */
export interface FleetVerdict {
  pool: string;
  address: string;
  up: boolean;
  /** Why, e.g. `fleet: down on 2 of 3 nodes (this node: up)`. */
  reason: string;
}

const id = (pool: string, address: string) => `${encodeURIComponent(pool)}/${encodeURIComponent(address)}`;

/** The majority of `votes` (node → up); a tie or no votes: `own`. */
export function majority(votes: ReadonlyMap<string, boolean>, own: boolean | undefined): boolean | undefined {
  let up = 0;
  for (const v of votes.values()) if (v) up++;
  const down = votes.size - up;
  if (up * 2 > votes.size) return true;
  if (down * 2 > votes.size) return false;
  return own;
}

/** Publishing this node's verdicts and combining everyone's. */
export class SharedHealth {
  readonly #settings: ResolvedSharedHealth;
  readonly #client: Etcd3;
  readonly #log: Logger;
  readonly #apply: (verdicts: FleetVerdict[]) => void;
  #lease: Lease | undefined;
  #watcher: Watcher | undefined;
  /** Votes by backend id, then node. */
  readonly #votes = new Map<string, Map<string, boolean>>();
  /** This node's own verdicts, by backend id. */
  readonly #own = new Map<string, { pool: string; address: string; up: boolean }>();
  /** What the data plane was last given, by backend id. */
  readonly #applied = new Map<string, boolean>();
  #stopped = false;

  constructor(endpoints: string[], settings: ResolvedSharedHealth, log: Logger, apply: (verdicts: FleetVerdict[]) => void) {
    this.#settings = settings;
    this.#client = new Etcd3({ hosts: endpoints, dialTimeout: ETCD_DEFAULTS.dial_timeout_ms });
    this.#log = log;
    this.#apply = apply;
  }

  /** List the votes, then watch them; publish under a fresh lease. Failures are logged and retried. */
  async start(): Promise<void> {
    this.#newLease();
    try {
      const res = await this.#client.getAll().prefix(this.#settings.prefix).exec();
      for (const kv of res.kvs) this.#vote(kv.key.toString(), kv.value.toString());
      this.#watcher = await this.#client.watch().prefix(this.#settings.prefix).startRevision(String(Number(res.header.revision) + 1)).create();
    } catch (err) {
      this.#log('etcd.shared_health_failed', { prefix: this.#settings.prefix, error: err instanceof Error ? err.message : String(err), retry_ms: ETCD_DEFAULTS.relist_ms }, 'warn');
      if (!this.#stopped) setTimeout(() => void this.start(), ETCD_DEFAULTS.relist_ms).unref();
      return;
    }
    if (this.#stopped) return void this.#watcher.cancel().catch(() => {});
    this.#watcher.on('put', (kv) => this.#changed(this.#vote(kv.key.toString(), kv.value.toString())));
    this.#watcher.on('delete', (kv) => this.#changed(this.#vote(kv.key.toString(), null)));
    this.#watcher.on('error', (err) => {
      this.#log('etcd.watch_cancelled', { prefix: this.#settings.prefix, error: err.message }, 'warn');
      void this.#watcher?.cancel().catch(() => {});
      this.#watcher = undefined;
      if (!this.#stopped) setTimeout(() => void this.start(), ETCD_DEFAULTS.relist_ms).unref();
    });
    this.#changed([...this.#votes.keys()]);
  }

  /** This node's own check verdicts changed: publish them and apply the fleet's view of them. */
  local(changes: { pool: string; address: string; up: boolean }[]): void {
    for (const c of changes) {
      const key = id(c.pool, c.address);
      this.#own.set(key, { pool: c.pool, address: c.address, up: c.up });
      this.#publish(key, c.up);
    }
    this.#changed(changes.map((c) => id(c.pool, c.address)));
  }

  /** Stop watching, revoke the lease (this node's votes disappear at once) and close the client. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watcher?.cancel().catch(() => {});
    await this.#lease?.revoke().catch(() => {});
    this.#client.close();
  }

  #newLease(): void {
    const lease = this.#client.lease(Math.max(1, Math.round(this.#settings.ttl_ms / 1000)), { autoKeepAlive: true });
    this.#lease = lease;
    lease.on('lost', (err) => {
      if (this.#stopped || this.#lease !== lease) return;
      this.#log('etcd.lease_lost', { error: err.message, republished: this.#own.size }, 'warn');
      this.#newLease();
      for (const [key, v] of this.#own) this.#publish(key, v.up);
    });
  }

  #publish(key: string, up: boolean): void {
    void this.#lease
      ?.put(`${this.#settings.prefix}${key}/${encodeURIComponent(this.#settings.node)}`)
      .value(up ? 'up' : 'down')
      .catch((err: unknown) => this.#log('etcd.publish_failed', { key, error: err instanceof Error ? err.message : String(err) }, 'warn'));
  }

  /** Record a vote from its etcd key (`null`: withdrawn); returns the backend ids it touches. */
  #vote(etcdKey: string, value: string | null): string[] {
    const rest = etcdKey.slice(this.#settings.prefix.length).split('/');
    if (rest.length !== 3) return [];
    const [pool, address, node] = rest as [string, string, string];
    const key = `${pool}/${address}`;
    const votes = this.#votes.get(key) ?? new Map<string, boolean>();
    if (value === 'up' || value === 'down') votes.set(decodeURIComponent(node), value === 'up');
    else votes.delete(decodeURIComponent(node));
    this.#votes.set(key, votes);
    return [key];
  }

  /** Apply the fleet's verdict of each backend in `keys` that this node checks, where it changed. */
  #changed(keys: string[]): void {
    if (this.#stopped) return;
    const out: FleetVerdict[] = [];
    for (const key of new Set(keys)) {
      const own = this.#own.get(key);
      if (!own) continue;
      // This node's vote is its current verdict, whether or not etcd has it yet.
      const votes = new Map(this.#votes.get(key) ?? []);
      votes.set(this.#settings.node, own.up);
      const up = majority(votes, own.up)!;
      if (this.#applied.get(key) === up) continue;
      this.#applied.set(key, up);
      const agree = [...votes.values()].filter((v) => v === up).length;
      const reason = up === own.up ? `${up ? 'up' : 'down'} on ${agree} of ${votes.size} nodes` : `fleet: ${up ? 'up' : 'down'} on ${agree} of ${votes.size} nodes (this node: ${own.up ? 'up' : 'down'})`;
      out.push({ pool: own.pool, address: own.address, up, reason });
    }
    if (out.length) this.#apply(out);
  }
}
