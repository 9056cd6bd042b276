#!/usr/bin/env node
// Writes schema/switchyard.schema.json, the JSON Schema of the configuration file, from the
// field declarations the validator uses (ts/config/fields.ts via ts/config/json-schema.ts).
// `--check` writes nothing and exits 1 when the committed file differs (the config spec
// runs the same comparison).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createJiti } from 'jiti';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'schema', 'switchyard.schema.json');
const jiti = createJiti(import.meta.url);
const { renderConfigSchema } = await jiti.import(join(root, 'ts', 'config', 'json-schema.ts'));
const text = renderConfigSchema();

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(out, 'utf8');
  } catch {
    // missing: reported below as stale
  }
  if (current !== text) {
    process.stderr.write(`${out} is stale: run node scripts/gen-schema.mjs\n`);
    process.exit(1);
  }
} else {
  writeFileSync(out, text);
  process.stdout.write(`wrote ${out}\n`);
}
