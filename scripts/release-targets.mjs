#!/usr/bin/env node
// Narrows package.json `napi.targets` to the targets whose binary is present under an
// artifacts directory, so `napi create-npm-dirs`, `napi artifacts` and `napi prepublish`
// make, fill and publish exactly the platform packages that were built, and the main
// package pins exactly those as optionalDependencies.
//
// Why: the release workflow's best-effort build legs may fail without blocking the
// release; napi prepublish refuses a target whose binary is missing. The publish job and
// scripts/pack-smoke.sh (which stages the same layout) both use this script.
//
// Usage: node scripts/release-targets.mjs <artifacts-dir> [package.json]
// Prints one published platform (napi's name, e.g. linux-x64-gnu) per line; exits 1 when
// none is present.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTriple } from '@napi-rs/cli';

const [artifactsDir, packageJsonPath = 'package.json'] = process.argv.slice(2);
if (!artifactsDir) {
  process.stderr.write('usage: node scripts/release-targets.mjs <artifacts-dir> [package.json]\n');
  process.exit(2);
}

const pkg = JSON.parse(readFileSync(packageJsonPath, 'utf8'));
const binaryName = pkg.napi?.binaryName ?? 'index';
const present = new Set(
  readdirSync(artifactsDir, { recursive: true })
    .map((f) => String(f).split(/[\\/]/).pop())
    .filter((f) => f.startsWith(`${binaryName}.`) && f.endsWith('.node')),
);
const targets = (pkg.napi?.targets ?? []).filter((t) => present.has(`${binaryName}.${parseTriple(t).platformArchABI}.node`));
if (targets.length === 0) {
  process.stderr.write(`release-targets: no ${binaryName}.<platform>.node for any napi target under ${artifactsDir}\n`);
  process.exit(1);
}
pkg.napi.targets = targets;
writeFileSync(packageJsonPath, `${JSON.stringify(pkg, null, 2)}\n`);
for (const t of targets) process.stdout.write(`${parseTriple(t).platformArchABI}\n`);
