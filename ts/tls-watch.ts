/**
 * Certificate hot reload: watch every certificate, key and CA file the
 * configuration names; when one changes, the balancer re-applies its
 * configuration (re-reading the PEMs). New handshakes get the new
 * certificate; established sessions keep theirs. A broken file fails the
 * update in the data plane and the old certificates stay in force.
 */
import { unwatchFile, watchFile } from 'node:fs';
import type { ResolvedConfig } from './config/types.js';

/** Polling interval of the file watch (fs.watch misses atomic renames on some systems). */
const POLL_MS = 500;
/** Wait this long after a change so a cert and its key written one after the other reload once. */
const SETTLE_MS = 300;

/** Every TLS file of a configuration. */
export function tlsFiles(c: ResolvedConfig): string[] {
  const files = new Set<string>();
  for (const l of c.listeners) for (const x of l.tls?.certificates ?? []) files.add(x.cert).add(x.key);
  for (const p of c.pools) if (p.backend_tls?.ca) files.add(p.backend_tls.ca);
  return [...files];
}

/** Watches a set of files; calls `onChange` once per burst of changes. */
export class CertWatcher {
  #files: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #listener = (curr: { mtimeMs: number }, prev: { mtimeMs: number }) => {
    if (curr.mtimeMs === prev.mtimeMs) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.onChange, SETTLE_MS);
    this.#timer.unref();
  };

  constructor(private readonly onChange: () => void) {}

  /** Watch exactly `files` from now on. */
  sync(files: string[]): void {
    for (const f of this.#files) if (!files.includes(f)) unwatchFile(f, this.#listener);
    for (const f of files) if (!this.#files.includes(f)) watchFile(f, { interval: POLL_MS, persistent: false }, this.#listener);
    this.#files = files;
  }

  stop(): void {
    this.sync([]);
    clearTimeout(this.#timer);
  }
}
