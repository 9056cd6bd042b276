/**
 * Loads the Rust addon through the loader napi-rs generates (`native/index.cjs`,
 * typed by the generated and committed `native/index.d.cts`),
 * which picks `native/switchyard.<platform>.node` (shipped in a packed tarball or
 * built from source) or the per-platform package `switchyard-lb-<platform>` (an
 * optional dependency of the published package; napi-rs names it after the main
 * package, see `PACKAGE_NAME`). When neither loads, `native()`
 * throws one error that names the platform, architecture and libc, the glibc found
 * and the glibc the binary needs, and what to do.
 * This module is the only place that loads the addon; `engine.ts` beside it is
 * the only one that calls it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { SwitchyardError } from '../errors.js';
import type * as Addon from '../../native/index.cjs';

/** The addon's surface, as napi-rs declares it from `crates/switchyard-node`. */
export type NativeModule = typeof Addon;
/** A running engine of the addon (see `engine.ts` for the typed calls). */
export type NativeEngine = Addon.NativeEngine;
/** The new process's end of an upgrade's hand-over (see `handoff.ts`). */
export type NativeHandoffChild = Addon.NativeHandoffChild;

/**
 * The oldest glibc the published linux-gnu binaries may need. Binaries built on
 * Debian 12 need 2.34 (`objdump -T native/*.node`); the release workflow checks
 * every linux-gnu binary against this number, and a test checks the shipped one.
 */
export const MIN_GLIBC = '2.34';

/**
 * Platforms the release workflow builds a binary for (napi's platform names). Each one's
 * package is published when its build succeeds (linux-x64-gnu blocks the release; the
 * others are best-effort); `publishedPlatforms()` knows what an installed release has.
 */
export const PUBLISHED_PLATFORMS = [
  'linux-x64-gnu',
  'linux-x64-musl',
  'linux-arm64-gnu',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
] as const;

const require = createRequire(import.meta.url);

// This package's package.json, two levels up from both `ts/binding/` and `dist/binding/`.
const manifest = require('../../package.json') as { name: string; optionalDependencies?: Record<string, string> };

/**
 * The npm package's name (`switchyard-lb`). The per-platform packages are `<name>-<platform>`:
 * napi-rs derives them from this field when it generates the loader and the npm/ directories.
 */
export const PACKAGE_NAME = manifest.name;

/**
 * The platforms with a published binary: in an install from the registry, exactly the
 * platform packages its release pinned as optionalDependencies (napi prepublish pins only
 * those that built); a clone or a packed tarball pins none, so the release's build list.
 */
export function publishedPlatforms(pkg: { optionalDependencies?: Record<string, string> } = manifest): readonly string[] {
  const prefix = `${PACKAGE_NAME}-`;
  const pinned = Object.keys(pkg.optionalDependencies ?? {})
    .filter((d) => d.startsWith(prefix))
    .map((d) => d.slice(prefix.length));
  return pinned.length > 0 ? pinned : PUBLISHED_PLATFORMS;
}

let cached: NativeModule | undefined;

/** The addon, loaded on first use (so `validate` and `--help` work without it). */
export function native(): NativeModule {
  if (!cached) {
    try {
      cached = require('../../native/index.cjs') as NativeModule;
    } catch (err) {
      throw nativeLoadError(err);
    }
  }
  return cached;
}

/** What `native()` knows about the running system, for the error message. */
export interface HostInfo {
  platform: string;
  arch: string;
  /** `glibc` or `musl` on Linux, otherwise null. */
  libc: 'glibc' | 'musl' | null;
  /** The glibc version the process runs with (from `process.report`), if any. */
  glibcVersion: string | null;
}

/** Detects libc like the napi-generated loader: a glibc runtime version in the report means glibc. */
export function hostInfo(): HostInfo {
  const { platform, arch } = process;
  if (platform !== 'linux') return { platform, arch, libc: null, glibcVersion: null };
  let glibcVersion: string | null = null;
  let musl = false;
  try {
    const report = process.report?.getReport() as
      | { header?: { glibcVersionRuntime?: string }; sharedObjects?: string[] }
      | undefined;
    glibcVersion = report?.header?.glibcVersionRuntime ?? null;
    if (!glibcVersion) {
      musl = Array.isArray(report?.sharedObjects)
        ? report.sharedObjects.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))
        : false;
    }
  } catch {
    // no report available: fall back to the file check below
  }
  if (!glibcVersion && !musl) {
    try {
      musl = readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
    } catch {
      musl = false;
    }
  }
  return { platform, arch, libc: glibcVersion ? 'glibc' : musl ? 'musl' : null, glibcVersion };
}

