/**
 * Which configuration file a command uses when it is given none: the one named
 * by `SWITCHYARD_CONFIG`, else the first of a fixed list of names in the
 * working directory (the TS/JS names first, as `vite.config.ts` and friends).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The environment variable that names the configuration file. */
export const CONFIG_ENV = 'SWITCHYARD_CONFIG';

/** File names looked for in the working directory, in order. */
export const CONFIG_NAMES = ['switchyard.config.ts', 'switchyard.config.js', 'switchyard.yaml', 'switchyard.yml', 'switchyard.json'] as const;

/** The outcome of a search: the file to use, or what was looked for. */
export type Discovery = { file: string; via: 'env' | 'cwd' } | { file: null; tried: string[] };

/**
 * Find the configuration file to use when none was given.
 * A `SWITCHYARD_CONFIG` that names a missing file is still returned: loading it
 * then fails with a message naming that file, rather than silently using another.
 */
export function discoverConfig(cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): Discovery {
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv) return { file: fromEnv, via: 'env' };
  const tried = CONFIG_NAMES.map((name) => join(cwd, name));
  const file = tried.find((p) => existsSync(p));
  return file ? { file, via: 'cwd' } : { file: null, tried };
}

/** The error text when nothing was found, listing every place tried. */
export function notFoundMessage(tried: readonly string[]): string {
  return `no configuration file: none given with -c FILE, ${CONFIG_ENV} is not set, and none of these exists:\n${tried.map((p) => `  ${p}`).join('\n')}`;
}
