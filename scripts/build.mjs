#!/usr/bin/env node
// Build step run by `npm install` / `npm ci` (the `prepare` script) and by `npm run build`.
//
// 1. The native addon: skipped when a prebuilt binary for this platform is
//    already in native/ (a packed tarball ships one); otherwise built with cargo
//    (`napi build --release`). Without cargo it stops with one clear message.
// 2. The TypeScript control plane: `tsc` into dist/.
//
// Flags: --force rebuilds the addon even when a binary exists.
// Env:   SWITCHYARD_DEBUG_BUILD=1 builds the addon without optimisations (faster to compile).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');

function platformSuffix() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const musl = (() => {
      try {
        return readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
      } catch {
        return false;
      }
    })();
    return `linux-${arch}-${musl ? 'musl' : 'gnu'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const binary = join(root, 'native', `switchyard.${platformSuffix()}.node`);
const haveBinary = existsSync(binary) && existsSync(join(root, 'native', 'index.cjs'));
if (force || !haveBinary) {
  let cargo = true;
  try {
    execFileSync('cargo', ['--version'], { stdio: 'ignore' });
  } catch {
    cargo = false;
  }
  if (!cargo) {
    const name = platformSuffix();
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).name;
    process.stderr.write(
      `switchyard: cannot build: ${force ? '--force rebuilds the native addon' : `no prebuilt native addon for ${name} (looked for native/switchyard.${name}.node and native/index.cjs)`}\n` +
        `  and no Rust toolchain (cargo) on PATH to build it from source.\n` +
        `  To get a binary, either:\n` +
        `  - install the published package instead of a clone: npm install ${pkg} (ships prebuilt binaries, no Rust needed), or\n` +
        `  - install Rust 1.88 or newer (https://rustup.rs) and run npm install again to build from source, or\n` +
        `  - copy native/index.cjs and native/switchyard.${name}.node from a packed ${pkg} tarball into native/.\n`,
    );
    process.exit(1);
  }
  const script = process.env.SWITCHYARD_DEBUG_BUILD === '1' ? 'build:native:debug' : 'build:native';
  process.stdout.write(`switchyard: building the native addon (${script}); the first build takes a few minutes\n`);
  run('npm', ['run', '-s', script]);
}
if (existsSync(join(root, 'node_modules', 'typescript'))) {
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
} else if (!existsSync(join(root, 'dist', 'index.js'))) {
  process.stderr.write('switchyard: dist/ is missing and typescript is not installed; run npm install with dev dependencies\n');
  process.exit(1);
}