/** napi's platform name for the host: `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, … */
export function platformName(host: HostInfo = hostInfo()): string {
  if (host.platform === 'linux') return `linux-${host.arch}-${host.libc === 'musl' ? 'musl' : 'gnu'}`;
  if (host.platform === 'win32') return `win32-${host.arch}-msvc`;
  return `${host.platform}-${host.arch}`;
}

/** The newest `GLIBC_x.y` version a binary references (its minimum glibc), or null. */
export function glibcNeededBy(file: string): string | null {
  try {
    const versions = readFileSync(file, 'latin1').match(/GLIBC_\d+(?:\.\d+)+/g) ?? [];
    return versions.map((v) => v.slice('GLIBC_'.length)).sort(compareVersions).pop() ?? null;
  } catch {
    return null;
  }
}

/** Numeric comparison of dotted versions (`2.9` < `2.34`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The binary the loader would pick for this host, if one is installed. */
function installedBinary(name: string): string | null {
  const local = new URL(`../../native/switchyard.${name}.node`, import.meta.url);
  if (existsSync(local)) return fileURLToPath(local);
  try {
    return require.resolve(`${PACKAGE_NAME}-${name}`);
  } catch {
    return null;
  }
}

/**
 * One error for "the addon did not load". The message carries the data plane's
 * `[SWITCHYARD_ERR_NATIVE_LOAD]` prefix so `fromNative` keeps the code when the
 * error passes through `Switchyard.start`.
 */
export function nativeLoadError(cause: unknown, host: HostInfo = hostInfo(), published: readonly string[] = publishedPlatforms()): SwitchyardError {
  const name = platformName(host);
  const binary = installedBinary(name);
  const needs = host.libc === 'glibc' || name.endsWith('-gnu') ? ((binary && glibcNeededBy(binary)) ?? MIN_GLIBC) : null;
  const libc =
    host.platform !== 'linux'
      ? 'n/a'
      : host.libc === 'glibc'
        ? `glibc ${host.glibcVersion}`
        : host.libc === 'musl'
          ? 'musl'
          : 'unknown (neither glibc nor musl detected)';
  const lines = [
    `[SWITCHYARD_ERR_NATIVE_LOAD] cannot load the Switchyard native addon for ${name}.`,
    `  platform: ${host.platform}, arch: ${host.arch}, libc: ${libc}`,
    binary
      ? `  binary: ${binary} (present, but it did not load)`
      : `  binary: none installed (looked for native/switchyard.${name}.node and the package ${PACKAGE_NAME}-${name})`,
  ];
  if (needs) lines.push(`  the linux-gnu binary needs glibc >= ${needs}; this system has ${host.glibcVersion ? `glibc ${host.glibcVersion}` : 'no glibc'}`);
  if (process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
    lines.push(`  NAPI_RS_NATIVE_LIBRARY_PATH=${process.env.NAPI_RS_NATIVE_LIBRARY_PATH} overrides the binary: unset it or fix the path`);
  }
  lines.push('  what to do:');
  if (host.libc === 'glibc' && host.glibcVersion && needs && compareVersions(host.glibcVersion, needs) < 0) {
    lines.push(`  - upgrade to a distribution with glibc >= ${needs} (Debian 12, Ubuntu 22.04, RHEL 9 or newer), or build from source (below)`);
  } else if (!published.includes(name)) {
    lines.push(`  - no prebuilt binary is published for ${name} (published: ${published.join(', ')}); build from source (below)`);
  } else if (!binary) {
    lines.push(
      `  - reinstall so npm installs the optional dependency ${PACKAGE_NAME}-${name}: remove node_modules and package-lock.json, then npm install`,
      '    (installs with --omit=optional, --no-optional or a lockfile made on another platform skip it)',
    );
  } else {
    lines.push(`  - reinstall ${PACKAGE_NAME}; if the error persists, report it with the loader lines below`);
  }
  lines.push('  - or build from source: install Rust >= 1.88 (https://rustup.rs), then in a clone of switchyard run npm install');
  lines.push(...causeLines(cause).map((l) => `  loader: ${l}`));
  return new SwitchyardError('SWITCHYARD_ERR_NATIVE_LOAD', lines.join('\n'), { cause });
}

/** The loader's attempts, in order: it chains each failed `require` through `cause`, newest outermost. */
function causeLines(err: unknown): string[] {
  const messages: string[] = [];
  for (let e: unknown = err, i = 0; e && i < 10; e = (e as { cause?: unknown }).cause, i++) {
    const m = e instanceof Error ? e.message : String(e);
    messages.push((m.split('\n')[0] ?? m).slice(0, 300));
  }
  if (messages.length === 0) return ['unknown error'];
  const [top, ...attempts] = messages;
  // The WebAssembly fallbacks are never published; their "not found" lines are noise.
  const real = attempts.reverse().filter((m) => !/wasi|wasm32/i.test(m));
  return real.length > 0 ? real : [top!];
}
