/**
 * Packaging: the npm name (`switchyard-lb`), its metadata and the Node versions it
 * supports; the release workflow's job graph publishes when a best-effort build leg
 * fails, with provenance; the CI workflow is valid; `npm pack` ships what users need
 * and nothing else; a clone without a binary or cargo stops with one clear message;
 * the loader names the platform, libc and glibc when no binary loads. The
 * pack-and-install run itself (install under the new name, `import` and `require`)
 * is scripts/pack-smoke.sh (in .ci/run).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  compareVersions,
  glibcNeededBy,
  MIN_GLIBC,
  nativeLoadError,
  PACKAGE_NAME,
  platformName,
  PUBLISHED_PLATFORMS,
  publishedPlatforms,
} from '../ts/binding/addon.js';
import { jobRuns, type JobResult } from './workflow-expr.js';

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
  const bestEffort = wf.jobs['build-best-effort'];
  const publish = wf.jobs.publish;
  const runs = (job: Yaml): string => job.steps.map((s: Step) => s.run ?? '').join('\n');
  const legs = (job: Yaml): Yaml[] => job.strategy.matrix.settings;
  const TAG = 'refs/tags/v0.1.0';

  it('is valid: every job has runs-on and steps, every step has run or uses', () => {
    expectValidJobs(wf);
  });

  it('runs on a v* tag', () => {
    expect(wf.on.push.tags).toContain('v*');
    expect(wf.on.push.branches).toBeUndefined();
  });

  it('builds the six platforms with napi build --platform --release --target, the same steps in both build jobs', () => {
    const settings = [...legs(build), ...legs(bestEffort)];
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
    for (const job of [build, bestEffort]) {
      expect(job['runs-on']).toBe('${{ matrix.settings.host }}');
      expect(job.strategy['fail-fast']).toBe(false);
    }
    expect(bestEffort.steps).toEqual(build.steps);
    const cmd = runs(build).replace(/\s+/g, ' ');
    expect(cmd).toContain(
      'napi build --platform --release --manifest-path crates/switchyard-node/Cargo.toml -o native --js index.cjs --dts index.d.cts --target ${{ matrix.settings.target }}',
    );
  });

  it('blocks only on the legs known to build: linux-x64-gnu; the rest are best-effort (continue-on-error)', () => {
    expect(legs(build).map((s) => s.platform)).toEqual(['linux-x64-gnu']);
    expect(build['continue-on-error']).toBeUndefined();
    expect(bestEffort['continue-on-error']).toBe(true);
  });

  it('checks the glibc requirement against MIN_GLIBC in the file that defines it, and uploads one artifact per target', () => {
    const check = runs(build).split('\n').find((l) => l.includes('MIN_GLIBC'));
    const file = check?.match(/MIN_GLIBC[^"]*" (\S+)/)?.[1];
    expect(file, check).toBeDefined();
    expect(readFileSync(join(root, file!), 'utf8')).toContain(`MIN_GLIBC = '${MIN_GLIBC}'`);
    expect(runs(build)).toContain('scripts/pack-smoke.sh');
    const uploads = build.steps.filter((s: Step) => s.uses?.startsWith('actions/upload-artifact@'));
    expect(uploads.map((s: Step) => s.with?.name)).toContain('bindings-${{ matrix.settings.target }}');
  });

  describe('the job graph (evaluated from the needs and if conditions)', () => {
    // A job with continue-on-error that fails is reported to `needs` as a success; evaluate
    // the stricter reading too (reported as a failure), so the graph is right either way.
    const readings: [string, (failed: boolean, continueOnError: boolean) => JobResult][] = [
      ['a failed best-effort job reported as failure', (failed) => (failed ? 'failure' : 'success')],
      ['a failed best-effort job reported as success', (failed, coe) => (failed && !coe ? 'failure' : 'success')],
    ];
    const outcome = (failedLegs: string[], read: (failed: boolean, coe: boolean) => JobResult): Record<string, JobResult> => ({
      build: read(legs(build).some((s) => failedLegs.includes(s.platform)), build['continue-on-error'] === true),
      'build-best-effort': read(legs(bestEffort).some((s) => failedLegs.includes(s.platform)), bestEffort['continue-on-error'] === true),
    });

    it('publish needs both build jobs, so it waits for every leg', () => {
      expect([publish.needs].flat().sort()).toEqual(['build', 'build-best-effort']);
    });

    for (const [reading, read] of readings) {
      it(`publish runs when every leg builds, and when any best-effort leg fails (${reading})`, () => {
        expect(jobRuns(publish, { needs: outcome([], read), ref: TAG, cancelled: false })).toBe(true);
        for (const leg of legs(bestEffort)) {
          expect(jobRuns(publish, { needs: outcome([leg.platform], read), ref: TAG, cancelled: false }), `${leg.platform} failed`).toBe(true);
        }
        const all = legs(bestEffort).map((s) => s.platform);
        expect(jobRuns(publish, { needs: outcome(all, read), ref: TAG, cancelled: false }), 'every best-effort leg failed').toBe(true);
      });

      it(`publish does not run when a blocking leg fails, when the run is cancelled, or off a v* tag (${reading})`, () => {
        expect(jobRuns(publish, { needs: outcome(['linux-x64-gnu'], read), ref: TAG, cancelled: false })).toBe(false);
        expect(jobRuns(publish, { needs: outcome([], read), ref: TAG, cancelled: true })).toBe(false);
        expect(jobRuns(publish, { needs: outcome([], read), ref: 'refs/heads/main', cancelled: false })).toBe(false);
      });
    }

    it('the evaluator is not vacuous: with a plain `needs`, a failed best-effort leg would skip publish', () => {
      const plain = { needs: publish.needs };
      expect(jobRuns(plain, { needs: outcome(['darwin-arm64'], readings[0]![1]), ref: TAG, cancelled: false })).toBe(false);
    });
  });

  it('publishes exactly the platforms that built: napi.targets cut to the artifacts, then platform packages, then the main package', () => {
    const steps: Step[] = publish.steps;
    const index = (pattern: RegExp): number => steps.findIndex((s) => pattern.test(s.run ?? s.uses ?? ''));
    const order = [
      index(/^actions\/download-artifact@/),
      index(/node scripts\/release-targets\.mjs artifacts/),
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

  it('publishes with provenance: id-token: write, --provenance, and NPM_CONFIG_PROVENANCE for the platform packages', () => {
    expect(publish.permissions?.['id-token']).toBe('write');
    expect(wf.permissions?.['id-token']).toBeUndefined();
    expect(runs(publish)).toMatch(/npm publish --provenance\b/);
    expect(publish.env?.NPM_CONFIG_PROVENANCE).toBe('true');
  });

  it('package.json lists the same napi targets', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect([...pkg.napi.targets].sort()).toEqual(Object.values(TARGETS).sort());
    expect(pkg.napi.binaryName).toBe('switchyard');
  });
});

describe('scripts/release-targets.mjs', () => {
  it('cuts napi.targets to the binaries present and prints their platforms; none present is an error', () => {
    const dir = tempDir();
    cpSync(join(root, 'package.json'), join(dir, 'package.json'));
    mkdirSync(join(dir, 'artifacts', 'bindings-x86_64-unknown-linux-musl'), { recursive: true });
    mkdirSync(join(dir, 'artifacts', 'bindings-aarch64-apple-darwin'), { recursive: true });
    writeFileSync(join(dir, 'artifacts', 'bindings-x86_64-unknown-linux-musl', 'switchyard.linux-x64-musl.node'), '');
    const script = join(root, 'scripts', 'release-targets.mjs');
    const r = spawnSync(process.execPath, [script, 'artifacts'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('linux-x64-musl\n');
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    expect(pkg.napi.targets).toEqual(['x86_64-unknown-linux-musl']);
    expect(pkg.name).toBe(PACKAGE_NAME);
    rmSync(join(dir, 'artifacts'), { recursive: true });
    mkdirSync(join(dir, 'artifacts'));
    const none = spawnSync(process.execPath, [script, 'artifacts'], { cwd: dir, encoding: 'utf8' });
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('no switchyard.<platform>.node');
  });
});

describe('the npm package', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const readme = readFileSync(join(root, 'README.md'), 'utf8');

  it('is named switchyard-lb (npm\'s `switchyard` is an unrelated package) and keeps the `switchyard` command', () => {
    expect(pkg.name).toBe('switchyard-lb');
    expect(PACKAGE_NAME).toBe(pkg.name);
    expect(Object.keys(pkg.bin)).toEqual(['switchyard']);
    expect(readme).toContain(`npm install ${pkg.name}`);
    // No doc tells users to install or import the unrelated package.
    const docs = ['README.md', 'ARCHITECTURE.md', ...readdirSync(join(root, 'docs')).map((f) => join('docs', f))].filter((f) => f.endsWith('.md'));
    for (const f of docs) {
      const text = readFileSync(join(root, f), 'utf8');
      expect(text, f).not.toMatch(/npm (install|i) switchyard(?![-\w])/);
      expect(text, f).not.toMatch(/from ['"]switchyard['"]/);
      expect(text, f).not.toMatch(/require\(['"]switchyard['"]\)/);
    }
  });

  it('names its repository (needed by npm provenance), and the README says it is the intended home', () => {
    expect(pkg.repository.url).toMatch(/^git\+https:\/\/github\.com\/[\w-]+\/[\w-]+\.git$/);
    const home = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
    expect(readme).toContain(home);
  });

  it('exports the same ESM entry to import and to require (require(esm)), with types', () => {
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', import: './dist/index.js', require: './dist/index.js' });
  });

  it('supports exactly the Node versions with require(esm), and every locked dependency accepts them', () => {
    // require(esm) is unflagged from 20.19 and 22.12; @napi-rs/cli (a dev dependency) needs 22.13 on 22.
    expect(pkg.engines.node).toBe('^20.19.0 || ^22.13.0 || >=23.5.0');
    const semver = createRequire(import.meta.url)('semver') as {
      satisfies(version: string, range: string): boolean;
      minVersion(range: string): { version: string } | null;
    };
    expect(semver.satisfies(process.versions.node, pkg.engines.node), `this Node, ${process.versions.node}`).toBe(true);
    const floors = (pkg.engines.node as string).split('||').map((r) => semver.minVersion(r)!.version);
    expect(floors).toEqual(['20.19.0', '22.13.0', '23.5.0']);
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
    };
    expect(lock.packages['']?.engines).toEqual(pkg.engines);
    const refusing: string[] = [];
    for (const [path, p] of Object.entries(lock.packages)) {
      const range = Array.isArray(p.engines) ? undefined : p.engines?.node;
      if (!path || !range) continue;
      for (const v of [...floors, process.versions.node]) {
        if (!semver.satisfies(v, range)) refusing.push(`${path}@${p.version} wants node ${range}, not ${v}`);
      }
    }
    expect(refusing, 'would warn EBADENGINE on npm ci').toEqual([]);
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
    // tarball in CI, where the build is always a release build. The cap is there to catch
    // something shipped by accident (sources, maps, a second copy of dist/), which at least
    // doubles the ~760 KiB of JS, types, loader and README (policies, the test kit and the
    // fleet modules included); not the growth of the code.
    const rest = info.files.filter((f) => !f.path.endsWith('.node')).reduce((n, f) => n + f.size, 0);
    expect(rest, 'unpacked size of everything but the binary').toBeLessThan(1024 * 1024);
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
    expect(r.stderr).toContain(`npm install ${PACKAGE_NAME} `);
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
    expect(message).toContain(`${PACKAGE_NAME}-${platformName()}`);
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

  it('knows which platforms an installed release has: its pinned platform packages, else the release build list', () => {
    const release = { optionalDependencies: { [`${PACKAGE_NAME}-linux-x64-gnu`]: '0.1.0', [`${PACKAGE_NAME}-linux-arm64-gnu`]: '0.1.0', other: '1.0.0' } };
    expect(publishedPlatforms(release)).toEqual(['linux-x64-gnu', 'linux-arm64-gnu']);
    expect(publishedPlatforms({})).toEqual(PUBLISHED_PLATFORMS);
    // A release without a darwin-arm64 package says so instead of "reinstall".
    const mac = nativeLoadError(new Error('x'), { platform: 'darwin', arch: 'arm64', libc: null, glibcVersion: null }, publishedPlatforms(release));
    expect(mac.message).toContain('no prebuilt binary is published for darwin-arm64 (published: linux-x64-gnu, linux-arm64-gnu)');
    expect(mac.message).not.toContain('reinstall');
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
