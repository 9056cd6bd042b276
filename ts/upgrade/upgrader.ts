/**
 * The `switchyard start` process's upgrade entry (`POST /api/upgrade`, SIGUSR2):
 * one upgrade at a time; after a successful one this process only drains
 * (its plain TCP connections already went over) and exits.
 */
import type { Logger } from '../log.js';
import type { Switchyard } from '../switchyard.js';
import { commandWith, ownCommand, replaceProcess, type ReplaceReport } from './replace.js';

/** An upgrade is already under way. */
export class UpgradeBusy extends Error {
  readonly code = 'upgrade_in_progress';
}

/** What the process does around an upgrade. */
export interface UpgraderOptions {
  /** The balancer, once started. */
  balancer: () => Promise<Switchyard>;
  log: Logger;
  /** After a successful upgrade: drain and exit (called once, after the answer went out). */
  retire: () => void;
}

/** An upgrade function for the admin API and the signal: `binary` replaces this process's own command. */
export function upgrader(o: UpgraderOptions): (options: { binary?: string }) => Promise<ReplaceReport> {
  let busy = false;
  return async ({ binary }) => {
    if (busy) throw new UpgradeBusy('an upgrade is already under way');
    busy = true;
    try {
      const report = await replaceProcess(await o.balancer(), { command: binary === undefined ? ownCommand() : commandWith(binary), log: o.log });
      setImmediate(o.retire);
      return report;
    } catch (err) {
      busy = false;
      throw err;
    }
  };
}
