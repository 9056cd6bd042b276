/**
 * The HTTP part of the configuration, as pure TypeScript: what validateConfig accepts and
 * refuses (every error names its path and the value), and the tables engineConfig compiles
 * for the data plane (`ts/config/http.ts`). Starting balancers with HTTP listeners is the
 * data plane's suite.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { ConfigError } from '../ts/errors.js';
import { TestCa } from './certs.js';
import { parseConfigText } from '../ts/config/load.js';
import { validateConfig } from '../ts/config/validate.js';
import { engineConfig } from '../ts/config/engine.js';
import { regexProblem } from '../ts/config/http.js';
import type { RouteConfig as EngineRoute } from '../ts/binding/types.generated.js';

const SECRET = 'sticky-secret-0123456789';
const ENV = 'SY_TEST_STICKY_SECRET';

/** The issue's example, with the secret from the environment. */
const EXAMPLE = `
listeners:
  web:
    address: 0.0.0.0:8080
    protocol: http            # default stays tcp
    routes:                   # first match wins
      - match: { header: { x-canary: "true" } }
        pool: canary
      - match: { path_prefix: /api/ }
        pool: api
      - match: { host: static.example.com, path_prefix: /static/ }
        pool: static
        response_headers: { set: { cache-control: "public, max-age=2592000" } }
      - pool: web             # default route
pools:
  api:
    algorithm: least_connections
    sticky: { cookie: SY_STICKY, secret_env: ${ENV} }
    backends: [ { address: 10.0.0.10:8080, weight: 3 }, { address: 10.0.0.11:8080 } ]
  static: { backends: [ { address: 10.0.0.20:8080 } ] }
  canary: { backends: [ { address: 10.0.0.30:8080 } ] }
  web:    { backends: [ { address: 10.0.0.40:8080 }, { address: 10.0.0.41:8080 } ] }
`;

const NO_OPS = { remove: [], set: [], add: [] };
/** A compiled route with nothing but `fields`. */
const route = (fields: Partial<EngineRoute> & Pick<EngineRoute, 'name' | 'pool'>): EngineRoute => ({
  host: null,
  path: null,
  methods: null,
  headers: [],
  query: [],
  cookies: [],
  source: [],
  answer: null,
  tag: null,
  rate_class: null,
  hash_key: null,
  request_headers: NO_OPS,
  response_headers: NO_OPS,
  max_body_bytes: null,
  hook: null,
  ...fields,
});
const POOL_HTTP = { key: null, sticky: null, host: null, max_idle_per_backend: 32, idle_timeout_ms: 4_000, eject_after_5xx: 0, error_rate: null, http2: false, http2_connections: 4, http2_streams: 100 };

/** A small http config to break one thing in. `any`: tests write wrong types on purpose. */
function base(): any {
  return {
    listeners: { web: { address: '127.0.0.1:8080', protocol: 'http', routes: [{ match: { path_prefix: '/api/' }, pool: 'api' }], pool: 'web' } },
    pools: { api: { backends: [{ address: '10.0.0.1:80' }] }, web: { backends: [{ address: '10.0.0.2:80' }] } },
  };
}

/** The issues of validating `cfg` (none: []). */
function issues(cfg: unknown): ConfigError['issues'] {
  try {
    validateConfig(cfg, 'http.yaml');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues;
  }
}

/** Expect an issue at `path` whose message contains every one of `parts`. */
function expectIssue(cfg: unknown, path: string, ...parts: string[]): void {
  const all = issues(cfg);
  const issue = all.find((i) => i.path === path);
  expect(issue, `no issue at ${path}; got ${JSON.stringify(all)}`).toBeDefined();
  for (const p of parts) expect(issue!.message).toContain(p);
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-http-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env[ENV];
});

