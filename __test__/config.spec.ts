import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../ts/errors.js';
import { DEFAULTS } from '../ts/config/defaults.js';
import { parseDuration } from '../ts/config/duration.js';
import { loadConfigFile, parseConfigText } from '../ts/config/load.js';
import { validateConfig } from '../ts/config/validate.js';
import { defineConfig } from '../ts/config/define.js';
import { discoverConfig, CONFIG_NAMES } from '../ts/config/discover.js';
import { configJsonSchema, renderConfigSchema, type JsonSchema } from '../ts/config/json-schema.js';
import { parseDocument } from 'yaml';
import { Ajv } from 'ajv';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** A minimal valid config, deep-copied so each test can break one thing. `any` on purpose:
 * the tests write values of the wrong type into it, which is what the validator must catch. */
function base(): any {
  return {
    listeners: { web: { address: '127.0.0.1:8080', pool: 'api' } },
    pools: { api: { backends: [{ address: '10.0.0.1:80' }, { address: '10.0.0.2:80' }] } },
  };
}

/** Run `fn`, expect a ConfigError, and check its message names `path` next to `value`. */
function expectIssue(fn: () => unknown, path: string, value: string): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const err = caught as ConfigError;
  const issue = err.issues.find((i) => i.path === path);
  expect(issue, `no issue at ${path}: ${err.message}`).toBeDefined();
  expect(issue!.message).toContain(value);
  expect(err.message).toContain(`${path}: `);
  return err;
}

const expected = {
  workers: DEFAULTS.workers,
  accept: 'shared',
  max_connections: null,
  listeners: [
    { name: 'web', address: '127.0.0.1:8080', pool: 'api', backlog: 4096, defer_accept: false, freebind: false, idle_timeout_ms: 60_000, splice: 'auto', tls: null, sni_routes: null, peek_timeout_ms: 5_000, access_log: false, protocol: 'tcp', http: null, udp: null, proxy_protocol: null, max_connections: null, allow: null, deny: [], per_source: null, max_lifetime_ms: null, max_lifetime_jitter: 0.1, rules: [], trace_sample: 0 },
  ],
  admin: null,
  rate_classes: [],
  pools: [
    {
      name: 'api',
      algorithm: 'round_robin',
      connect_timeout_ms: 2_000,
      retries: 2,
      hash_key: 'source_ip',
      virtual_nodes: 160,
      table_size: 65537,
      hash_balance_factor: null,
      passive: { consecutive_failures: 3, ejection_ms: 10_000, max_ejection_ms: 300_000, max_ejection_percent: 50 },
      panic_threshold: null,
      on_down: 'keep',
      drain_timeout_ms: 30_000,
      slow_start_ms: 0,
      backend_tls: null,
      health_check: null,
      http: { key: null, sticky: null, host: null, max_idle_per_backend: 32, idle_timeout_ms: 4_000, eject_after_5xx: 0, error_rate: null, http2: false, http2_connections: 4, http2_streams: 100 },
      proxy_protocol: null,
      max_connections: null,
      queue: null,
      backends: [
        { address: '10.0.0.1:80', weight: 1, backup: false, state: 'ready', health_check: null },
        { address: '10.0.0.2:80', weight: 1, backup: false, state: 'ready', health_check: null },
      ],
    },
  ],
};

