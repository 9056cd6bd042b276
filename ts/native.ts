/**
 * Loads the Rust addon through the loader napi-rs generates (`native/index.cjs`),
 * which picks `switchyard.<platform>.node` and reports clearly when none fits.
 * This module is the only place that touches the addon.
 */
import { createRequire } from 'node:module';

/** The surface of `crates/switchyard-node` (see its `lib.rs`). */
export interface NativeEngine {
  update(configJson: string): void;
  addresses(): string;
  stats(): string;
  close(drainMs: number): Promise<void>;
}

interface NativeModule {
  NativeEngine: { start(configJson: string): NativeEngine };
}

const require = createRequire(import.meta.url);
let cached: NativeModule | undefined;

/** The addon, loaded on first use (so `validate` and `--help` work without it). */
export function native(): NativeModule {
  cached ??= require('../native/index.cjs') as NativeModule;
  return cached;
}