describe('HTTP listeners: the example', () => {
  it('validates and compiles to the data plane tables', () => {
    process.env[ENV] = SECRET;
    const engine = engineConfig(parseConfigText(EXAMPLE, 'yaml', 'example.yaml'));
    expect(engine.listeners).toHaveLength(1);
    const web = engine.listeners[0]!;
    expect(web).toMatchObject({ name: 'web', address: '0.0.0.0:8080', protocol: 'http', pool: 'web', sni_routes: null, tls: null });
    expect(web.http).toEqual({
      routes: [
        route({ name: 'web.routes[0]', pool: 'canary', headers: [{ name: 'x-canary', equals: 'true', regex: null }] }),
        route({ name: 'web.routes[1]', pool: 'api', path: { prefix: '/api/' } }),
        route({
          name: 'web.routes[2]',
          pool: 'static',
          host: 'static.example.com',
          path: { prefix: '/static/' },
          response_headers: { remove: [], set: [{ name: 'cache-control', value: 'public, max-age=2592000' }], add: [] },
        }),
        route({ name: 'web.routes[3]', pool: 'web' }),
      ],
      max_header_bytes: 16_384,
      max_headers: 100,
      header_read_timeout_ms: 10_000,
      request_timeout_ms: 60_000,
      x_forwarded: true,
      forwarded: false,
      access_log_sample: 1,
      h2c: false,
      max_concurrent_streams: 100,
    });
    const pools = Object.fromEntries(engine.pools.map((p) => [p.name, p]));
    expect(Object.keys(pools)).toEqual(['api', 'static', 'canary', 'web']);
    expect(pools.api).toMatchObject({ algorithm: 'least_connections', hash_key: 'source_ip' });
    expect(pools.api!.http).toEqual({ ...POOL_HTTP, sticky: { cookie: 'SY_STICKY', secret: SECRET, max_age_s: null } });
    // Every pool carries its HTTP settings, defaults when none were written.
    for (const name of ['static', 'canary', 'web']) expect(pools[name]!.http, name).toEqual(POOL_HTTP);
  });

  it('the HTTP example in docs/configuration.md validates', () => {
    process.env.SY_STICKY_SECRET = SECRET;
    try {
      const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'configuration.md'), 'utf8');
      const examples = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((t) => /protocol: http/.test(t) && /routes:/.test(t));
      expect(examples.length).toBeGreaterThanOrEqual(1);
      for (const text of examples) {
        const raw = parseDocument(text).toJS();
        const engine = engineConfig(validateConfig(raw, 'docs/configuration.md'));
        expect(engine.listeners.some((l) => l.protocol === 'http' && (l.http?.routes.length ?? 0) >= 2)).toBe(true);
      }
    } finally {
      delete process.env.SY_STICKY_SECRET;
    }
  });
});

