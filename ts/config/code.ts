/**
 * What a JS/TS configuration module may export besides its configuration: `hooks` (functions
 * by name, for the `hook` of routes and policy rules) and `policies` (control loops), so
 * `switchyard start -c switchyard.config.ts` runs the policy written in code without a program
 * of one's own. They are read once, when the balancer starts (an upgrade's new process reads
 * them again); a reload changes the configuration only.
 */
import { extname, resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from '../errors.js';
import type { HookFn } from '../hooks/types.js';
import type { Policy } from '../policy/types.js';
import { NAME_PATTERN } from './fields.js';
import { importModule } from './load.js';

/** A configuration module's code exports. */
export interface ConfigCode {
  hooks?: Record<string, HookFn>;
  policies?: Policy[];
}

const NAME = new RegExp(NAME_PATTERN);
const CODE_EXTS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

/**
 * The `hooks` and `policies` exports of configuration module `path` ({} for YAML and JSON
 * files, and for modules that export neither).
 * @throws ConfigError naming the file and the export when one is not what it should be
 */
export async function loadConfigCode(path: string): Promise<ConfigCode> {
  const ext = extname(path).toLowerCase();
  if (!CODE_EXTS.includes(ext)) return {};
  const abs = resolve(path);
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(abs, ext);
  } catch (err) {
    throw new ConfigError(path, [{ path: '(file)', message: `cannot evaluate ${abs}: ${err instanceof Error ? err.message : String(err)}` }]);
  }
  const issues: ConfigIssue[] = [];
  const out: ConfigCode = {};
  if (mod.hooks !== undefined) {
    const hooks = mod.hooks;
    if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) issues.push({ path: 'hooks', message: 'expected an object of hook name → function (export const hooks = { tenant: (req) => ({ pool: "api" }) })' });
    else {
      for (const [name, fn] of Object.entries(hooks)) {
        if (!NAME.test(name)) issues.push({ path: `hooks.${name}`, message: 'invalid hook name (expected 1-64 characters of A-Z a-z 0-9 _ . -)' });
        else if (typeof fn !== 'function') issues.push({ path: `hooks.${name}`, message: `expected a function, got ${typeof fn}` });
      }
      out.hooks = hooks as Record<string, HookFn>;
    }
  }
  if (mod.policies !== undefined) {
    const policies = mod.policies;
    if (!Array.isArray(policies)) issues.push({ path: 'policies', message: 'expected a list of control loops (export const policies = [canary({ ... })])' });
    else {
      policies.forEach((p: unknown, i) => {
        if (typeof p !== 'object' || p === null || typeof (p as Policy).name !== 'string') issues.push({ path: `policies[${i}]`, message: 'expected a policy object with a name (see definePolicy)' });
      });
      out.policies = policies as Policy[];
    }
  }
  if (issues.length > 0) throw new ConfigError(path, issues);
  return out;
}
