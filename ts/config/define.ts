import type { SwitchyardConfig } from './types.js';

/**
 * Identity function for `switchyard.config.ts`: it does nothing at run time and
 * exists so editors type-check and complete the configuration object.
 */
export function defineConfig(c: SwitchyardConfig): SwitchyardConfig {
  return c;
}
