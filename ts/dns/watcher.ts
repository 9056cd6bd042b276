/**
 * Keeps a balancer's DNS-named backends current: resolves every name before the
 * configuration is applied (a name that does not resolve is a configuration
 * error then), re-resolves each as its TTL runs out (clamped to `dns.min_ttl` ..
 * `dns.max_ttl`), and replaces only the pools whose address set changed. A name
 * that stops resolving keeps its last good addresses: a DNS outage must not
 * empty a pool.
 */
import type { ConfigIssue } from '../errors.js';
import { ConfigError } from '../errors.js';
import type { ResolvedConfig } from '../config/types.js';
import { DnsClient, DnsFailure, type DnsAnswer } from './resolve.js';
import { expandPool, sourceKey, type Answers } from './expand.js';
import { applyAnswers, type SourceHost } from './apply.js';
import type { ResolvedDns, ResolvedDnsSource } from './types.js';

/** What the watcher needs from the balancer. */
export type DnsHost = SourceHost;

/** Every DNS source of `config`, by key (the first declaration of a shared name stands for it;
 * etcd prefixes are `ts/etcd/members.ts`'s). */
function sourcesOf(config: ResolvedConfig): Map<string, ResolvedDnsSource> {
  const out = new Map<string, ResolvedDnsSource>();
  for (const p of config.pools) for (const s of p.dns_sources ?? []) if (s.kind !== 'etcd' && !out.has(sourceKey(s))) out.set(sourceKey(s), s);
  return out;
}

const sameAnswer = (a: DnsAnswer | undefined, b: DnsAnswer): boolean =>
  a !== undefined && JSON.stringify([...a.records].sort((x, y) => x.address.localeCompare(y.address))) === JSON.stringify([...b.records].sort((x, y) => x.address.localeCompare(y.address)));

/** Resolution and re-resolution of the names of one balancer. */
export class DnsWatcher {
  #settings: ResolvedDns | undefined;
  #client: DnsClient | undefined;
  /** The last good answer of every source. */
  #answers = new Map<string, DnsAnswer>();
  #sources = new Map<string, ResolvedDnsSource>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Sources whose last query failed (logged once per outage). */
  readonly #failing = new Set<string>();
  #host: DnsHost | undefined;
  #stopped = false;

  /**
   * `config` with every name expanded, resolving the names not answered yet (all of them when
   * the `dns` settings changed). Nothing is kept when any name fails.
   * @throws ConfigError naming each failed name's field (`pools.api.backends[1].address`)
   */
  async resolve(config: ResolvedConfig, source: string): Promise<ResolvedConfig> {
    const sources = sourcesOf(config);
    if (sources.size === 0) return config;
    const settings = config.dns!;
    const fresh = JSON.stringify(settings) !== JSON.stringify(this.#settings);
    const client = fresh ? new DnsClient(settings) : this.#client!;
    const answers = new Map(fresh ? [] : this.#answers);
    const issues: ConfigIssue[] = [];
    await Promise.all(
      [...sources].filter(([key]) => !answers.has(key)).map(async ([key, s]) => {
        try {
          answers.set(key, await client.lookup(s));
        } catch (err) {
          issues.push({ path: s.path, message: err instanceof DnsFailure ? err.message : String(err) });
        }
      }),
    );
    if (issues.length > 0) {
      if (fresh) client.cancel();
      throw new ConfigError(source, issues);
    }
    if (fresh) {
      this.#client?.cancel();
      this.#client = client;
      this.#settings = settings;
    }
    this.#answers = answers;
    return this.expand(config);
  }

  /** `config` with its names expanded from the answers held now (no query). */
  expand(config: ResolvedConfig): ResolvedConfig {
    if (!config.pools.some((p) => p.dns_sources)) return config;
    return { ...config, pools: config.pools.map((p) => expandPool(p, this.#answers)) };
  }

  /** Start re-resolving the names of the host's declared configuration. */
  start(host: DnsHost): void {
    this.#host = host;
    this.sync(host.declared());
  }

  /** A new declared configuration is in force: re-resolve its names, forget the others. */
  sync(declared: ResolvedConfig): void {
    if (this.#stopped || !this.#host) return;
    this.#sources = sourcesOf(declared);
    for (const [key, timer] of this.#timers) {
      if (this.#sources.has(key)) continue;
      clearTimeout(timer);
      this.#timers.delete(key);
      this.#answers.delete(key);
      this.#failing.delete(key);
    }
    for (const key of this.#sources.keys()) {
      const answer = this.#answers.get(key);
      if (!this.#timers.has(key)) this.#schedule(key, answer ? answer.ttl * 1000 : 0);
    }
  }

  /** Stop re-resolving; queries in flight are abandoned. */
  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#client?.cancel();
  }

  /** Query `key` again after its TTL, clamped to min_ttl..max_ttl. */
  #schedule(key: string, ttlMs: number): void {
    const { min_ttl_ms, max_ttl_ms } = this.#settings!;
    // Unref'd: the balancer's own timer keeps the process alive, not DNS.
    const timer = setTimeout(() => void this.#refresh(key), Math.min(Math.max(ttlMs, min_ttl_ms), max_ttl_ms));
    timer.unref();
    this.#timers.set(key, timer);
  }

  async #refresh(key: string): Promise<void> {
    const source = this.#sources.get(key);
    const client = this.#client;
    if (!source || !client || this.#stopped) return;
    let answer: DnsAnswer;
    try {
      answer = await client.lookup(source);
    } catch (err) {
      if (this.#stopped || this.#sources.get(key) !== source) return;
      if (!this.#failing.has(key)) {
        this.#failing.add(key);
        const kept = this.#answers.get(key)?.records.map((r) => r.address) ?? [];
        this.#host!.log('dns.resolve_failed', { name: source.name, error: err instanceof Error ? err.message : String(err), kept, retry_ms: this.#settings!.min_ttl_ms }, 'warn');
      }
      this.#schedule(key, 0);
      return;
    }
    // A reload may have replaced the source (or the settings) while the query ran.
    if (this.#stopped || this.#sources.get(key) !== source) return;
    if (this.#client !== client) return this.#schedule(key, 0);
    if (this.#failing.delete(key)) this.#host!.log('dns.resolved', { name: source.name, addresses: answer.records.map((r) => r.address) });
    const before = this.#answers.get(key);
    this.#schedule(key, answer.ttl * 1000);
    if (sameAnswer(before, answer)) {
      this.#answers.set(key, answer);
      return;
    }
    const old: Answers = new Map(this.#answers);
    this.#answers.set(key, answer);
    applyAnswers(this.#host!, key, old, this.#answers);
  }
}
