/**
 * A whole configuration from one etcd key (`switchyard start --etcd URL --etcd-key KEY`): its
 * value is the configuration as YAML or JSON. It is read and validated before the balancer
 * starts (a missing key or an invalid value is a configuration error, exit 2), then the key is
 * watched: each new value is validated and applied atomically like a reloaded file (runtime
 * states kept, one update); an invalid value changes nothing, is logged (`config.reload_failed`
 * with every issue) and shown by the admin API (`GET /api/config`) until a good value replaces it.
 * While etcd is unreachable the running configuration stays; the watch resumes after the last
 * revision seen, so no value is missed.
 */
import { Etcd3, type Watcher } from 'etcd3';
import { parse } from 'yaml';
import { parseConfigText } from '../config/load.js';
import type { SwitchyardConfig } from '../config/types.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import type { Logger } from '../log.js';
import { ETCD_DEFAULTS } from './defaults.js';
import { within } from './within.js';

/** What `GET /api/config` says about where the configuration comes from. */
export interface ConfigSourceStatus {
  kind: 'etcd';
  endpoints: string[];
  key: string;
  /** The etcd revision (mod_revision) of the value in force. */
  revision: number;
  /** When the value in force was applied, ISO 8601. */
  applied_at: string;
  /** The last value that was refused (and is not in force), or null. */
  last_error: { revision: number; at: string; message: string; issues: ConfigIssue[] } | null;
}

/** Validate `text` (YAML or JSON) as a configuration; errors carry lines and columns. */
function checkText(text: string, source: string): SwitchyardConfig {
  parseConfigText(text, 'yaml', source); // throws a located ConfigError
  return parse(text) as SwitchyardConfig;
}

/** One configuration key in etcd. */
export class EtcdConfigSource {
  readonly #client: Etcd3;
  readonly #endpoints: string[];
  readonly #key: string;
  #watcher: Watcher | undefined;
  #status: ConfigSourceStatus | undefined;
  #closed = false;
  #down = false;

  constructor(endpoints: string[], key: string) {
    this.#endpoints = endpoints;
    this.#key = key;
    this.#client = new Etcd3({ hosts: endpoints, dialTimeout: ETCD_DEFAULTS.dial_timeout_ms });
  }

  /** The label of this source in messages: `etcd:KEY`. */
  get source(): string {
    return `etcd:${this.#key}`;
  }

  /**
   * Read and validate the key.
   * @throws ConfigError when etcd does not answer, the key is missing, or the value is invalid
   */
  async load(timeoutMs = ETCD_DEFAULTS.dial_timeout_ms): Promise<{ config: SwitchyardConfig; revision: number }> {
    let res;
    try {
      res = await within(this.#client.get(this.#key).exec(), timeoutMs);
    } catch (err) {
      throw new ConfigError(this.source, [{ path: '(etcd)', message: `cannot read ${this.#key} from ${this.#endpoints.join(', ')}: ${err instanceof Error ? err.message : String(err)}` }]);
    }
    const kv = res.kvs[0];
    if (!kv) throw new ConfigError(this.source, [{ path: '(etcd)', message: `no key ${this.#key} in etcd (${this.#endpoints.join(', ')}): put the configuration there first` }]);
    const config = checkText(kv.value.toString(), this.source);
    const revision = Number(kv.mod_revision);
    this.#status = { kind: 'etcd', endpoints: this.#endpoints, key: this.#key, revision, applied_at: new Date().toISOString(), last_error: null };
    return { config, revision };
  }

  /** Where the configuration in force came from, and the last refused value. */
  status(): ConfigSourceStatus | undefined {
    return this.#status && structuredClone(this.#status);
  }

  /**
   * Watch the key from after the revision loaded; apply each valid new value with `apply`
   * (which throws when the balancer refuses it: the value is then recorded as refused).
   */
  async watch(apply: (config: SwitchyardConfig) => Promise<void>, log: Logger): Promise<void> {
    const from = this.#status!.revision;
    const watcher = await this.#client.watch().key(this.#key).startRevision(String(from + 1)).create();
    if (this.#closed) return void watcher.cancel().catch(() => {});
    this.#watcher = watcher;
    // One value at a time, in revision order: a newer value waits for the one being applied.
    let chain = Promise.resolve();
    watcher.on('put', (kv) => {
      chain = chain.then(() => this.#apply(kv.value.toString(), Number(kv.mod_revision), apply, log));
    });
    watcher.on('delete', () => log('config.source_deleted', { key: this.#key, kept: 'the running configuration' }, 'warn'));
    watcher.on('disconnected', (err) => {
      if (this.#down) return;
      this.#down = true;
      log('etcd.disconnected', { key: this.#key, error: err.message, kept: 'the running configuration' }, 'warn');
    });
    watcher.on('connected', () => {
      if (this.#down) log('etcd.connected', { key: this.#key });
      this.#down = false;
    });
    watcher.on('error', (err) => log('etcd.watch_failed', { key: this.#key, error: err.message }, 'error'));
  }

  async #apply(text: string, revision: number, apply: (config: SwitchyardConfig) => Promise<void>, log: Logger): Promise<void> {
    if (this.#closed) return;
    log('config.reload', { source: this.source, revision });
    try {
      await apply(checkText(text, this.source));
      this.#status = { ...this.#status!, revision, applied_at: new Date().toISOString(), last_error: null };
    } catch (err) {
      const issues = err instanceof ConfigError ? err.issues : [];
      const message = err instanceof Error ? err.message : String(err);
      this.#status = { ...this.#status!, last_error: { revision, at: new Date().toISOString(), message, issues } };
      log('config.reload_failed', { source: this.source, revision, error: message, issues, kept_revision: this.#status.revision }, 'error');
    }
  }

  /** Stop watching and close the client. */
  close(): void {
    this.#closed = true;
    void this.#watcher?.cancel().catch(() => {});
    this.#client.close();
  }
}