describe('loadConfigFile', () => {
  it('loads YAML with defaults', async () => {
    const path = await write(
      'ok.yaml',
      `listeners:\n  web:\n    address: localhost:8080\n    pool: api\npools:\n  api:\n    backends:\n      - address: 10.0.0.1:80\n      - address: 10.0.0.2:80\n`,
    );
    expect(await loadConfigFile(path)).toEqual(expected);
  });

  it('loads JSON with defaults', async () => {
    const path = await write('ok.json', JSON.stringify(base()));
    expect(await loadConfigFile(path)).toEqual(expected);
  });

  it('loads TS through jiti, with defineConfig', async () => {
    const define = pathToFileURL(join(__dirname, '../ts/config/define.ts')).href;
    const path = await write(
      'ok.ts',
      `import { defineConfig } from ${JSON.stringify(define)};\nconst port: number = 8080;\nexport default defineConfig(${JSON.stringify(base()).replace('8080', '${port}').replace('"127.0.0.1:${port}"', '`127.0.0.1:${port}`')});\n`,
    );
    expect(await loadConfigFile(path)).toEqual(expected);
  });

  it('loads .mjs and .cjs default exports, re-evaluating on reload', async () => {
    expect(await loadConfigFile(await write('ok.mjs', `export default ${JSON.stringify(base())};`))).toEqual(expected);
    const cjs = await write('ok.cjs', `module.exports = ${JSON.stringify(base())};`);
    expect(await loadConfigFile(cjs)).toEqual(expected);
    const changed = base();
    changed.workers = 3;
    await write('ok.cjs', `module.exports = ${JSON.stringify(changed)};`);
    expect((await loadConfigFile(cjs)).workers).toBe(3);
  });

  it('keeps explicit values and normalises addresses', () => {
    const cfg = base();
    Object.assign(cfg.listeners.web, { address: '[::1]:0', backlog: 10, idle_timeout: '1.5s', splice: 'never' });
    Object.assign(cfg.pools.api, { connect_timeout: '250ms', retries: 0 });
    cfg.pools.api.backends[1] = { address: '[0:0::0001]:443', weight: 0, backup: true, state: 'drain' };
    Object.assign(cfg.pools.api, { passive: { consecutive_failures: 5, ejection_time: '1s' }, panic_threshold: 50, on_down: 'close', drain_timeout: '5s', slow_start: '20s' });
    const r = validateConfig(cfg, 'x');
    expect(r.listeners[0]).toMatchObject({ address: '[::1]:0', backlog: 10, idle_timeout_ms: 1500, splice: 'never' });
    expect(r.pools[0]).toMatchObject({ connect_timeout_ms: 250, retries: 0 });
    expect(r.pools[0]?.backends[1]).toEqual({ address: '[::1]:443', weight: 0, backup: true, state: 'drain', health_check: null });
    expect(r.pools[0]).toMatchObject({
      passive: { consecutive_failures: 5, ejection_ms: 1000, max_ejection_ms: 300_000, max_ejection_percent: 50 },
      panic_threshold: 50,
      on_down: 'close',
      drain_timeout_ms: 5000,
      slow_start_ms: 20_000,
    });
  });

  it('reports a missing file, naming it', async () => {
    const path = join(dir, 'nope.yaml');
    const err = await loadConfigFile(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(path);
    expect((err as ConfigError).source).toBe(path);
  });

  it('reports YAML syntax errors with line and column', async () => {
    const path = await write('bad.yaml', 'listeners:\n  web: {address: "x"\npools: {}\n');
    const err = (await loadConfigFile(path).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues[0]).toMatchObject({ path: '(yaml)', line: 3, col: 1 });
    expect(err.message).toContain(`${path}:3:1: (yaml): YAML syntax error`);
  });

  it('reports JSON syntax errors', async () => {
    const path = await write('bad.json', '{\n  "listeners": {\n}');
    const err = (await loadConfigFile(path).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('JSON syntax error');
  });

  it('reports a module that throws, and unknown extensions', async () => {
    const thrower = await write('throws.mjs', `throw new Error('boom');`);
    await expect(loadConfigFile(thrower)).rejects.toThrow(/boom/);
    await expect(loadConfigFile(await write('c.toml', ''))).rejects.toThrow(ConfigError);
  });
});

describe('validateConfig issues', () => {
  it('rejects unknown keys at every level, listing the allowed ones', () => {
    const cfg = base();
    cfg.extra = 1;
    cfg.listeners.web.adress = 'x';
    cfg.pools.api.backends[0].wieght = 2;
    const err = expectIssue(() => validateConfig(cfg, 'cfg.yaml'), 'listeners.web.adress', '"adress"');
    expect(err.issues.find((i) => i.path === 'listeners.web.adress')?.message).toContain('address, pool, backlog, defer_accept, freebind, idle_timeout, splice');
    expectIssue(() => validateConfig(cfg, 'cfg.yaml'), 'extra', 'workers, accept, listeners, pools');
    expectIssue(() => validateConfig(cfg, 'cfg.yaml'), 'pools.api.backends[0].wieght', '"wieght"');
    expect(err.issues).toHaveLength(3); // all collected, not just the first
    expect(err.message).toContain('cfg.yaml: listeners.web.adress');
  });

  it('resolves connection limits and the queue, and rejects a queue with nothing to wait for', () => {
    const cfg = base() as any;
    cfg.pools.api.max_connections = 50;
    cfg.pools.api.connect_timeout = '3s';
    cfg.pools.api.queue = { max: 20 };
    cfg.pools.api.backends[1].max_connections = 80;
    const pool = validateConfig(cfg, 's').pools[0]!;
    // The queue's timeout defaults to the pool's connect_timeout, as HAProxy's timeout queue.
    expect([pool.max_connections, pool.queue, pool.backends[1]!.max_connections]).toEqual([50, { max: 20, timeout_ms: 3000 }, 80]);
    const alone = base() as any;
    alone.pools.api.queue = { timeout: '1s' };
    expectIssue(() => validateConfig(alone, 's'), 'pools.api.queue', 'sets no max_connections');
    const bad = base() as any;
    bad.pools.api.max_connections = 0;
    bad.pools.api.queue = { max: -1, timeout: 'soon' };
    const err = expectIssue(() => validateConfig(bad, 's'), 'pools.api.max_connections', '0');
    expect(err.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['pools.api.queue.max', 'pools.api.queue.timeout']));
  });

  it('resolves who may connect to a listener and names bad ranges and rates', () => {
    const cfg = base() as any;
    Object.assign(cfg.listeners.web, { max_connections: 100, allow: [' 10.0.0.0/8', '::1'], deny: ['10.6.0.0/16'], per_source: { max_connections: 5, rate: { connections: 20, per: '10s' } } });
    const l = validateConfig(cfg, 's').listeners[0]!;
    expect([l.max_connections, l.allow, l.deny, l.per_source]).toEqual([100, ['10.0.0.0/8', '::1'], ['10.6.0.0/16'], { max_connections: 5, rate: { connections: 20, per_ms: 10_000 } }]);
    const bad = base() as any;
    Object.assign(bad.listeners.web, { allow: [], deny: ['10.0.0.0/40'], per_source: { rate: { connections: 20 } } });
    const err = expectIssue(() => validateConfig(bad, 's'), 'listeners.web.deny[0]', '0..32');
    expect(err.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['listeners.web.allow', 'listeners.web.per_source.rate']));
  });

  it('resolves a jittered max_lifetime for tcp listeners only', () => {
    const cfg = base() as any;
    Object.assign(cfg.listeners.web, { max_lifetime: '1h', max_lifetime_jitter: 25 });
    const l = validateConfig(cfg, 's').listeners[0]!;
    expect([l.max_lifetime_ms, l.max_lifetime_jitter]).toEqual([3_600_000, 0.25]);
    const http = base() as any;
    Object.assign(http.listeners.web, { protocol: 'http', max_lifetime: '1h', max_lifetime_jitter: 80 });
    const err = expectIssue(() => validateConfig(http, 's'), 'listeners.web.max_lifetime', 'only for tcp listeners');
    expect(err.issues.map((i) => i.path)).toContain('listeners.web.max_lifetime_jitter');
  });

  it('rejects bad addresses', () => {
    const cfg = base();
    cfg.pools.api.backends[2] = { address: '10.0.0.300:80' };
    const err = expectIssue(() => validateConfig(cfg, 's'), 'pools.api.backends[2].address', '"10.0.0.300:80"');
    expect(err.issues[0]?.message).toBe('expected "host:port" with an IP address, got "10.0.0.300:80"');
    for (const bad of ['example.com:80', '::1:80', '10.0.0.1', '10.0.0.1:65536', '[fe80::1%eth0]:80']) {
      const c = base();
      c.listeners.web.address = bad;
      expectIssue(() => validateConfig(c, 's'), 'listeners.web.address', JSON.stringify(bad));
    }
    const zero = base();
    zero.pools.api.backends[0].address = '10.0.0.1:0';
    expectIssue(() => validateConfig(zero, 's'), 'pools.api.backends[0].address', '1..65535');
  });

  it('rejects a duplicate listener port, including wildcard overlaps', () => {
    const cfg = base();
    cfg.listeners.admin = { address: '0.0.0.0:8080', pool: 'api' };
    expectIssue(() => validateConfig(cfg, 's'), 'listeners.admin.address', '"0.0.0.0:8080"');
    const same = base();
    same.listeners.copy = { address: 'localhost:8080', pool: 'api' };
    expectIssue(() => validateConfig(same, 's'), 'listeners.copy.address', '"localhost:8080"');
    const ephemeral = base();
    ephemeral.listeners.web.address = '127.0.0.1:0';
    ephemeral.listeners.other = { address: '127.0.0.1:0', pool: 'api' };
    expect(validateConfig(ephemeral, 's').listeners).toHaveLength(2);
  });

  it('rejects empty pools and duplicate backends', () => {
    const cfg = base();
    cfg.pools.api.backends = [];
    expectIssue(() => validateConfig(cfg, 's'), 'pools.api.backends', '"api"');
    const dup = base();
    dup.pools.api.backends[1].address = '10.0.0.1:80';
    expectIssue(() => validateConfig(dup, 's'), 'pools.api.backends[1].address', '"10.0.0.1:80"');
    const none = base();
    none.pools = {};
    expectIssue(() => validateConfig(none, 's'), 'pools', '{}');
  });

  it('rejects bad durations', () => {
    const cfg = base();
    cfg.pools.api.connect_timeout = '2 sec';
    cfg.listeners.web.idle_timeout = -5;
    expectIssue(() => validateConfig(cfg, 's'), 'pools.api.connect_timeout', '"2 sec"');
    expectIssue(() => validateConfig(cfg, 's'), 'listeners.web.idle_timeout', '-5');
    const long = base();
    long.pools.api.connect_timeout = '2m';
    expectIssue(() => validateConfig(long, 's'), 'pools.api.connect_timeout', '"2m"');
  });

  it('says what type was expected and what was found', () => {
    const cfg = base();
    cfg.workers = '4';
    cfg.listeners.web.backlog = 1.5;
    cfg.listeners.web.defer_accept = 'on';
    cfg.accept = 'round_robin';
    cfg.pools.api.backends[0].backup = 'yes';
    cfg.pools.api.retries = 11;
    expectIssue(() => validateConfig(cfg, 's'), 'workers', 'expected an integer 1..256, got "4"');
    expectIssue(() => validateConfig(cfg, 's'), 'listeners.web.backlog', '1.5');
    expectIssue(() => validateConfig(cfg, 's'), 'listeners.web.defer_accept', 'got "on"');
    expectIssue(() => validateConfig(cfg, 's'), 'accept', '"round_robin"');
    expectIssue(() => validateConfig(cfg, 's'), 'pools.api.backends[0].backup', 'got "yes"');
    expectIssue(() => validateConfig(cfg, 's'), 'pools.api.retries', '11');
    expectIssue(() => validateConfig([], 's'), '(root)', 'an array');
  });

  it('rejects a bad algorithm, listing the allowed ones', () => {
    const cfg = base();
    cfg.pools.api.algorithm = 'least_conn';
    expectIssue(() => validateConfig(cfg, 's'), 'pools.api.algorithm', 'round_robin, weighted_round_robin, least_connections');
    expectIssue(() => validateConfig(cfg, 's'), 'pools.api.algorithm', 'got "least_conn"');
  });

  it('rejects bad hash options: non-prime table, factor <= 1, options of another algorithm', () => {
    const cfg = base();
    cfg.pools.api.algorithm = 'maglev';
    cfg.pools.api.table_size = 65536;
    cfg.pools.api.hash_balance_factor = 1;
    cfg.pools.api.virtual_nodes = 100;
    expectIssue(() => validateConfig(cfg, 's'), 'pools.api.table_size', 'prime');
    expectIssue(() => validateConfig(cfg, 's'), 'pools.api.hash_balance_factor', 'greater than 1');
    expectIssue(() => validateConfig(cfg, 's'), 'pools.api.virtual_nodes', 'applies only to consistent_hash');
    const neg = base();
    neg.pools.api.backends[1].weight = -1;
    expectIssue(() => validateConfig(neg, 's'), 'pools.api.backends[1].weight', '-1');
  });

  it('accepts hash options for their algorithms', () => {
    const cfg = base();
    cfg.pools.api.algorithm = 'consistent_hash';
    cfg.pools.api.hash_key = 'source_ip_port';
    cfg.pools.api.virtual_nodes = 40;
    cfg.pools.api.hash_balance_factor = 1.25;
    const p = validateConfig(cfg, 's').pools[0]!;
    expect([p.hash_key, p.virtual_nodes, p.hash_balance_factor, p.table_size]).toEqual(['source_ip_port', 40, 1.25, 65537]);
  });

  it('rejects unknown pools, bad names and bad splice', () => {
    const cfg = base();
    cfg.listeners.web.pool = 'apii';
    cfg.listeners['bad name'] = { address: '127.0.0.1:9', pool: 'api', splice: 'sometimes' };
    expectIssue(() => validateConfig(cfg, 's'), 'listeners.web.pool', '"apii"');
    expectIssue(() => validateConfig(cfg, 's'), 'listeners.bad name', '"bad name"');
    expectIssue(() => validateConfig(cfg, 's'), 'listeners.bad name.splice', '"sometimes"');
  });

  it('parses YAML text through parseConfigText', () => {
    expectIssue(() => parseConfigText('workers: 0\nlisteners: {}\npools: {}\n', 'yaml', 'inline'), 'workers', '0');
  });
});

