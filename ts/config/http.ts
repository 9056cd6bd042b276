/**
 * The HTTP part of a configuration: a listener's `protocol`, `routes` and
 * `http` limits, and what a pool adds for HTTP (request keys, `sticky`,
 * `host_header`, `keepalive`, `passive.consecutive_5xx`). Validation and
 * compilation happen in one pass: the resolved form *is* the data plane's table
 * (`HttpListenerConfig`, `HttpPoolConfig` in `ts/binding/types.generated.ts`),
 * which Rust re-checks (`crates/switchyard-core/src/http/config.rs`).
 *
 * Regular expressions are Rust `regex` syntax. JavaScript's RegExp is only a
 * first check here (unbalanced groups, dangling quantifiers); lookaround and
 * backreferences, which JavaScript accepts and Rust does not, are refused
 * explicitly so the message names them.
 */
import { describe, isObject, type Checker, type Obj } from './checker.js';
import { DEFAULTS } from './defaults.js';
import { FIELD_VALUE_PATTERN, HOST_PATTERN, KEEPALIVE, LISTENER_HTTP, PASSIVE, PATH_PATTERN, ROUTE, ROUTE_HOOK, ROUTE_MATCH, RULE, STICKY, TOKEN_PATTERN, keysOf } from './fields.js';
import { ruleActions, sources } from './rule-actions.js';
import { poolsOf } from './uses.js';
import { isProblem, toDecision } from '../hooks/decision.js';
import { readSecret } from './secret.js';
import type { ErrorRate, HeaderOps, HeaderPair, HashKey, HookRef, PathMatch, Protocol, RequestKey, RouteConfig, StickyConfig, ValueMatch } from '../binding/types.generated.js';
import type { Algorithm, ResolvedListener, ResolvedListenerHttp, ResolvedPool, ResolvedPoolHttp } from './types.js';

const TOKEN = new RegExp(TOKEN_PATTERN);
const HOST = new RegExp(HOST_PATTERN);
const PATH = new RegExp(PATH_PATTERN);
const FIELD_VALUE = new RegExp(FIELD_VALUE_PATTERN);
const PROTOCOLS: readonly Protocol[] = ['tcp', 'http', 'udp'];
/** What a TLS http listener may offer by ALPN (it offers h2 and http/1.1 unless told otherwise). */
export const HTTP_ALPN: readonly string[] = ['h2', 'http/1.1', 'http/1.0'];
const ROUTE_KEYS = keysOf(ROUTE);
const RULE_KEYS = keysOf(RULE);
/** Conditions of tcp rules: reported as such on an http listener's rule. */
const TCP_MATCH_KEYS = ['sni', 'port', 'tlv'];
const MATCH_KEYS = keysOf(ROUTE_MATCH);
const HTTP_KEYS = keysOf(LISTENER_HTTP);
const STICKY_KEYS = keysOf(STICKY);
const KEEPALIVE_KEYS = keysOf(KEEPALIVE);
const HOOK_KEYS = keysOf(ROUTE_HOOK);
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** A route's, rule's or hook's `name` at `path` (reported when invalid: ''). */
function checkName(c: Checker, v: unknown, path: string): string {
  return text(c, v, path, NAME, 'a name of 1-64 characters of A-Z a-z 0-9 _ . -') ?? '';
}

/** A rule's or route's `name`, or `fallback` when it has none. */
export const ruleName = (c: Checker, v: unknown, path: string, fallback: string): string => (v === undefined ? fallback : checkName(c, v, path));
const OPS_KEYS = ['set', 'add', 'remove'];
const PATH_KINDS = ['path', 'path_prefix', 'path_regex'] as const;
/** Headers that frame a message or describe one hop: the proxy manages them, a rule may not
 * (setting Content-Length or Transfer-Encoding is how requests get smuggled). */