describe('HTTP listeners: compilation', () => {
  it('appends pool as the default route, names routes, and compiles every condition and header rule', () => {
    const cfg = base();
    cfg.listeners.web.routes = [
      {
        name: 'uploads',
        match: { method: ['post', 'PUT', 'put'], path_regex: '/u/[0-9]+', query: { v: { regex: '[0-9]+' }, debug: true }, cookie: { Session: true }, header: { 'X-Tenant': 'acme' } },
        pool: 'api',
        max_body_size: '1m',
        request_headers: { set: { 'X-Route': 'uploads' }, add: { via: 'switchyard' }, remove: ['X-Internal'] },
      },
      { match: { host: '*.Example.com', path: '/exact', method: 'get' }, pool: 'api' },
    ];
    cfg.listeners.web.http = { max_header_size: '32k', max_headers: 50, header_read_timeout: '5s', request_timeout: '2m', x_forwarded: false, forwarded: true, access_log_sample: 0.25, h2c: true, max_concurrent_streams: 64 };
    const web = engineConfig(validateConfig(cfg, 's')).listeners[0]!;
    expect(web.pool).toBe('web');
    expect(web.http).toEqual({
      routes: [
        route({
          name: 'uploads',
          pool: 'api',
          methods: ['POST', 'PUT'],
          path: { regex: '/u/[0-9]+' },
          headers: [{ name: 'x-tenant', equals: 'acme', regex: null }],
          query: [
            { name: 'v', equals: null, regex: '[0-9]+' },
            { name: 'debug', equals: null, regex: null },
          ],
          cookies: [{ name: 'Session', equals: null, regex: null }],
          request_headers: { remove: ['x-internal'], set: [{ name: 'x-route', value: 'uploads' }], add: [{ name: 'via', value: 'switchyard' }] },
          max_body_bytes: 1024 * 1024,
        }),
        route({ name: 'web.routes[1]', pool: 'api', host: '*.example.com', path: { exact: '/exact' }, methods: ['GET'] }),
        route({ name: 'web.default', pool: 'web' }),
      ],
      max_header_bytes: 32 * 1024,
      max_headers: 50,
      header_read_timeout_ms: 5_000,
      request_timeout_ms: 120_000,
      x_forwarded: false,
      forwarded: true,
      access_log_sample: 0.25,
      h2c: true,
      max_concurrent_streams: 64,
    });
  });

  it('an http listener with only pool gets one default route; a tcp listener gets no table', () => {
    const cfg = base();
    delete cfg.listeners.web.routes;
    cfg.listeners.tcp = { address: '127.0.0.1:8081', pool: 'api' };
    const [web, tcp] = engineConfig(validateConfig(cfg, 's')).listeners;
    expect(web!.http!.routes).toEqual([route({ name: 'web.default', pool: 'web' })]);
    expect(tcp).toMatchObject({ protocol: 'tcp', http: null, pool: 'api' });
  });

  it('request keys go to http.key, connection keys stay in hash_key; a route may override the key', () => {
    const cfg = base();
    cfg.pools.api = {
      algorithm: 'maglev',
      hash_key: 'header:X-User',
      host_header: 'api.internal:8080',
      keepalive: { max_idle_per_backend: 0, idle_timeout: '2500ms', http2_connections: 2, http2_streams: 50 },
      http2: true,
      passive: { consecutive_5xx: 5, error_rate: { percent: 50, window: '30s' } },
      sticky: { cookie: 'sid', secret: SECRET, max_age: '1h' },
      backends: [{ address: '10.0.0.1:80' }],
    };
    cfg.pools.web = { algorithm: 'consistent_hash', hash_key: 'source_ip_port', backends: [{ address: '10.0.0.2:80' }] };
    cfg.pools.paths = { algorithm: 'consistent_hash', hash_key: 'path', backends: [{ address: '10.0.0.3:80' }] };
    cfg.listeners.web.routes[0].hash_key = 'cookie:uid';
    cfg.listeners.web.routes.push({ match: { path_prefix: '/files/' }, pool: 'paths' });
    const engine = engineConfig(validateConfig(cfg, 's'));
    const [api, web, paths] = engine.pools;
    expect(api).toMatchObject({ hash_key: 'source_ip', passive: { consecutive_failures: 3 } });
    expect(api!.http).toEqual({ key: { header: 'x-user' }, sticky: { cookie: 'sid', secret: SECRET, max_age_s: 3600 }, host: 'api.internal:8080', max_idle_per_backend: 0, idle_timeout_ms: 2_500, eject_after_5xx: 5, error_rate: { percent: 50, window_ms: 30_000, min_requests: 20 }, http2: true, http2_connections: 2, http2_streams: 50 });
    expect([web!.hash_key, web!.http!.key]).toEqual(['source_ip_port', null]);
    expect([paths!.hash_key, paths!.http!.key]).toEqual(['source_ip', 'path']);
    expect(engine.listeners[0]!.http!.routes[0]!.hash_key).toEqual({ cookie: 'uid' });
  });

  it('offers h2 and http/1.1 by ALPN on a TLS http listener unless told otherwise, and refuses other protocols', () => {
    const ca = new TestCa();
    try {
      const leaf = ca.leaf(['www.example.com']);
      const tls = (alpn?: string[]) => {
        const cfg = base();
        cfg.listeners.web.tls = { certificates: [{ cert: leaf.cert, key: leaf.key }], ...(alpn ? { alpn } : {}) };
        cfg.listeners.tcp = { address: '127.0.0.1:8443', pool: 'api', tls: { certificates: [{ cert: leaf.cert, key: leaf.key }] } };
        return cfg;
      };
      const alpnOf = (cfg: any) => Object.fromEntries(validateConfig(cfg, 's').listeners.map((l) => [l.name, l.tls?.alpn]));
      // A tcp listener that terminates TLS offers nothing unless told (it does not read what it forwards).
      expect(alpnOf(tls())).toEqual({ web: ['h2', 'http/1.1'], tcp: [] });
      expect(alpnOf(tls(['http/1.1'])).web).toEqual(['http/1.1']);
      expect(() => validateConfig(tls(['h3', 'h2']), 's')).toThrow(/listeners\.web\.tls\.alpn: an http listener speaks h2, http\/1\.1, http\/1\.0: offer some of them, not \["h3"\]/);
    } finally {
      rmSync(ca.dir, { recursive: true, force: true });
    }
  });

  it('refuses an error_rate without a percent or with a percent out of range, naming the path', () => {
    const cfg = base();
    cfg.pools.api.passive = { error_rate: { window: '10s' } };
    expect(() => validateConfig(cfg, 's')).toThrow(/pools\.api\.passive\.error_rate\.percent: missing/);
    cfg.pools.api.passive = { error_rate: { percent: 150 } };
    expect(() => validateConfig(cfg, 's')).toThrow(/pools\.api\.passive\.error_rate\.percent: .*150/);
  });

  it('reads the sticky secret from a file or the environment, like the admin token', async () => {
    const file = join(dir, 'sticky.secret');
    await writeFile(file, `${SECRET}\n`);
    // A relative secret_file is read beside the configuration file (as token_file is).
    await writeFile(join(dir, 'lb.yaml'), '');
    const cfg = base();
    cfg.pools.api.sticky = { cookie: 'SY', secret_file: file };
    expect(validateConfig(cfg, join(dir, 'lb.yaml')).pools[0]!.http.sticky).toEqual({ cookie: 'SY', secret: SECRET, max_age_s: null });
    cfg.pools.api.sticky = { cookie: 'SY', secret_file: 'sticky.secret' };
    expect(validateConfig(cfg, join(dir, 'lb.yaml')).pools[0]!.http.sticky?.secret).toBe(SECRET);
    process.env[ENV] = SECRET;
    cfg.pools.api.sticky = { cookie: 'SY', secret_env: ENV };
    expect(validateConfig(cfg, 's').pools[0]!.http.sticky?.secret).toBe(SECRET);
  });
});

