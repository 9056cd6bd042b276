/**
 * `switchyard start --watch`: reload when the configuration file's content
 * changes. The directory is watched, not the file: editors and tools that
 * write a temporary file and rename it over the old one (vim, `sed -i`,
 * Kubernetes' ConfigMap symlink swap) replace the inode a file watch would
 * hold. Events are debounced, then the file's SHA-256 is compared with the
 * last one seen, so a save without a change, or a burst of writes, reloads
 * at most once.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../log.js';

/** Quiet time after the last event before the file is read: a write in several chunks reloads once. */
export const WATCH_DEBOUNCE_MS = 200;

/** The file's content hash, or null while it does not exist (mid-rename, say). */
function hashOf(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}

/** A running watch; `close` stops it. */
export interface ConfigWatch {
  close(): void;
}

/**
 * Call `onChange` whenever `file`'s content differs from what it was when the
 * watch started (or at the last call). The hash is taken now, synchronously:
 * start the watch before the balancer reads the file, and an edit made while it
 * starts is not missed. The watch does not keep the process alive.
 */
export function watchConfig(file: string, onChange: () => void, log: Logger): ConfigWatch {
  const path = resolve(file);
  const dir = dirname(path);
  let seen = hashOf(path);
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    const now = hashOf(path);
    // A missing file is a rename under way (or a deletion): wait for the next event.
    if (now === null) return;
    if (now === seen) return log('config.watch_unchanged', { file }, 'debug');
    seen = now;
    onChange();
  };
  const watcher: FSWatcher = watch(dir, { persistent: false }, () => {
    clearTimeout(timer);
    timer = setTimeout(check, WATCH_DEBOUNCE_MS);
    timer.unref();
  });
  watcher.on('error', (err) => log('config.watch_failed', { file, dir, error: err.message }));
  log('config.watch', { file, dir });
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
