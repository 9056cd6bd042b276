/**
 * Re-reading the configuration file of a running balancer on SIGHUP or on a
 * watched change (`switchyard start --watch`): one code path, so both log the
 * same lines: `config.reload` when it starts, then `config.reloaded` with what
 * changed, or `config.reload_failed` with the reason (the running configuration
 * stays in force).
 */
import type { ResolvedConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { configChanges } from './changes.js';

/** What a file reload needs of a balancer (`Switchyard` has it). */
export interface Reloadable {
  readonly config: ResolvedConfig;
  reload(path: string): Promise<void>;
}

/** What asked for the reload, logged as `trigger`. */
export type ReloadTrigger = 'signal' | 'watch';

/** Reloads one file into one balancer, one reload at a time (a signal during a watched reload waits its turn). */
export class FileReloader {
  #last: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  /** Reload after any reload under way; never rejects (a failure is logged). */
  reload(lb: Reloadable, trigger: ReloadTrigger): Promise<void> {
    this.#last = this.#last.then(() => this.#once(lb, trigger));
    return this.#last;
  }

  async #once(lb: Reloadable, trigger: ReloadTrigger): Promise<void> {
    const { file, log } = this;
    log('config.reload', { file, trigger });
    const before = lb.config;
    try {
      await lb.reload(file);
    } catch (err) {
      log('config.reload_failed', {
        file,
        trigger,
        error: err instanceof Error ? err.message : String(err),
        ...(err instanceof ConfigError ? { issues: err.issues } : {}),
      });
      return;
    }
    log('config.reloaded', { file, trigger, changes: configChanges(before, lb.config) });
  }
}