const MANAGED_HEADERS = ['connection', 'content-length', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const KEY_FORMS = 'source_ip, source_ip_port, path, header:NAME or cookie:NAME';

/** A request key as the user writes it (`header:x-user`). */
export function formatKey(k: RequestKey): string {
  return typeof k === 'string' ? k : 'header' in k ? `header:${k.header}` : `cookie:${k.cookie}`;
}

/** Is `k` read from a request (so a tcp listener cannot compute it)? */
const needsRequest = (k: RequestKey | null): boolean => k !== null && k !== 'source_ip' && k !== 'source_ip_port';

/** Parse `hash_key` (of a pool or a route); undefined when absent or wrong (reported). */
function requestKey(c: Checker, v: unknown, path: string): RequestKey | undefined {
  if (v === undefined) return undefined;
  if (v === 'source_ip' || v === 'source_ip_port' || v === 'path') return v;
  const m = typeof v === 'string' ? /^(header|cookie):(.*)$/.exec(v) : null;
  if (m && TOKEN.test(m[2]!)) return m[1] === 'header' ? { header: m[2]!.toLowerCase() } : { cookie: m[2]! };
  const hint = m ? ` (${describe(m[2])} is not a valid ${m[1]} name)` : '';
  c.add(path, `expected ${KEY_FORMS}, got ${describe(v)}${hint}`);
  return undefined;
}

/**
 * A pool's `hash_key`: the connection key the data plane's `hash_key` takes, and the request
 * key (`header:`, `cookie:`, `path`) that goes to `http.key` instead.
 */
export function poolHashKey(c: Checker, v: unknown, path: string): { hash_key: HashKey; key: RequestKey | null } {
  const k = requestKey(c, v, path);
  if (k === 'source_ip' || k === 'source_ip_port') return { hash_key: k, key: null };
  return { hash_key: DEFAULTS.hash_key, key: k ?? null };
}

/** Why `re` is not a usable Rust regex, or undefined. A first check (Rust compiles it again). */
export function regexProblem(re: string): string | undefined {
  for (let i = 0, inClass = false; i < re.length; i++) {
    const ch = re[i];
    if (ch === '\\') {
      const next = re[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(next)) return `backreferences such as \\${next} are not supported (Rust regex syntax)`;
      i++;
    } else if (inClass) {
      if (ch === ']') inClass = false;
    } else if (ch === '[') {
      inClass = true;
      if (re[i + 1] === '^') i++;
      if (re[i + 1] === ']') i++; // a leading ] is a literal
    } else if (ch === '(') {
      const look = /^\(\?(=|!|<=|<!)/.exec(re.slice(i));
      if (look) return `lookaround ${look[0]}…) is not supported (Rust regex syntax: no lookahead or lookbehind)`;
    }
  }
  // Rust-only syntax JavaScript lacks: named groups (?P<name>...), inline flags (?i) / (?i:...).
  const js = re.replace(/\(\?P</g, '(?<').replace(/\(\?[imsuxU-]+\)/g, '').replace(/\(\?[imsuxU-]+:/g, '(?:');
  try {
    new RegExp(js);
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`;
  }
  return undefined;
}

/** A non-empty string matching `re`, or undefined (reported with `expected`). */
function text(c: Checker, v: unknown, path: string, re: RegExp, expected: string): string | undefined {
  if (typeof v === 'string' && re.test(v)) return v;
  const hint = typeof v === 'number' || typeof v === 'boolean' ? ` (quote it: "${String(v)}")` : '';
  c.add(path, `expected ${expected}, got ${describe(v)}${hint}`);
  return undefined;
}

function regex(c: Checker, v: unknown, path: string): string | undefined {
  if (typeof v !== 'string' || v === '') {
    c.add(path, `expected a regular expression, got ${describe(v)}`);
    return undefined;
  }
  const problem = regexProblem(v);
  if (problem) c.add(path, `${problem}, got ${describe(v)}`);
  return problem ? undefined : v;
}

/** `header`, `query` or `cookie` of a match: name → "value" | { regex } | true. */
export function valueMatches(c: Checker, v: unknown, path: string, names: RegExp, lower: boolean): ValueMatch[] {
  if (v === undefined) return [];
  const o = c.object(v, path, 'an object of name → "value", { regex: "..." } or true');
  if (!o) return [];
  const out: ValueMatch[] = [];
  for (const [name, want] of Object.entries(o)) {
    const at = `${path}.${name}`;
    if (!names.test(name)) {
      c.add(at, `invalid name ${describe(name)}`);
      continue;
    }
    const n = lower ? name.toLowerCase() : name;
    if (want === true) out.push({ name: n, equals: null, regex: null });
    else if (typeof want === 'string') {
      if (FIELD_VALUE.test(want)) out.push({ name: n, equals: want, regex: null });
      else c.add(at, `expected a value without control characters, got ${describe(want)}`);
    } else if (isObject(want)) {
      c.keys(want, ['regex'], at);
      const re = regex(c, want.regex, `${at}.regex`);
      if (re !== undefined) out.push({ name: n, equals: null, regex: re });
    } else {
      const hint = typeof want === 'number' || want === false || want === null ? ` (to compare with the text ${JSON.stringify(String(want))}, quote it)` : '';
      c.add(at, `expected a string (equals), { regex: "..." } or true (present), got ${describe(want)}${hint}`);
    }
  }
  return out;
}

type Conditions = Pick<RouteConfig, 'host' | 'path' | 'methods' | 'headers' | 'query' | 'cookies' | 'source'>;

/** The conditions of a route (`match`); `rule`: a policy rule's, whose tcp-only keys are named as such. */
function checkMatch(c: Checker, v: unknown, path: string, rule: boolean): Conditions {
  const out: Conditions = { host: null, path: null, methods: null, headers: [], query: [], cookies: [], source: [] };
  if (v === undefined) return out;
  const m = c.object(v, path, `an object with keys ${MATCH_KEYS.join(', ')}`);
  if (!m) return out;
  for (const k of TCP_MATCH_KEYS) {
    if (rule && m[k] !== undefined) c.add(`${path}.${k}`, `${k} is a condition of tcp listeners' rules; an http listener matches requests (host, path, method, header, query, cookie, source)`);
  }
  c.keys(rule ? Object.fromEntries(Object.entries(m).filter(([k]) => !TCP_MATCH_KEYS.includes(k))) : m, MATCH_KEYS, path);
  out.source = sources(c, m.source, `${path}.source`);
  if (m.host !== undefined) out.host = text(c, m.host, `${path}.host`, HOST, 'a host name or *.domain (no port)')?.toLowerCase() ?? null;
  const kinds = PATH_KINDS.filter((k) => m[k] !== undefined);
  if (kinds.length > 1) c.add(`${path}.${kinds[1]}`, `give one of path, path_prefix, path_regex, got ${kinds.join(' and ')}`);
  if (m.path !== undefined) {
    const p = text(c, m.path, `${path}.path`, PATH, 'a path starting with / (no query)');
    if (p !== undefined) out.path = { exact: p };
  }
  if (m.path_prefix !== undefined) {
    const p = text(c, m.path_prefix, `${path}.path_prefix`, PATH, 'a path prefix starting with / (no query)');
    if (p !== undefined && !out.path) out.path = { prefix: p };
  }
  if (m.path_regex !== undefined) {
    const re = regex(c, m.path_regex, `${path}.path_regex`);
    if (re !== undefined && !out.path) out.path = { regex: re } satisfies PathMatch;
  }
  if (m.method !== undefined) {
    const list = Array.isArray(m.method) ? m.method : [m.method];
    if (list.length === 0) c.add(`${path}.method`, 'expected a method or a non-empty list of methods, got []');
    const methods = list.map((x, i) => text(c, x, Array.isArray(m.method) ? `${path}.method[${i}]` : `${path}.method`, TOKEN, 'a method such as GET'));
    out.methods = [...new Set(methods.filter((x) => x !== undefined).map((x) => x.toUpperCase()))];
  }
  out.headers = valueMatches(c, m.header, `${path}.header`, TOKEN, true);
  out.query = valueMatches(c, m.query, `${path}.query`, /^[^&=#]+$/, false);
  out.cookies = valueMatches(c, m.cookie, `${path}.cookie`, TOKEN, false);
  return out;
}

/** A header name for a rule: a token the proxy does not manage, lower case. */
function ruleHeader(c: Checker, name: string, path: string): string | undefined {
  if (!TOKEN.test(name)) {
    c.add(path, `invalid header name ${describe(name)} (letters, digits and !#$%&'*+.^_\`|~-)`);
    return undefined;
  }
  const n = name.toLowerCase();
  if (MANAGED_HEADERS.includes(n)) {
    c.add(path, `${describe(name)} is managed by the proxy (message framing, hop-by-hop), not by header rules`);
    return undefined;
  }
  return n;
}

/** `request_headers` / `response_headers` of a route. */
function checkOps(c: Checker, v: unknown, path: string): HeaderOps {
  const ops: HeaderOps = { remove: [], set: [], add: [] };
  if (v === undefined) return ops;
  const o = c.object(v, path, 'an object with keys set, add, remove');
  if (!o) return ops;
  c.keys(o, OPS_KEYS, path);
  for (const kind of ['set', 'add'] as const) {
    if (o[kind] === undefined) continue;
    const pairs = c.object(o[kind], `${path}.${kind}`, 'an object of header name → value');
    for (const [name, value] of Object.entries(pairs ?? {})) {
      const at = `${path}.${kind}.${name}`;
      const n = ruleHeader(c, name, at);
      const val = text(c, value, at, FIELD_VALUE, 'a header value without control characters');
      if (n !== undefined && val !== undefined) ops[kind].push({ name: n, value: val } satisfies HeaderPair);
    }
  }
  if (o.remove !== undefined) {
    if (!Array.isArray(o.remove)) c.add(`${path}.remove`, `expected a list of header names, got ${describe(o.remove)}`);
    else
      o.remove.forEach((name: unknown, i) => {
        const n = typeof name === 'string' ? ruleHeader(c, name, `${path}.remove[${i}]`) : (c.add(`${path}.remove[${i}]`, `expected a header name, got ${describe(name)}`), undefined);
        if (n !== undefined) ops.remove.push(n);
      });
  }
  return ops;
}

/** A pool reference (a route's or a listener's `pool`); `pools` undefined: pools are broken, already reported.
 * `rule`: a policy rule's, which defaults to the listener's pool (so a missing one is the listener's). */
export function poolRef(c: Checker, v: unknown, path: string, pools: Obj | undefined, rule = false): string {
  if (typeof v !== 'string') {
    const missing = rule ? 'missing: the listener has no pool to default to (give pool, deny or redirect)' : 'missing (expected the name of a pool)';
    c.add(path, v === undefined ? missing : `expected the name of a pool, got ${describe(v)}`);
    return '';
  }
  if (pools && !Object.hasOwn(pools, v)) c.add(path, `unknown pool ${describe(v)} (defined pools: ${Object.keys(pools).join(', ') || 'none'})`);
  return v;
}

/** What checking a route needs besides the route. */
export interface RouteContext {
  listener: string;
  /** The raw `pools` object (undefined when it is broken). */
  pools: Obj | undefined;
  /** The rate classes defined (undefined when that section is broken). */
  classes: ReadonlySet<string> | undefined;
  /** A policy rule (else a listener's route): its default pool is the listener's, and its
   * default name is `LISTENER.policy[i]`. */
  policyPool?: unknown;
}

/** One route of an HTTP listener, or a policy rule of one (`ctx.policyPool` set). */
function checkRoute(c: Checker, ctx: RouteContext, i: number, v: unknown, path: string): RouteConfig | undefined {
  const rule = ctx.policyPool !== undefined;
  const r = c.object(v, path, rule ? 'a rule object such as { match: { path_prefix: "/admin/" }, deny: true }' : 'a route object such as { match: { path_prefix: "/api/" }, pool: "api" }');
  if (!r) return undefined;
  c.keys(r, rule ? RULE_KEYS : ROUTE_KEYS, path);
  const fallbackName = rule ? `${ctx.listener}.policy[${i}]` : `${ctx.listener}.routes[${i}]`;
  const name = ruleName(c, r.name, `${path}.name`, fallbackName);
  const { min, max } = ROUTE.fields.max_body_size;
  const maxBody = c.size(r.max_body_size, `${path}.max_body_size`, min, max, null);
  const actions = ruleActions(c, r, path, ctx.classes, true);
  if (actions.answer && r.pool !== undefined) c.add(`${path}.pool`, `a ${rule ? 'rule' : 'route'} either forwards to a pool or answers itself (${'deny' in actions.answer ? 'deny' : 'redirect'}), not both`);
  const pool = actions.answer ? null : poolRef(c, r.pool ?? ctx.policyPool ?? undefined, `${path}.pool`, ctx.pools, rule);
  return {
    name,
    ...checkMatch(c, r.match, `${path}.match`, rule),
    pool,
    ...actions,
    hash_key: requestKey(c, r.hash_key, `${path}.hash_key`) ?? null,
    request_headers: checkOps(c, r.request_headers, `${path}.request_headers`),
    response_headers: checkOps(c, r.response_headers, `${path}.response_headers`),
    max_body_bytes: maxBody,
    hook: actions.answer && r.hook !== undefined ? (c.add(`${path}.hook`, `a ${rule ? 'rule' : 'route'} that answers itself (deny, redirect) asks no hook`), null) : checkHook(c, r.hook, `${path}.hook`, ctx.pools),
  };
}

/** A route's `hook`: the function's name, its budget, and the fallback decision (required). */
export function checkHook(c: Checker, v: unknown, path: string, pools: Obj | undefined): HookRef | null {
  if (v === undefined) return null;
  const h = c.object(v, path, 'an object such as { name: "tenant", budget: "2ms", fallback: { pool: "web" } }');
  if (!h) return null;
  c.keys(h, HOOK_KEYS, path);
  const name = h.name === undefined ? (c.add(`${path}.name`, 'missing (the name a function is registered under with lb.hook)'), '') : checkName(c, h.name, `${path}.name`);
  const F = ROUTE_HOOK.fields;
  const budget_ms = c.duration(h.budget, `${path}.budget`, F.budget.min, F.budget.max, F.budget.default ?? 2);
  const fallback = { pool: null, deny: null, hash_key: null, tag: null };
  if (h.fallback === undefined) {
    c.add(`${path}.fallback`, "missing: the decision when the hook does not answer within its budget, throws or is not registered ({ pool: NAME }, { deny: STATUS }, or {} for the route's pool)");
    return { name, budget_ms, fallback };
  }
  const d = toDecision(h.fallback);
  if (isProblem(d)) {
    c.add(d.field ? `${path}.fallback.${d.field}` : `${path}.fallback`, d.message);
    return { name, budget_ms, fallback };
  }
  if (d.pool !== null) poolRef(c, d.pool, `${path}.fallback.pool`, pools);
  return { name, budget_ms, fallback: d };
}

/** A route without conditions: it matches every request. */
const catchAll = (r: RouteConfig): boolean =>
  r.host === null && r.path === null && r.methods === null && r.headers.length === 0 && r.query.length === 0 && r.cookies.length === 0 && r.source.length === 0;

/** `http` of a listener: limits and forwarding headers, with defaults. */
function checkLimits(c: Checker, v: unknown, path: string): Omit<ResolvedListenerHttp, 'routes'> {
  const d = DEFAULTS.http;
  const out: Omit<ResolvedListenerHttp, 'routes'> = { ...d };
  if (v === undefined) return out;
  const h = c.object(v, path, `an object with keys ${HTTP_KEYS.join(', ')}`);
  if (!h) return out;
  c.keys(h, HTTP_KEYS, path);
  const F = LISTENER_HTTP.fields;
  out.max_header_bytes = c.size(h.max_header_size, `${path}.max_header_size`, F.max_header_size.min, F.max_header_size.max, d.max_header_bytes);
  out.max_headers = c.int(h.max_headers, `${path}.max_headers`, F.max_headers.min, F.max_headers.max, d.max_headers);
  out.header_read_timeout_ms = c.duration(h.header_read_timeout, `${path}.header_read_timeout`, F.header_read_timeout.min, F.header_read_timeout.max, d.header_read_timeout_ms);
  out.request_timeout_ms = c.duration(h.request_timeout, `${path}.request_timeout`, F.request_timeout.min, F.request_timeout.max, d.request_timeout_ms);
  out.x_forwarded = c.bool(h.x_forwarded, `${path}.x_forwarded`, d.x_forwarded);
  out.forwarded = c.bool(h.forwarded, `${path}.forwarded`, d.forwarded);
  if (h.access_log_sample !== undefined) {
    const v = h.access_log_sample;
    if (typeof v === 'number' && v > 0 && v <= F.access_log_sample.max) out.access_log_sample = v;
    else c.add(`${path}.access_log_sample`, `expected a number greater than 0 and at most 1 (0.1 logs one request in ten), got ${describe(v)}`);
  }
  out.h2c = c.bool(h.h2c, `${path}.h2c`, d.h2c);
  out.max_concurrent_streams = c.int(h.max_concurrent_streams, `${path}.max_concurrent_streams`, F.max_concurrent_streams.min, F.max_concurrent_streams.max, d.max_concurrent_streams);
  return out;
}

/**
 * A listener's `protocol`, `pool`, `routes` and `http`, and the policy rules of an http listener
 * (`policy.rules.NAME`: routes placed before its own, so the first match among them wins). For
 * http, `pool` (when given) is appended as the final default route, and the data plane's `pool`
 * is the first forwarding route that matches everything (else the first forwarding route's).
 * @param pools the raw `pools` object, to check names (undefined when it is broken)
 * @param policy the listener's raw policy rules and the rate classes (undefined: none)
 */
export function checkListenerHttp(
  c: Checker,
  name: string,
  l: Obj,
  pools: Obj | undefined,
  policy?: { rules: unknown; classes: ReadonlySet<string> | undefined },
): Pick<ResolvedListener, 'protocol' | 'pool' | 'http'> {
  const path = `listeners.${name}`;
  const protocol = c.oneOf(l.protocol, `${path}.protocol`, PROTOCOLS, DEFAULTS.protocol);
  const ctx: RouteContext = { listener: name, pools, classes: policy?.classes };
  // Routes and limits are read whatever the protocol, so one run reports every problem.
  let routes: RouteConfig[] = [];
  if (l.routes !== undefined) {
    if (!Array.isArray(l.routes) || l.routes.length === 0) c.add(`${path}.routes`, `expected a non-empty list of routes, got ${describe(l.routes)}`);
    else routes = l.routes.map((r: unknown, i) => checkRoute(c, ctx, i, r, `${path}.routes[${i}]`)).filter((r) => r !== undefined);
  }
  const limits = checkLimits(c, l.http, `${path}.http`);
  if (protocol !== 'http') {
    // (A udp listener's extra keys are reported by `checkListenerUdp`.)
    if (protocol === 'tcp' && l.routes !== undefined) c.add(`${path}.routes`, 'routes need protocol: http (this listener is tcp, which forwards bytes without reading requests)');
    if (protocol === 'tcp' && l.http !== undefined) c.add(`${path}.http`, 'only for protocol: http (this listener is tcp)');
    return { protocol, pool: poolRef(c, l.pool, `${path}.pool`, pools), http: null };
  }
  if (l.sni_routes !== undefined) c.add(`${path}.sni_routes`, 'TLS passthrough routes connections of tcp listeners; an http listener routes requests (use routes with match.host, and tls to terminate)');
  if (l.pool !== undefined) {
    const dead = routes.findIndex(catchAll);
    if (dead >= 0) c.add(`${path}.pool`, `never used: ${path}.routes[${dead}] already matches every request (drop one of them)`);
    routes.push({ name: `${name}.default`, host: null, path: null, methods: null, headers: [], query: [], cookies: [], source: [], pool: poolRef(c, l.pool, `${path}.pool`, pools), answer: null, tag: null, rate_class: null, hash_key: null, request_headers: { remove: [], set: [], add: [] }, response_headers: { remove: [], set: [], add: [] }, max_body_bytes: null, hook: null });
  }
  const first = routes.findIndex(catchAll);
  const written = Array.isArray(l.routes) ? l.routes.length : 0;
  routes.forEach((r, i) => {
    if (first >= 0 && i > first && i < written) c.add(`${path}.routes[${i}]`, `never matches: ${path}.routes[${first}] before it matches every request (first match wins)`);
  });
  // Only routes written in the file can be hidden by a rule (the listener's `pool` route is a default).
  const rules = policyRoutes(c, ctx, l.pool, policy?.rules, written > 0);
  const all = [...rules, ...routes];
  if (all.length === 0 && l.routes === undefined) c.add(`${path}.routes`, 'missing: an http listener needs routes, a pool (its default route), policy rules, or some of them');
  all.forEach((r, i) => {
    const twin = all.findIndex((o) => o.name === r.name);
    if (twin < i && r.name !== '') c.add(i < rules.length ? `policy.rules.${name}[${i}].name` : `${path}.routes[${i - rules.length}].name`, `duplicate route name ${describe(r.name)} (a route or rule of this listener has it already)`);
  });
  const forwarding = all.filter((r) => r.pool !== null);
  if (all.length > 0 && forwarding.length === 0) c.add(`${path}.pool`, 'missing: every route and rule answers itself (deny, redirect); give the listener a pool or a route that forwards');
  return { protocol, pool: forwarding.find(catchAll)?.pool ?? forwarding[0]?.pool ?? '', http: { routes: all, ...limits } };
}

/** An http listener's policy rules, as routes. A rule that matches every request hides the
 * listener's routes (`routesAfter`), which is reported: first match wins. */
function policyRoutes(c: Checker, ctx: RouteContext, listenerPool: unknown, raw: unknown, routesAfter: boolean): RouteConfig[] {
  const path = `policy.rules.${ctx.listener}`;
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) return (c.add(path, `expected a list of rules, got ${describe(raw)}`), []);
  const rules = raw.map((r: unknown, i) => checkRoute(c, { ...ctx, policyPool: listenerPool ?? null }, i, r, `${path}[${i}]`)).filter((r) => r !== undefined);
  const all = rules.findIndex(catchAll);
  if (all >= 0 && all < rules.length - 1) c.add(`${path}[${all + 1}]`, `never matches: ${path}[${all}] before it matches every request (first match wins)`);
  else if (all >= 0 && routesAfter) {
    c.add(`${path}[${all}]`, `matches every request, so listeners.${ctx.listener}'s routes never match (give it a match, or drop the routes)`);
  }
  return rules;
}

/**
 * What a pool adds for HTTP: the request key (from `poolHashKey`), `sticky` (its secret read
 * the way `admin.token` is), `host_header`, `keepalive`, `passive.consecutive_5xx`.
 * @param base directory a relative `sticky.secret_file` is read from
 */
export function checkPoolHttp(c: Checker, path: string, p: Obj, key: RequestKey | null, base: string): ResolvedPoolHttp {
  const d = DEFAULTS.pool_http;
  const out: ResolvedPoolHttp = { key, sticky: null, host: null, ...d };
  if (p.sticky !== undefined) out.sticky = checkSticky(c, p.sticky, `${path}.sticky`, base);
  if (p.host_header !== undefined) out.host = text(c, p.host_header, `${path}.host_header`, /^[\x21-\x7e]{1,255}$/, 'a Host value such as api.internal or api.internal:8080') ?? null;
  if (p.keepalive !== undefined) {
    const k = c.object(p.keepalive, `${path}.keepalive`, `an object with keys ${KEEPALIVE_KEYS.join(', ')}`);
    if (k) {
      c.keys(k, KEEPALIVE_KEYS, `${path}.keepalive`);
      const F = KEEPALIVE.fields;
      out.max_idle_per_backend = c.int(k.max_idle_per_backend, `${path}.keepalive.max_idle_per_backend`, F.max_idle_per_backend.min, F.max_idle_per_backend.max, d.max_idle_per_backend);
      out.idle_timeout_ms = c.duration(k.idle_timeout, `${path}.keepalive.idle_timeout`, F.idle_timeout.min, F.idle_timeout.max, d.idle_timeout_ms);
      out.http2_connections = c.int(k.http2_connections, `${path}.keepalive.http2_connections`, F.http2_connections.min, F.http2_connections.max, d.http2_connections);
      out.http2_streams = c.int(k.http2_streams, `${path}.keepalive.http2_streams`, F.http2_streams.min, F.http2_streams.max, d.http2_streams);
    }
  }
  out.http2 = c.bool(p.http2, `${path}.http2`, d.http2);
  // The rest of `passive` is read (and its keys checked) with the pool.
  if (isObject(p.passive)) {
    out.eject_after_5xx = c.int(p.passive.consecutive_5xx, `${path}.passive.consecutive_5xx`, PASSIVE.fields.consecutive_5xx.min, PASSIVE.fields.consecutive_5xx.max, d.eject_after_5xx);
    if (p.passive.error_rate !== undefined) out.error_rate = checkErrorRate(c, p.passive.error_rate, `${path}.passive.error_rate`);
  }
  return out;
}

/** `passive.error_rate`: the share of 5xx over a window that ejects. */
function checkErrorRate(c: Checker, v: unknown, path: string): ErrorRate | null {
  const F = PASSIVE.fields.error_rate.fields;
  const r = c.object(v, path, 'an object such as { percent: 50, window: "10s", min_requests: 20 }');
  if (!r) return null;
  c.keys(r, Object.keys(F), path);
  if (r.percent === undefined) c.add(`${path}.percent`, 'missing (expected a percentage 1..100, e.g. 50)');
  const d = DEFAULTS.error_rate;
  return {
    percent: c.int(r.percent, `${path}.percent`, F.percent.min, F.percent.max, 50),
    window_ms: c.duration(r.window, `${path}.window`, F.window.min, F.window.max, d.window_ms),
    min_requests: c.int(r.min_requests, `${path}.min_requests`, F.min_requests.min, F.min_requests.max, d.min_requests),
  };
}

function checkSticky(c: Checker, v: unknown, path: string, base: string): StickyConfig | null {
  const s = c.object(v, path, 'an object such as { cookie: "SY_STICKY", secret_env: "SY_STICKY_SECRET" }');
  if (!s) return null;
  c.keys(s, STICKY_KEYS, path);
  const cookie = s.cookie === undefined ? (c.add(`${path}.cookie`, 'missing (expected a cookie name such as SY_STICKY)'), undefined) : text(c, s.cookie, `${path}.cookie`, TOKEN, 'a cookie name (letters, digits and !#$%&\'*+.^_`|~-)');
  const secret = readSecret(c, s, path, { inline: 'secret', file: 'secret_file', env: 'secret_env' }, 'secret', base);
  if (secret === undefined) c.add(`${path}.secret`, 'missing: the cookie is an HMAC keyed by a secret every node shares; set secret, secret_file or secret_env (16+ characters)');
  let maxAge: number | null = null;
  if (s.max_age !== undefined) {
    const F = STICKY.fields.max_age;
    const ms = c.duration(s.max_age, `${path}.max_age`, F.min, F.max, -1);
    if (ms >= 0 && ms % 1000 !== 0) c.add(`${path}.max_age`, `expected whole seconds (Max-Age counts seconds), got ${describe(s.max_age)}`);
    else if (ms >= 0) maxAge = ms / 1000;
  }
  return cookie !== undefined && secret ? { cookie, secret, max_age_s: maxAge } : null;
}

/**
 * Rules between listeners and pools, once both are read: a tcp listener cannot use a pool whose
 * key is read from a request; a route's `hash_key` needs a pool with a hash algorithm.
 * @param keyed the algorithms that read `hash_key`
 * @param policyRules how many policy rules each http listener's routes begin with (for paths)
 */
export function checkHttpUse(c: Checker, listeners: readonly ResolvedListener[], pools: readonly ResolvedPool[], keyed: readonly Algorithm[], policyRules: (listener: string) => number = () => 0): void {
  const byName = new Map(pools.map((p) => [p.name, p]));
  for (const l of listeners) {
    if (l.protocol !== 'http') {
      l.rules.forEach((r, i) => {
        const pool = r.action === 'deny' ? undefined : byName.get(r.action.pool);
        if (r.hash_key !== null && pool && !keyed.includes(pool.algorithm)) {
          c.add(`policy.rules.${l.name}[${i}].hash_key`, `applies only to pools with ${keyed.join(' or ')}, but pool ${describe(pool.name)} uses ${describe(pool.algorithm)}`);
        }
      });
      for (const name of poolsOf(l)) {
        const key = byName.get(name)?.http.key ?? null;
        if (needsRequest(key)) {
          c.add(`pools.${name}.hash_key`, `${describe(formatKey(key!))} is read from HTTP requests, but listeners.${l.name} (protocol ${l.protocol}) uses pool ${describe(name)}; set protocol: http there, or hash source_ip`);
        }
      }
      continue;
    }
    const ruled = policyRules(l.name);
    l.http?.routes.forEach((r, i) => {
      const pool = r.pool === null ? undefined : byName.get(r.pool);
      if (r.hash_key !== null && pool && !keyed.includes(pool.algorithm)) {
        const at = i < ruled ? `policy.rules.${l.name}[${i}]` : `listeners.${l.name}.routes[${i - ruled}]`;
        c.add(`${at}.hash_key`, `applies only to pools with ${keyed.join(' or ')}, but pool ${describe(r.pool)} uses ${describe(pool.algorithm)}`);
      }
    });
  }
}