describe('parseDuration', () => {
  it.each([
    [0, 0],
    ['0', 0],
    ['250ms', 250],
    ['2s', 2000],
    ['1.5s', 1500],
    ['1.1s', 1100],
    ['1m', 60_000],
    ['1h', 3_600_000],
  ])('%s → %s ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([-1, 1.5, Number.NaN, Infinity, '', '2', '2 s', '1.5ms', '1d', 's', true, null])('rejects %s', (input) => {
    expect(typeof parseDuration(input)).toBe('string');
  });

  it.each([
    [10, '10 has no unit; write "10s" or "10ms"'],
    [250, '250 has no unit; write "250s" or "250ms"'],
    ['10', '"10" has no unit; write "10s" or "10ms"'],
    [1.5, '1.5 has no unit; write "1.5s"'],
  ])('a bare number %j needs a unit', (input, message) => {
    expect(parseDuration(input)).toBe(message);
  });
});

describe('durations need a unit', () => {
  it('rejects a unitless duration in YAML with file:line:col, the field and the fix; 0 may stay bare', async () => {
    const path = await write(
      'unitless.yaml',
      'listeners:\n  web: { address: "127.0.0.1:0", pool: api, idle_timeout: 0 }\npools:\n  api:\n    drain_timeout: 0\n    health_check:\n      interval: 10\n      timeout: 3\n    backends: [{ address: "10.0.0.1:80" }]\n',
    );
    const err = (await loadConfigFile(path).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues).toEqual([
      { path: 'listeners.web.idle_timeout', message: 'expected a duration 1ms..24h, got 0', line: 2, col: 59 },
      { path: 'pools.api.health_check.interval', message: '10 has no unit; write "10s" or "10ms"', line: 7, col: 17 },
      { path: 'pools.api.health_check.timeout', message: '3 has no unit; write "3s" or "3ms"', line: 8, col: 16 },
    ]);
    expect(err.message).toContain(`${path}:7:17: pools.api.health_check.interval: 10 has no unit; write "10s" or "10ms"`);
  });

  it('rejects a unitless duration in JSON, located', async () => {
    const cfg = base();
    cfg.pools.api.connect_timeout = 250;
    const path = await write('unitless.json', JSON.stringify(cfg, null, 2));
    const err = (await loadConfigFile(path).catch((e: unknown) => e)) as ConfigError;
    const line = JSON.stringify(cfg, null, 2).split('\n').findIndex((l) => l.includes('"connect_timeout"')) + 1;
    expect(err.issues).toEqual([{ path: 'pools.api.connect_timeout', message: '250 has no unit; write "250s" or "250ms"', line, col: 26 }]);
  });

  it('is a type error in defineConfig and rejected at run time the same way', () => {
    const cfg = defineConfig({
      listeners: { web: { address: '127.0.0.1:0', pool: 'api', idle_timeout: '90s' } },
      pools: {
        api: {
          // @ts-expect-error -- a duration needs a unit: 250 is neither 250ms nor 250s
          connect_timeout: 250,
          drain_timeout: 0,
          health_check: { interval: '1.5s', timeout: '500ms' },
          backends: [{ address: '10.0.0.1:80' }],
        },
      },
    });
    expectIssue(() => validateConfig(cfg, 'switchyard.config.ts'), 'pools.api.connect_timeout', '250 has no unit; write "250s" or "250ms"');
    cfg.pools.api!.connect_timeout = '250ms';
    expect(validateConfig(cfg, 'switchyard.config.ts').pools[0]).toMatchObject({ connect_timeout_ms: 250, health_check: { interval_ms: 1500, timeout_ms: 500 } });
  });
});