describe('HTTP listeners: errors name the path and the value', () => {
  it('routes or http on a tcp listener', () => {
    const cfg = base();
    delete cfg.listeners.web.protocol;
    cfg.listeners.web.http = { max_headers: 10 };
    expectIssue(cfg, 'listeners.web.routes', 'protocol: http', 'tcp');
    expectIssue(cfg, 'listeners.web.http', 'only for protocol: http');
  });

  it('an unknown pool in a route, a missing pool, a listener with neither routes nor pool', () => {
    const cfg = base();
    cfg.listeners.web.routes.push({ match: { path: '/x' }, pool: 'apii' }, { match: { path: '/y' } });
    expectIssue(cfg, 'listeners.web.routes[1].pool', 'unknown pool "apii"', 'api, web');
    expectIssue(cfg, 'listeners.web.routes[2].pool', 'missing');
    const none = base();
    delete none.listeners.web.routes;
    delete none.listeners.web.pool;
    expectIssue(none, 'listeners.web.routes', 'needs routes, a pool');
  });

  it('a bad regex, lookaround, backreferences, two path kinds', () => {
    const cfg = base();
    cfg.listeners.web.routes = [
      { match: { path_regex: '/a/(b' }, pool: 'api' },
      { match: { path_regex: '/(?!admin)' }, pool: 'api' },
      { match: { header: { 'x-a': { regex: '(a)\\1' } } }, pool: 'api' },
      { match: { path: '/a', path_prefix: '/b' }, pool: 'api' },
      { match: { query: { q: { regex: '(?<=x)y' } } }, pool: 'api' },
    ];
    expectIssue(cfg, 'listeners.web.routes[0].match.path_regex', 'invalid regular expression', '"/a/(b"');
    expectIssue(cfg, 'listeners.web.routes[1].match.path_regex', 'lookaround (?!', '"/(?!admin)"');
    expectIssue(cfg, 'listeners.web.routes[2].match.header.x-a.regex', 'backreferences', '"(a)\\\\1"');
    expectIssue(cfg, 'listeners.web.routes[3].match.path_prefix', 'one of path, path_prefix, path_regex', 'path and path_prefix');
    expectIssue(cfg, 'listeners.web.routes[4].match.query.q.regex', 'lookaround (?<=');
  });

  it('regexes: Rust-only syntax passes the first check, escaped look-alikes are not lookaround', () => {
    expect(regexProblem('(?i)/API/(?P<id>[0-9]+)')).toBeUndefined();
    expect(regexProblem('\\(?=x')).toBeUndefined();
    expect(regexProblem('[(?=]x')).toBeUndefined();
    expect(regexProblem('[\\]]\\d+')).toBeUndefined();
    expect(regexProblem('a{2,1}')).toContain('invalid regular expression');
  });

  it('sticky without a secret, with two, with a short one; a bad cookie name; max_age in whole seconds', () => {
    const cfg = base();
    cfg.pools.api.sticky = { cookie: 'SY_STICKY' };
    expectIssue(cfg, 'pools.api.sticky.secret', 'missing', 'secret_file or secret_env');
    cfg.pools.api.sticky = { cookie: 'SY STICKY', secret: SECRET, secret_env: ENV, max_age: '1500ms' };
    expectIssue(cfg, 'pools.api.sticky', 'one way only', 'secret and secret_env');
    expectIssue(cfg, 'pools.api.sticky.cookie', 'cookie name', '"SY STICKY"');
    expectIssue(cfg, 'pools.api.sticky.max_age', 'whole seconds', '"1500ms"');
    cfg.pools.api.sticky = { cookie: 'SY', secret: 'short' };
    expectIssue(cfg, 'pools.api.sticky.secret', '16..1024', '5 characters');
    cfg.pools.api.sticky = { cookie: 'SY', secret_env: ENV };
    expectIssue(cfg, 'pools.api.sticky.secret_env', `${ENV} is not set`);
  });

  it('a request key on a pool a tcp listener uses names both; hash_key forms are checked', () => {
    const cfg = base();
    cfg.listeners.tcp = { address: '127.0.0.1:9000', pool: 'api' };
    cfg.pools.api.algorithm = 'consistent_hash';
    cfg.pools.api.hash_key = 'header:x-user';
    expectIssue(cfg, 'pools.api.hash_key', '"header:x-user"', 'listeners.tcp (protocol tcp)', 'protocol: http');
    cfg.pools.api.hash_key = 'header:bad name';
    expectIssue(cfg, 'pools.api.hash_key', 'header:NAME', '"bad name" is not a valid header name');
    cfg.pools.api.hash_key = 'path';
    cfg.pools.api.algorithm = 'round_robin';
    expectIssue(cfg, 'pools.api.hash_key', 'applies only to consistent_hash and maglev');
  });

  it("a route's hash_key needs a hashing pool", () => {
    const cfg = base();
    cfg.listeners.web.routes[0].hash_key = 'cookie:uid';
    expectIssue(cfg, 'listeners.web.routes[0].hash_key', 'consistent_hash or maglev', '"round_robin"');
  });

  it('bad header names and values, headers the proxy manages, unquoted numbers', () => {
    const cfg = base();
    cfg.listeners.web.routes[0].match.header = { 'x bad': 'v', 'x-n': 2, 'x-f': false };
    cfg.listeners.web.routes[0].request_headers = { set: { 'bad:name': 'v', 'x-ok': 'a\nb', 'Content-Length': '0' }, remove: ['transfer-encoding', 7] };
    cfg.listeners.web.routes[0].response_headers = { add: { 'x-num': 5 } };
    expectIssue(cfg, 'listeners.web.routes[0].match.header.x bad', 'invalid name', '"x bad"');
    expectIssue(cfg, 'listeners.web.routes[0].match.header.x-n', 'got 2', 'quote it');
    expectIssue(cfg, 'listeners.web.routes[0].match.header.x-f', 'got false');
    expectIssue(cfg, 'listeners.web.routes[0].request_headers.set.bad:name', 'invalid header name', '"bad:name"');
    expectIssue(cfg, 'listeners.web.routes[0].request_headers.set.x-ok', 'control characters', '"a\\nb"');
    expectIssue(cfg, 'listeners.web.routes[0].request_headers.set.Content-Length', 'managed by the proxy');
    expectIssue(cfg, 'listeners.web.routes[0].request_headers.remove[0]', '"transfer-encoding"', 'managed by the proxy');
    expectIssue(cfg, 'listeners.web.routes[0].request_headers.remove[1]', 'got 7');
    expectIssue(cfg, 'listeners.web.routes[0].response_headers.add.x-num', 'quote it: "5"');
  });

  it('limits: max_header_size below 8192 or malformed, max_body_size, max_headers', () => {
    const cfg = base();
    cfg.listeners.web.http = { max_header_size: 4096, max_headers: 0 };
    cfg.listeners.web.routes[0].max_body_size = '10 MB';
    expectIssue(cfg, 'listeners.web.http.max_header_size', '8k..1m', 'got 4096');
    expectIssue(cfg, 'listeners.web.http.max_headers', '1..10000', 'got 0');
    expectIssue(cfg, 'listeners.web.routes[0].max_body_size', 'size', '"10 MB"');
    cfg.listeners.web.http = { max_header_size: '4k' };
    expectIssue(cfg, 'listeners.web.http.max_header_size', 'got "4k"');
    cfg.listeners.web.http = { max_header_size: '8k' };
    expect(issues(cfg).filter((i) => i.path.startsWith('listeners.web.http'))).toEqual([]);
  });

  it('sni_routes on an http listener, dead routes, duplicate names, protocol values', () => {
    const cfg = base();
    cfg.listeners.web.sni_routes = { 'a.example.com': 'api' };
    cfg.listeners.web.routes = [{ pool: 'api', name: 'all' }, { match: { path: '/x' }, pool: 'api', name: 'all' }];
    expectIssue(cfg, 'listeners.web.sni_routes', 'tcp listeners');
    expectIssue(cfg, 'listeners.web.routes[1]', 'never matches', 'routes[0]');
    expectIssue(cfg, 'listeners.web.routes[1].name', 'duplicate route name "all"');
    expectIssue(cfg, 'listeners.web.pool', 'never used', 'routes[0]');
    cfg.listeners.web.protocol = 'https';
    expectIssue(cfg, 'listeners.web.protocol', 'tcp, http', '"https"');
  });

  it('an error in the file is reported with the file name', () => {
    const cfg = base();
    cfg.listeners.web.routes[0].match.path_regex = '(?=x)';
    let err: unknown;
    try {
      validateConfig(cfg, '/etc/switchyard/lb.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('/etc/switchyard/lb.yaml');
    expect((err as Error).message).toContain('listeners.web.routes[0].match.path_regex: lookaround');
  });
});
