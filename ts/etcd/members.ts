/**
 * Keeps the backends of pools with `backends_from.etcd` current: each prefix is listed at a
 * revision R before the configuration is applied (an unreachable cluster is a configuration
 * error then), then watched from R + 1 — every change, in revision order, none missed — and only
 * the pools of a prefix whose members changed are replaced. A watch that etcd cancels (its start
 * revision was compacted) is recovered by listing again and watching from the new revision, never
 * by retrying the old one. While etcd is unreachable the client reconnects by itself and the
 * pools keep their last members: an etcd outage changes nothing that runs.
 */
import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import type { ConfigIssue } from '../errors.js';
import { ConfigError } from '../errors.js';
import type { ResolvedConfig } from '../config/types.js';
import type { DnsAnswer, DnsRecord } from '../dns/resolve.js';
import { expandPool, sourceKey, type Answers } from '../dns/expand.js';
import { applyAnswers, type SourceHost } from '../dns/apply.js';
import type { ResolvedDnsSource } from '../dns/types.js';
import { ETCD_DEFAULTS } from './defaults.js';
import type { ResolvedEtcd } from './types.js';
import { parseMember } from './values.js';
import { within } from './within.js';

/** One watched prefix: its members by etcd key, and the revision they are as of. */
interface Prefix {
  source: ResolvedDnsSource;
  members: Map<string, DnsRecord>;
  revision: number;
  watcher?: Watcher;
  relist?: NodeJS.Timeout;
  /** Set while the watch is disconnected (logged once per outage). */
  down?: boolean;
}

/** Every etcd source of `config`, by key. */
function sourcesOf(config: ResolvedConfig): Map<string, ResolvedDnsSource> {
  const out = new Map<string, ResolvedDnsSource>();
  for (const p of config.pools) for (const s of p.dns_sources ?? []) if (s.kind === 'etcd' && !out.has(sourceKey(s))) out.set(sourceKey(s), s);
  return out;
}

/** A prefix's members as an answer, in address order (the tables do not depend on it, the events do). */
function answerOf(members: Map<string, DnsRecord>): DnsAnswer {
  return { records: [...members.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)), ttl: 0 };
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Reading and watching the etcd prefixes of one balancer. */
export class EtcdMembers {
  #settings: ResolvedEtcd | undefined;
  #client: Etcd3 | undefined;
  #prefixes = new Map<string, Prefix>();
  #answers = new Map<string, DnsAnswer>();
  #host: SourceHost | undefined;
  #stopped = false;

