// The data plane owns its facts (crates/switchyard-core/src/catalog.rs); the control plane reads
// them from the generated ts/binding/catalog.generated.ts (kept current by a cargo test). These
// checks hold the rest of the tree to them: the docs, the admin schema, and the committed
// declarations of the addon.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALGORITHM_INFO, LIMITS, PASSIVE_DEFAULTS } from '../ts/binding/catalog.generated.js';
import { REQUEST_SCHEMAS } from '../ts/admin/schema.js';
import { validateConfig } from '../ts/index.js';

const docs = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
/** The cells of the docs' reference-table row for `key`. */
const row = (key: string): string[] => {
  const line = docs.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
  if (!line) throw new Error(`docs/configuration.md has no row for ${key}`);
  return line.split(' | ').map((c) => c.trim());
};

describe('the catalog is the one source of the data plane facts', () => {
  it('the docs list exactly the catalog algorithms, each in the Algorithms table', () => {
    const listed = [...row('pools.NAME.algorithm')[1]!.matchAll(/`(\w+)`/g)].map((m) => m[1]);
    expect(listed).toEqual(ALGORITHM_INFO.map((a) => a.name));
    for (const a of ALGORITHM_INFO) expect(docs).toMatch(new RegExp(`^\\| \`${a.name}\` \\|`, 'm'));
  });

  it('the docs state the catalog limits and defaults', () => {
    const { weight, virtual_nodes: vn, table_size: ts, max_balance_factor: maxFactor } = LIMITS;
    expect(row('pools.NAME.backends[i].weight').slice(1, 3)).toEqual([`integer ${weight.min}..${weight.max}`, `\`${weight.default}\``]);
    expect(row('pools.NAME.virtual_nodes').slice(1, 3)).toEqual([`integer ${vn.min}..${vn.max}`, `\`${vn.default}\``]);
    expect(row('pools.NAME.table_size').slice(1, 3)).toEqual([`prime, ${ts.min}..${ts.max}`, `\`${ts.default}\``]);
    expect(row('pools.NAME.hash_balance_factor')[1]).toBe(`number > 1, ≤ ${maxFactor}`);
    expect(row('pools.NAME.passive.consecutive_failures')[2]).toBe(`\`${PASSIVE_DEFAULTS.consecutive_failures}\``);
  });

  it('the validator fills the catalog defaults and enforces its limits', () => {
    const cfg = validateConfig({ listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { backends: [{ address: '127.0.0.1:1' }] } } }, 'catalog');
    const p = cfg.pools[0]!;
    expect([p.virtual_nodes, p.table_size, p.backends[0]!.weight]).toEqual([LIMITS.virtual_nodes.default, LIMITS.table_size.default, LIMITS.weight.default]);
    expect(p.passive).toEqual(PASSIVE_DEFAULTS);
    expect(() =>
      validateConfig({ listeners: { l: { address: '127.0.0.1:0', pool: 'p' } }, pools: { p: { backends: [{ address: '127.0.0.1:1', weight: LIMITS.weight.max + 1 }] } } }, 'catalog'),
    ).toThrow(`expected an integer ${LIMITS.weight.min}..${LIMITS.weight.max}`);
  });

  it('the admin schema takes its enum and ranges from the catalog', () => {
    expect(REQUEST_SCHEMAS.SetAlgorithm.properties.algorithm.enum).toEqual(ALGORITHM_INFO.map((a) => a.name));
    expect(REQUEST_SCHEMAS.SetWeight.properties.weight).toMatchObject({ minimum: LIMITS.weight.min, maximum: LIMITS.weight.max });
  });

  it('the committed native/index.d.cts is what napi generated for this build', () => {
    // The build (npm ci / npm run build) regenerates it; a difference means it was not committed.
    const status = execFileSync('git', ['status', '--porcelain', '--', 'native/index.d.cts'], { encoding: 'utf8' });
    expect(status, 'native/index.d.cts is not the committed one (or not committed): commit the regenerated file').toBe('');
  });
});
