/**
 * The package's version, read from its `package.json` (one level above `ts/`
 * and `dist/`, so the same path works from the sources and the build).
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The `version` field of this package's `package.json`. */
export function packageVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}
