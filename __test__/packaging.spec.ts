/**
 * Packaging: the release and CI workflows are valid and cover every published
 * platform; `npm pack` ships what users need and nothing else; a clone without a
 * binary or cargo stops with one clear message; the loader names the platform,
 * libc and glibc when no binary loads. The pack-and-install run itself is
 * scripts/pack-smoke.sh (in .ci/run).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { compareVersions, glibcNeededBy, MIN_GLIBC, nativeLoadError, platformName, PUBLISHED_PLATFORMS } from '../ts/binding/addon.js';

const root = join(import.meta.dirname, '..');
const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'switchyard-packaging-'));
  temps.push(d);
  return d;
}

/** A directory holding only `node`, so children run without cargo/rustc on PATH. */
function pathWithoutCargo(): string {
  const bin = join(tempDir(), 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  return bin;
}

// A parsed workflow file: untyped YAML that the tests walk and assert on.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Yaml = any;
interface Step {
  name?: string;
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  if?: string;
}

const TARGETS: Record<string, string> = {
  'linux-x64-gnu': 'x86_64-unknown-linux-gnu',
  'linux-x64-musl': 'x86_64-unknown-linux-musl',
  'linux-arm64-gnu': 'aarch64-unknown-linux-gnu',
  'darwin-x64': 'x86_64-apple-darwin',
  'darwin-arm64': 'aarch64-apple-darwin',
  'win32-x64-msvc': 'x86_64-pc-windows-msvc',
};

function readWorkflow(name: string): Yaml {
  const text = readFileSync(join(root, '.github', 'workflows', name), 'utf8');
  return parse(text, { strict: true, uniqueKeys: true });
}

function expectValidJobs(wf: Yaml): void {
  expect(typeof wf.name).toBe('string');
  expect(wf.on ?? wf[true as unknown as string]).toBeTruthy();
  expect(Object.keys(wf.jobs).length).toBeGreaterThan(0);
  for (const [id, job] of Object.entries<Yaml>(wf.jobs)) {
    expect(job['runs-on'], `jobs.${id}.runs-on`).toBeTruthy();
    expect(Array.isArray(job.steps) && job.steps.length > 0, `jobs.${id}.steps`).toBe(true);
    job.steps.forEach((step: Step, i: number) => {
      const where = `jobs.${id}.steps[${i}]${step.name ? ` (${step.name})` : ''}`;
      expect(typeof step.run === 'string' || typeof step.uses === 'string', `${where} has run or uses`).toBe(true);
      expect(step.run !== undefined && step.uses !== undefined, `${where} has both run and uses`).toBe(false);
      if (step.uses) expect(step.uses, `${where} pins a version`).toMatch(/^[\w.-]+\/[\w./-]+@[\w.-]+$/);
    });
    for (const need of [job.needs ?? []].flat()) expect(Object.keys(wf.jobs), `jobs.${id}.needs`).toContain(need);
  }
}

describe('release workflow', () => {
  const wf = readWorkflow('release.yml');
  const build = wf.jobs.build;
  const publish = wf.jobs.publish;
  const runs = (job: Yaml): string => job.steps.map((s: Step) => s.run ?? '').join('\n');

  it('is valid: every job has runs-on and steps, every step has run or uses', () => {
    expectValidJobs(wf);
  });

  it('runs on a v* tag', () => {
    expect(wf.on.push.tags).toContain('v*');
    expect(wf.on.push.branches).toBeUndefined();
  });

  it('builds the six platforms with napi build --platform --release --target', () => {
    const settings: Yaml[] = build.strategy.matrix.settings;
    expect(settings.map((s) => s.platform).sort()).toEqual(Object.keys(TARGETS).sort());
    for (const s of settings) expect(s.target, s.platform).toBe(TARGETS[s.platform]);
    expect([...PUBLISHED_PLATFORMS].sort()).toEqual(Object.keys(TARGETS).sort());
    // Cross-compiled linux targets use napi's cross toolchain or zig.
    for (const s of settings.filter((x) => x.platform.startsWith('linux-'))) {
      expect(s.host, s.platform).toMatch(/^ubuntu-/);
      expect(s.flags, s.platform).toMatch(/(^|\s)(--use-napi-cross|-x)(\s|$)/);
    }
    for (const s of settings.filter((x) => x.platform.startsWith('darwin-'))) expect(s.host).toMatch(/^macos-/);
    for (const s of settings.filter((x) => x.platform.startsWith('win32-'))) expect(s.host).toMatch(/^windows-/);
    expect(build['runs-on']).toBe('${{ matrix.settings.host }}');
    const cmd = runs(build).replace(/\s+/g, ' ');
    expect(cmd).toContain(
      'napi build --platform --release --manifest-path crates/switchyard-node/Cargo.toml -o native --js index.cjs --dts index.d.cts --target ${{ matrix.settings.target }}',
    );
  });

  it('checks the glibc requirement and uploads one artifact per target', () => {
    expect(runs(build)).toContain('MIN_GLIBC');
    expect(runs(build)).toContain('scripts/pack-smoke.sh');
    const uploads = build.steps.filter((s: Step) => s.uses?.startsWith('actions/upload-artifact@'));
    expect(uploads.map((s: Step) => s.with?.name)).toContain('bindings-${{ matrix.settings.target }}');
  });

  it('publishes after every build: platform packages, then the main package, with NPM_TOKEN', () => {
    expect([publish.needs].flat()).toContain('build');
    const steps: Step[] = publish.steps;
    const index = (pattern: RegExp): number => steps.findIndex((s) => pattern.test(s.run ?? s.uses ?? ''));
    const order = [
      index(/^actions\/download-artifact@/),
      index(/napi create-npm-dirs/),
      index(/napi artifacts/),
      index(/napi prepublish -t npm/),
      index(/npm publish/),
    ];
    expect(order.every((i) => i >= 0), JSON.stringify(order)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    for (const s of steps.filter((x) => /napi prepublish|npm publish/.test(x.run ?? ''))) {
      expect(s.env?.NODE_AUTH_TOKEN).toBe('${{ secrets.NPM_TOKEN }}');
    }
    const setupNode = steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
    expect(setupNode?.with?.['registry-url']).toBe('https://registry.npmjs.org');
  });

  it('package.json lists the same napi targets', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect([...pkg.napi.targets].sort()).toEqual(Object.values(TARGETS).sort());
    expect(pkg.napi.binaryName).toBe('switchyard');
  });
});

describe('CI workflow', () => {
  it('is valid and runs .ci/run, which runs the pack smoke test after the build', () => {
    const wf = readWorkflow('ci.yml');
    expectValidJobs(wf);
    const runs = Object.values<Yaml>(wf.jobs).flatMap((j) => j.steps.map((s: Step) => s.run ?? ''));
    expect(runs.join('\n')).toContain('.ci/run');
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
    expect(ci).toMatch(/npm ci[\s\S]*bash scripts\/pack-smoke\.sh/);
    expect(readFileSync(join(root, 'scripts', 'pack-smoke.sh'), 'utf8')).toMatch(/^set -euo pipefail$/m);
  });
});

describe('npm pack', () => {
  it('ships dist/, the loader and the binary, and nothing that should not ship', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [info] = JSON.parse(out) as [{ size: number; unpackedSize: number; files: { path: string; size: number }[] }];
    const files = info.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'native/index.cjs', 'native/index.d.cts']) {
      expect(files).toContain(f);
    }
    const binaries = files.filter((f) => /^native\/switchyard\.[\w-]+\.node$/.test(f));
    expect(binaries).toContain(`native/switchyard.${platformName()}.node`);
    const forbidden = files.filter(
      (f) => /^(crates|ts|__test__|target|benches|scripts|docs|npm|artifacts|node_modules)\//.test(f) || /\.(pem|key|map|rs|tgz)$|(^|\/)\.env/.test(f),
    );
    expect(forbidden).toEqual([]);
    const kib = (n: number): string => `${(n / 1024).toFixed(0)} KiB`;
    console.log(
      `npm pack: ${files.length} files, tarball ${info.size} bytes (${kib(info.size)}), unpacked ${kib(info.unpackedSize)}; ` +
        `binary ${binaries.map((b) => `${b} ${kib(info.files.find((f) => f.path === b)!.size)}`).join(', ')}`,
    );
    // Everything but the binary stays small. The binary's own size depends on the build in
    // native/ (a debug build is ~25x a release one); scripts/pack-smoke.sh caps the whole
    // tarball in CI, where the build is always a release build.
    const rest = info.files.filter((f) => !f.path.endsWith('.node')).reduce((n, f) => n + f.size, 0);
    expect(rest, 'unpacked size of everything but the binary').toBeLessThan(400 * 1024);
  });
});