  /**
   * `config` with every etcd prefix expanded, listing the prefixes not read yet (all of them
   * when the `etcd` settings changed). Nothing is kept when any read fails.
   * @throws ConfigError naming each failed prefix's field (`pools.api.backends_from.etcd`)
   */
  async resolve(config: ResolvedConfig, source: string): Promise<ResolvedConfig> {
    const sources = sourcesOf(config);
    if (sources.size === 0) return config;
    const settings = config.etcd!;
    const fresh = JSON.stringify(settings) !== JSON.stringify(this.#settings);
    const client = fresh ? new Etcd3({ hosts: settings.endpoints, dialTimeout: settings.dial_timeout_ms }) : this.#client!;
    const listed = new Map<string, Prefix>();
    const issues: ConfigIssue[] = [];
    await Promise.all(
      [...sources].filter(([key]) => fresh || !this.#prefixes.has(key)).map(async ([key, s]) => {
        try {
          listed.set(key, { source: s, ...(await this.#list(client, s, settings.dial_timeout_ms)) });
        } catch (err) {
          issues.push({ path: s.path, message: `cannot read etcd prefix ${JSON.stringify(s.name)} from ${settings.endpoints.join(', ')}: ${message(err)}` });
        }
      }),
    );
    if (issues.length > 0) {
      if (fresh) client.close();
      throw new ConfigError(source, issues);
    }
    if (fresh) {
      for (const key of [...this.#prefixes.keys()]) this.#forget(key);
      this.#client?.close();
      this.#client = client;
      this.#settings = settings;
    }
    for (const [key, p] of listed) {
      this.#prefixes.set(key, p);
      this.#answers.set(key, answerOf(p.members));
    }
    return this.expand(config);
  }

  /** `config` with its etcd prefixes expanded from the members held now (no read). */
  expand(config: ResolvedConfig): ResolvedConfig {
    if (!config.pools.some((p) => p.dns_sources?.some((s) => s.kind === 'etcd'))) return config;
    return { ...config, pools: config.pools.map((p) => expandPool(p, this.#answers)) };
  }

  /** Start watching the prefixes of the host's declared configuration. */
  start(host: SourceHost): void {
    this.#host = host;
    this.sync(host.declared());
  }

  /** A new declared configuration is in force: watch its prefixes, forget the others. */
  sync(declared: ResolvedConfig): void {
    if (this.#stopped || !this.#host) return;
    const sources = sourcesOf(declared);
    for (const key of [...this.#prefixes.keys()]) if (!sources.has(key)) this.#forget(key);
    for (const [key, p] of this.#prefixes) if (!p.watcher && !p.relist) void this.#watch(key, p);
    if (sources.size === 0 && this.#client) {
      this.#client.close();
      this.#client = undefined;
      this.#settings = undefined;
    }
  }

  /** Stop watching; the client is closed. */
  stop(): void {
    this.#stopped = true;
    for (const key of [...this.#prefixes.keys()]) this.#forget(key);
    this.#client?.close();
    this.#client = undefined;
  }

  /** List `s`'s prefix: its members and the revision they are as of. Bad values are logged and skipped. */
  async #list(client: Etcd3, s: ResolvedDnsSource, timeoutMs: number): Promise<{ members: Map<string, DnsRecord>; revision: number }> {
    const res = await within(client.getAll().prefix(s.name).exec(), timeoutMs);
    const members = new Map<string, DnsRecord>();
    for (const kv of res.kvs) this.#put(s, members, kv);
    return { members, revision: Number(res.header.revision) };
  }

  /** Apply one put to `members`: a bad value is logged, and the key keeps the member it had. */
  #put(s: ResolvedDnsSource, members: Map<string, DnsRecord>, kv: IKeyValue): void {
    const key = kv.key.toString();
    const parsed = parseMember(kv.value.toString());
    if (typeof parsed === 'string') {
      this.#host?.log('etcd.bad_value', { prefix: s.name, key, error: parsed, kept: members.get(key)?.address ?? null }, 'warn');
      return;
    }
    members.set(key, parsed);
  }

  /** Watch `p` from the revision after the one its members are as of. */
  async #watch(key: string, p: Prefix): Promise<void> {
    const client = this.#client;
    if (!client || this.#stopped) return;
    const host = this.#host!;
    let watcher: Watcher;
    try {
      watcher = await client.watch().prefix(p.source.name).startRevision(String(p.revision + 1)).create();
    } catch (err) {
      host.log('etcd.watch_failed', { prefix: p.source.name, error: message(err) }, 'warn');
      return this.#scheduleRelist(key, p);
    }
    if (this.#stopped || this.#prefixes.get(key) !== p) {
      void watcher.cancel().catch(() => {});
      return;
    }
    p.watcher = watcher;
    host.log('etcd.watching', { prefix: p.source.name, from_revision: p.revision + 1 }, 'debug');
    watcher.on('data', (res) => {
      if (this.#prefixes.get(key) !== p) return;
      const before: Answers = new Map(this.#answers);
      for (const e of res.events) {
        if (e.type === 'Put') this.#put(p.source, p.members, e.kv);
        else p.members.delete(e.kv.key.toString());
      }
      p.revision = Math.max(p.revision, Number(res.header.revision));
      this.#publish(key, p, before);
    });
    watcher.on('disconnected', (err) => {
      if (p.down) return;
      p.down = true;
      host.log('etcd.disconnected', { prefix: p.source.name, error: message(err), kept: [...p.members.values()].map((m) => m.address) }, 'warn');
    });
    watcher.on('connected', () => {
      if (!p.down) return;
      p.down = false;
      host.log('etcd.connected', { prefix: p.source.name, revision: p.revision });
    });
    // etcd cancelled the watch (e.g. its start revision was compacted): list again, watch anew.
    watcher.on('error', (err) => {
      host.log('etcd.watch_cancelled', { prefix: p.source.name, revision: p.revision, error: message(err) }, 'warn');
      if (p.watcher === watcher) p.watcher = undefined;
      void watcher.cancel().catch(() => {});
      this.#scheduleRelist(key, p);
    });
  }

  /** After a short pause, list `p`'s prefix again, apply what changed and watch from there. */
  #scheduleRelist(key: string, p: Prefix): void {
    if (this.#stopped || p.relist) return;
    p.relist = setTimeout(() => {
      p.relist = undefined;
      const client = this.#client;
      if (!client || this.#stopped || this.#prefixes.get(key) !== p) return;
      this.#list(client, p.source, this.#settings!.dial_timeout_ms).then(
        ({ members, revision }) => {
          if (this.#prefixes.get(key) !== p) return;
          const before: Answers = new Map(this.#answers);
          p.members = members;
          p.revision = revision;
          this.#publish(key, p, before);
          void this.#watch(key, p);
        },
        () => this.#scheduleRelist(key, p),
      );
    }, ETCD_DEFAULTS.relist_ms);
    p.relist.unref();
  }

  /** `p`'s members changed (maybe): apply them to the pools that use it. */
  #publish(key: string, p: Prefix, before: Answers): void {
    const answer = answerOf(p.members);
    if (JSON.stringify(before.get(key)) === JSON.stringify(answer)) return;
    this.#answers.set(key, answer);
    this.#host?.log('etcd.members', { prefix: p.source.name, revision: p.revision, members: answer.records.map((r) => r.address) });
    if (this.#host) applyAnswers(this.#host, key, before, this.#answers);
  }

  /** Stop watching `key` and drop what it held. */
  #forget(key: string): void {
    const p = this.#prefixes.get(key);
    if (!p) return;
    if (p.relist) clearTimeout(p.relist);
    if (p.watcher) void p.watcher.cancel().catch(() => {});
    this.#prefixes.delete(key);
    this.#answers.delete(key);
  }
}