describe('issue locations', () => {
  it('points at the key of an unknown key, the value of a bad one, and the parent of a missing one', () => {
    const text = 'listeners:\n  web:\n    address: "127.0.0.1:0"\n    colour: red\npools:\n  a.b:\n    backends:\n      - address: 10.0.0.1:80\n      - { address: "10.0.0.300:80" }\n';
    const err = (() => {
      try {
        parseConfigText(text, 'yaml', 'x.yaml');
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    const at = (p: string) => err.issues.find((i) => i.path === p);
    expect(at('listeners.web.colour')).toMatchObject({ line: 4, col: 5 });
    expect(at('listeners.web.pool')).toMatchObject({ line: 3, col: 5 });
    // A pool name with a dot: the longest key that fits wins.
    expect(at('pools.a.b.backends[1].address')).toMatchObject({ line: 9, col: 20 });
  });
});

/** Every object of the schema with its path segments, and every leaf with its field schema. */
function* walk(node: JsonSchema, segs: (string | number)[]): Generator<{ segs: (string | number)[]; node: JsonSchema }> {
  yield { segs, node };
  const props = node.properties as Record<string, JsonSchema> | undefined;
  if (props) for (const [k, v] of Object.entries(props)) yield* walk(v, [...segs, k]);
  // Maps of names: one entry of the base config (listeners.web, pools.api); maps of strings are leaves.
  const entries = node.additionalProperties as JsonSchema | false | undefined;
  const name = { listeners: 'web', pools: 'api' }[String(segs.at(-1))];
  if (entries && name) yield* walk(entries, [...segs, name]);
  // Lists of objects: their first item (backends[0], certificates[0]).
  const items = node.items as JsonSchema | undefined;
  if (items?.type === 'object') yield* walk(items, [...segs, 0]);
}

function pathOf(segs: (string | number)[]): string {
  return segs.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function setAt(cfg: any, segs: (string | number)[], value: unknown): void {
  let o = cfg;
  segs.slice(0, -1).forEach((s, i) => {
    o[s] ??= typeof segs[i + 1] === 'number' ? [] : {};
    o = o[s];
  });
  o[segs.at(-1)!] = value;
}

/** The issues validateConfig reports for the base config with `value` at `segs` (and whatever `context` needs). */
function issuesWith(segs: (string | number)[], value: unknown): ConfigError['issues'] {
  const cfg = base();
  const parent = segs.slice(0, -1);
  const key = segs.at(-1);
  // Cross-field rules the schema states in words: give them room, so only the field itself is judged.
  if (parent.at(-1) === 'health_check' && (key === 'timeout' || key === 'jitter')) setAt(cfg, [...parent, 'interval'], '1h');
  if (parent.at(-1) === 'http' && parent.at(-2) === 'health_check') setAt(cfg, [...parent.slice(0, -1), 'type'], 'http');
  if (key === 'max_ejection_time') setAt(cfg, [...parent, 'ejection_time'], '1ms');
  if (parent.at(-1) === 'udp' && parent.at(-3) === 'listeners') setAt(cfg, [...parent.slice(0, -1), 'protocol'], 'udp');
  // A udp health check belongs to a pool of a udp listener.
  if (segs.includes('health_check') && ((key === 'type' && value === 'udp') || parent.at(-1) === 'udp')) cfg.listeners.web.protocol = 'udp';
  if (parent.join('.') === 'pools.api' && ['hash_key', 'virtual_nodes', 'hash_balance_factor'].includes(String(key))) cfg.pools.api.algorithm = 'consistent_hash';
  if (parent.join('.') === 'pools.api' && key === 'table_size') cfg.pools.api.algorithm = 'maglev';
  setAt(cfg, segs, value);
  try {
    validateConfig(cfg, 'schema-test');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues;
  }
}

const ms = (n: number): string => `${n}ms`;

describe('JSON Schema', () => {
  const schema = configJsonSchema();
  const nodes = [...walk(schema, [])];

  it('the committed schema/switchyard.schema.json is the generated one (node scripts/gen-schema.mjs rewrites it)', () => {
    const committed = readFileSync(join(import.meta.dirname, '..', 'schema', 'switchyard.schema.json'), 'utf8');
    expect(committed).toBe(renderConfigSchema());
  });

  it('lists, for every object, exactly the keys the validator accepts there', () => {
    const objects = nodes.filter((n) => n.node.type === 'object' && n.node.properties);
    expect(objects.length).toBeGreaterThanOrEqual(14);
    for (const { segs, node } of objects) {
      const path = pathOf([...segs, 'zz_unknown']);
      const issue = issuesWith([...segs, 'zz_unknown'], 1).find((i) => i.path === path);
      expect(issue?.message, path).toBe(`unknown key "zz_unknown" (allowed: ${Object.keys(node.properties as object).join(', ')})`);
    }
  });

  it('agrees with the validator on every range, enum and type', () => {
    const accepts = (segs: (string | number)[], v: unknown) => {
      const p = pathOf(segs);
      const bad = issuesWith(segs, v).filter((i) => i.path === p || i.path.startsWith(`${p}.`) || i.path.startsWith(`${p}[`));
      expect(bad, `${p} = ${JSON.stringify(v)} should be accepted`).toEqual([]);
    };
    const rejects = (segs: (string | number)[], v: unknown) => {
      const p = pathOf(segs);
      // A certificate's cert and key are reported on the certificate.
      const owner = pathOf(segs.slice(0, -1));
      expect(issuesWith(segs, v).some((i) => i.path === p || (segs.at(-2) === 0 && i.path === owner)), `${p} = ${JSON.stringify(v)} should be rejected`).toBe(true);
    };
    let leaves = 0;
    for (const { segs, node } of nodes) {
      if (segs.length === 0 || node.properties) continue;
      leaves++;
      const { minimum: min, maximum: max } = node as { minimum: number; maximum: number };
      if (node.type === 'integer') {
        accepts(segs, min);
        accepts(segs, max);
        rejects(segs, min - 1);
        rejects(segs, max + 1);
      } else if (node.type === 'number' && node.minimum === undefined) {
        accepts(segs, (node.exclusiveMinimum as number) + 0.25);
        accepts(segs, max);
        rejects(segs, node.exclusiveMinimum);
        rejects(segs, max + 1);
      } else if (node.type === 'number') {
        accepts(segs, min);
        accepts(segs, max);
        rejects(segs, min - 0.25);
        rejects(segs, max + 1);
      } else if (node.type === 'boolean') {
        accepts(segs, true);
        accepts(segs, false);
        rejects(segs, 'yes');
      } else if (node.enum) {
        for (const v of node.enum as string[]) accepts(segs, v);
        rejects(segs, 'zz');
      } else if (node.anyOf && (node.anyOf as JsonSchema[])[0]?.type === 'integer') {
        // A size: bytes (the integer branch holds the range) or a string with a unit.
        const { minimum: lo, maximum: hi } = (node.anyOf as { minimum: number; maximum: number }[])[0]!;
        accepts(segs, lo);
        accepts(segs, hi);
        accepts(segs, `${lo >= 1024 && lo % 1024 === 0 ? `${lo / 1024}k` : lo}`);
        if (lo > 0) rejects(segs, lo - 1);
        rejects(segs, hi + 1);
        rejects(segs, '16 kilobytes');
      } else if (node.anyOf && !node.type && /only 0 may omit/.test(node.description as string)) {
        // A duration: the range is stated in the description ("1ms..1h").
        const [, lo, hi] = /, (\w+)\.\.(\w+); only 0/.exec(node.description as string)!;
        const [loMs, hiMs] = [parseDuration(lo), parseDuration(hi)] as number[];
        accepts(segs, lo);
        accepts(segs, hi);
        if (loMs === 0) accepts(segs, 0);
        else rejects(segs, ms(loMs! - 1));
        rejects(segs, ms(hiMs! + 1));
        rejects(segs, 10);
      } else {
        rejects(segs, 12345);
      }
    }
    expect(leaves).toBeGreaterThanOrEqual(70);
  });

  it('validates the example configurations in the docs, and refuses unitless durations and unknown keys', () => {
    const ajv = new Ajv({ allErrors: true, strict: true });
    const check = ajv.compile(schema);
    const docs = ['docs/configuration.md', 'README.md'].map((f) => readFileSync(join(import.meta.dirname, '..', f), 'utf8'));
    const examples = docs
      .flatMap((text) => [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parseDocument(m[1]!).toJS() as Record<string, unknown>))
      .filter((c) => c && 'listeners' in c && 'pools' in c);
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const example of examples) expect(check(example) ? [] : check.errors, JSON.stringify(example)).toEqual([]);
    const cfg = base();
    expect(check(cfg)).toBe(true);
    cfg.pools.api.health_check = { interval: 10 };
    expect(check(cfg)).toBe(false);
    cfg.pools.api.health_check = { interval: '10s', intervall: '1s' };
    expect(check(cfg)).toBe(false);
  });
});

describe('config discovery', () => {
  it('takes SWITCHYARD_CONFIG first, else the first existing name in the directory, else lists what it tried', async () => {
    const cwd = join(dir, 'discover');
    await mkdir(cwd, { recursive: true });
    const none = discoverConfig(cwd, {});
    expect(none).toEqual({ file: null, tried: CONFIG_NAMES.map((n) => join(cwd, n)) });
    await writeFile(join(cwd, 'switchyard.json'), '{}');
    expect(discoverConfig(cwd, {})).toEqual({ file: join(cwd, 'switchyard.json'), via: 'cwd' });
    await writeFile(join(cwd, 'switchyard.yaml'), '');
    expect(discoverConfig(cwd, {})).toEqual({ file: join(cwd, 'switchyard.yaml'), via: 'cwd' });
    await writeFile(join(cwd, 'switchyard.config.ts'), '');
    expect(discoverConfig(cwd, {})).toEqual({ file: join(cwd, 'switchyard.config.ts'), via: 'cwd' });
    expect(discoverConfig(cwd, { SWITCHYARD_CONFIG: '/etc/switchyard/lb.yaml' })).toEqual({ file: '/etc/switchyard/lb.yaml', via: 'env' });
  });
});