describe('building from a clone', () => {
  it('without a binary and without cargo, scripts/build.mjs stops with one clear message', () => {
    const pkg = join(tempDir(), 'switchyard');
    mkdirSync(join(pkg, 'scripts'), { recursive: true });
    cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(root, 'scripts', 'build.mjs'), join(pkg, 'scripts', 'build.mjs'));
    const r = spawnSync(process.execPath, ['scripts/build.mjs'], {
      cwd: pkg,
      encoding: 'utf8',
      env: { ...process.env, PATH: pathWithoutCargo() },
    });
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBeNull();
    expect(r.stderr.match(/^switchyard:/gm)).toHaveLength(1);
    expect(r.stderr).toContain(`no prebuilt native addon for ${platformName()}`);
    expect(r.stderr).toContain('no Rust toolchain (cargo)');
    expect(r.stderr).toContain('npm install switchyard');
    expect(r.stderr).toContain('https://rustup.rs');
    expect(existsSync(join(pkg, 'native'))).toBe(false);
    // /work/main/native is untouched: the shipped binary is still there.
    expect(readdirSync(join(root, 'native')).some((f) => f.endsWith('.node'))).toBe(true);
  });
});

describe('the loader', () => {
  it('with no binary for this platform, native() names the platform, libc and glibc and says what to do', () => {
    const pkg = join(tempDir(), 'switchyard');
    mkdirSync(join(pkg, 'native'), { recursive: true });
    cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
    cpSync(join(root, 'native', 'index.cjs'), join(pkg, 'native', 'index.cjs'));
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "import { native } from './dist/binding/addon.js'; try { native(); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); process.exit(3); }"],
      { cwd: pkg, encoding: 'utf8', env: { ...process.env, PATH: pathWithoutCargo() } },
    );
    expect(r.status, r.stderr).toBe(3);
    const { code, message } = JSON.parse(r.stdout) as { code: string; message: string };
    expect(code).toBe('SWITCHYARD_ERR_NATIVE_LOAD');
    expect(message).toContain(`for ${platformName()}`);
    expect(message).toContain(`platform: ${process.platform}, arch: ${process.arch}`);
    if (process.platform === 'linux' && platformName().endsWith('-gnu')) {
      const found = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime;
      expect(message).toContain(`libc: glibc ${found}`);
      expect(message).toContain(`needs glibc >= ${MIN_GLIBC}`);
    }
    expect(message).toContain(`switchyard-${platformName()}`);
    expect(message).toContain('what to do');
    expect(message).toContain('Rust >= 1.88');
  });

  it('on an old glibc says which glibc the binary needs and which was found', () => {
    const e = nativeLoadError(new Error("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found"), {
      platform: 'linux',
      arch: 'x64',
      libc: 'glibc',
      glibcVersion: '2.31',
    });
    expect(e.code).toBe('SWITCHYARD_ERR_NATIVE_LOAD');
    expect(e.message).toContain('platform: linux, arch: x64, libc: glibc 2.31');
    expect(e.message).toMatch(/needs glibc >= 2\.\d+; this system has glibc 2\.31/);
    expect(e.message).toContain('upgrade to a distribution with glibc >=');
    expect(e.message).toContain("version `GLIBC_2.34' not found");
  });

  it('on musl and on an unpublished platform names them', () => {
    const musl = nativeLoadError(new Error('x'), { platform: 'linux', arch: 'x64', libc: 'musl', glibcVersion: null });
    expect(musl.message).toContain('for linux-x64-musl');
    expect(musl.message).toContain('libc: musl');
    expect(musl.message).not.toContain('needs glibc');
    const other = nativeLoadError(new Error('x'), { platform: 'freebsd', arch: 'x64', libc: null, glibcVersion: null });
    expect(other.message).toContain('no prebuilt binary is published for freebsd-x64');
  });

  it.runIf(process.platform === 'linux')('the shipped linux-gnu binary needs no newer glibc than MIN_GLIBC', () => {
    const binaries = readdirSync(join(root, 'native')).filter((f) => /^switchyard\.linux-[\w]+-gnu\.node$/.test(f));
    expect(binaries.length).toBeGreaterThan(0);
    for (const b of binaries) {
      const file = join(root, 'native', b);
      const needs = glibcNeededBy(file);
      expect(needs, b).not.toBeNull();
      expect(compareVersions(needs!, MIN_GLIBC), `${b} needs glibc ${needs}, MIN_GLIBC is ${MIN_GLIBC}`).toBeLessThanOrEqual(0);
      const objdump = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
      if (objdump.status === 0) {
        const versions = (objdump.stdout.match(/GLIBC_[\d.]+/g) ?? []).map((v) => v.slice(6)).sort(compareVersions);
        expect(versions.at(-1), 'objdump agrees').toBe(needs);
      }
      console.log(`${b} needs glibc ${needs} (documented minimum ${MIN_GLIBC})`);
    }
  });
});
