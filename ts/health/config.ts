/**
 * Validation of `health_check` sections (pool and per backend) into the
 * effective `ResolvedHealthCheck` of each backend. Called by
 * `ts/config/validate.ts`; every issue goes to its Checker, with its path.
 *
 * Two steps, so that issues point at what the user wrote: each section is read
 * on its own (types and ranges, reported at its own path), then the backend's
 * section is deep-merged over the pool's and the result is resolved (defaults
 * and cross-field rules such as timeout <= interval).
 */
import { isIP } from 'node:net';
import type { Checker } from '../config/checker.js';
import { DEFAULTS } from '../config/defaults.js';
import { HEALTH_CHECK, HEX_PATTERN, keysOf } from '../config/fields.js';
import type { HealthCheckMethod, HealthCheckType, ResolvedHealthCheck, ResolvedUdpCheck, StatusRange } from './types.js';

type Obj = Record<string, unknown>;

// Key lists from the declaration the JSON Schema is rendered from.
const CHECK_KEYS = keysOf(HEALTH_CHECK);
const HTTP_KEYS = keysOf(HEALTH_CHECK.fields.http);
const GRPC_KEYS = keysOf(HEALTH_CHECK.fields.grpc);
const TLS_KEYS = keysOf(HEALTH_CHECK.fields.tls);
const UDP_KEYS = keysOf(HEALTH_CHECK.fields.udp);
const TYPES: readonly HealthCheckType[] = ['tcp', 'http', 'tls', 'grpc', 'udp'];
/** The largest UDP payload (IPv4: 65,535 − 8 − 20): a probe must fit one datagram. */
const MAX_DATAGRAM = 65_507;
const HEX = new RegExp(HEX_PATTERN);
/** Longest `grpc.service` accepted (a fully-qualified protobuf service name is far shorter). */
const MAX_SERVICE = 1024;
const METHODS: readonly HealthCheckMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
const HOUR_MS = 3_600_000;
/** RFC 9110 token: what a header name may contain. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** No control characters or spaces: they would break the request line or a header. */
const PRINTABLE = /^[\x21-\x7e]+$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** One section as written, checked for types and ranges; absent or invalid fields are left out. */
interface PartialCheck {
  type?: HealthCheckType;
  interval_ms?: number;
  timeout_ms?: number;
  jitter_ms?: number;
  rise?: number;
  fall?: number;
  down_interval_ms?: number;
  port?: number;
  http?: {
    method?: HealthCheckMethod;
    path?: string;
    host?: string;
    headers?: Record<string, string>;
    expect_status?: StatusRange[];
    expect_body?: string;
    tls?: boolean;
    sni?: string;
  };
  grpc?: { service?: string; tls?: boolean; authority?: string };
  /** Bytes as lowercase hex, whichever way they were written (`send`/`send_hex`, `expect`/`expect_hex`);
   * null: written but invalid (already reported). */
  udp?: { send?: string | null; expect?: string | null };
  tls?: { sni?: string; verify?: boolean; ca?: string };
}

/** The pool's section, read once and reused for each of its backends. */
export interface PoolHealthCheck {
  partial: PartialCheck | undefined;
  /** The pool's own effective check (what a backend without an override gets). */
  resolved: ResolvedHealthCheck | null;
  /** Cross-field issues already reported at the pool's path (`key|message`), not repeated per backend. */
  reported: Set<string>;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Copy of `base` with every defined field of `over` on top (undefined never erases a value). */
function overlay<T extends object>(base: T | undefined, over: T | undefined): T | undefined {
  if (!base || !over) return base ?? over;
  const out = { ...base } as Obj;
  for (const [k, v] of Object.entries(over)) if (v !== undefined) out[k] = v;
  return out as T;
}

function str(c: Checker, v: unknown, path: string, ok: (s: string) => boolean, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string' && ok(v)) return v;
  c.add(path, `expected ${what}, got ${show(v)}`);
  return undefined;
}

const opt = <T>(v: unknown, read: () => T): T | undefined => (v === undefined ? undefined : read());

const sni = (c: Checker, v: unknown, path: string) =>
  str(c, v, path, (s) => HOSTNAME.test(s) && isIP(s) === 0, 'a DNS name such as "api.internal" (not an IP address: SNI carries names only)');

/** `[200, "204", "300-399"]` → ranges; codes 100..599. */
function statuses(c: Checker, v: unknown, path: string): StatusRange[] | undefined {
  const what = 'a non-empty list of status codes or ranges such as [200, "300-399"]';
  if (!Array.isArray(v) || v.length === 0) {
    c.add(path, `expected ${what}, got ${Array.isArray(v) ? '[]' : show(v)}`);
    return undefined;
  }
  const ranges: StatusRange[] = [];
  v.forEach((item: unknown, i) => {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(typeof item === 'number' ? String(item) : typeof item === 'string' ? item : '');
    const from = Number(m?.[1]);
    const to = m?.[2] === undefined ? from : Number(m[2]);
    if (!m || from < 100 || to > 599 || from > to) c.add(`${path}[${i}]`, `expected a status code 100..599 or a range such as "200-399", got ${show(item)}`);
    else ranges.push({ from, to });
  });
  return ranges.length === v.length ? ranges : undefined;
}

function headers(c: Checker, v: unknown, path: string): Record<string, string> | undefined {
  const h = c.object(v, path, 'an object of header names to string values');
  if (!h) return undefined;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (!TOKEN.test(name)) c.add(`${path}.${name}`, `invalid header name ${show(name)}`);
    else if (name.toLowerCase() === 'host') c.add(`${path}.${name}`, 'set the Host header with http.host');
    else if (typeof value !== 'string' || /[\r\n\0]/.test(value)) c.add(`${path}.${name}`, `expected a string without line breaks, got ${show(value)}`);
    else out[name] = value;
  }
  return out;
}

/**
 * One datagram payload of a `udp` check, given as text (`key`) or hex (`key_hex`), as lowercase
 * hex; undefined when neither is given, null when it is invalid (reported).
 */
function udpBytes(c: Checker, u: Obj, path: string, key: 'send' | 'expect', max: number): string | null | undefined {
  if (u[key] === undefined && u[`${key}_hex`] === undefined) return undefined;
  const text = str(c, u[key], `${path}.${key}`, (s) => s.length > 0, 'a non-empty string');
  const hex = str(c, u[`${key}_hex`], `${path}.${key}_hex`, (s) => HEX.test(s), 'hex bytes such as "12 34 01 00" (pairs of hex digits, spaces allowed)');
  if (u[key] !== undefined && u[`${key}_hex`] !== undefined) {
    c.add(`${path}.${key}_hex`, `give ${key} or ${key}_hex, not both`);
    return null;
  }
  const bytes = text !== undefined ? Buffer.from(text, 'utf8') : hex !== undefined ? Buffer.from(hex.replace(/\s+/g, ''), 'hex') : undefined;
  if (bytes && bytes.length > max) {
    c.add(`${path}.${text !== undefined ? key : `${key}_hex`}`, `at most ${max} bytes (one datagram), got ${bytes.length}`);
    return null;
  }
  return bytes ? bytes.toString('hex') : null;
}

/** A sub-section (`http`, `grpc`, `tls`, `udp`) at `path`, its keys checked; undefined when absent or not an object. */
function subObject(c: Checker, v: unknown, path: string, keys: readonly string[]): Obj | undefined {
  if (v === undefined) return undefined;
  const x = c.object(v, path, `an object with keys ${keys.join(', ')}`);
  if (x) c.keys(x, keys, path);
  return x;
}

/** Read one `health_check` section (pool or backend) at `path`. */
function readSection(c: Checker, raw: unknown, path: string): PartialCheck | undefined {
  const h = c.object(raw, path, `an object with keys ${CHECK_KEYS.join(', ')}`);
  if (!h) return undefined;
  c.keys(h, CHECK_KEYS, path);
  const at = (k: string) => `${path}.${k}`;
  const partial: PartialCheck = {
    type: opt(h.type, () => c.oneOf(h.type, at('type'), TYPES, undefined as never)),
    interval_ms: opt(h.interval, () => c.duration(h.interval, at('interval'), 1, HOUR_MS, undefined as never)),
    timeout_ms: opt(h.timeout, () => c.duration(h.timeout, at('timeout'), 1, HOUR_MS, undefined as never)),
    jitter_ms: opt(h.jitter, () => c.duration(h.jitter, at('jitter'), 0, HOUR_MS, undefined as never)),
    rise: opt(h.rise, () => c.int(h.rise, at('rise'), 1, 100, undefined as never)),
    fall: opt(h.fall, () => c.int(h.fall, at('fall'), 1, 100, undefined as never)),
    down_interval_ms: opt(h.down_interval, () => c.duration(h.down_interval, at('down_interval'), 1, HOUR_MS, undefined as never)),
    port: opt(h.port, () => c.int(h.port, at('port'), 1, 65535, undefined as never)),
  };
  const hp = at('http');
  const x = subObject(c, h.http, hp, HTTP_KEYS);
  if (x) {
    partial.http = {
      method: opt(x.method, () => c.oneOf(x.method, `${hp}.method`, METHODS, undefined as never)),
      path: str(c, x.path, `${hp}.path`, (s) => s.startsWith('/') && PRINTABLE.test(s) && s.length <= 2048, 'a path starting with "/" (no spaces, at most 2048 characters)'),
      host: str(c, x.host, `${hp}.host`, (s) => PRINTABLE.test(s) && s.length <= 255, 'a non-empty Host header value without spaces'),
      headers: opt(x.headers, () => headers(c, x.headers, `${hp}.headers`)),
      expect_status: opt(x.expect_status, () => statuses(c, x.expect_status, `${hp}.expect_status`)),
      expect_body: str(c, x.expect_body, `${hp}.expect_body`, (s) => s.length > 0, 'a non-empty substring'),
      tls: opt(x.tls, () => c.bool(x.tls, `${hp}.tls`, undefined as never)),
      sni: sni(c, x.sni, `${hp}.sni`),
    };
  }
  const gp = at('grpc');
  const g = subObject(c, h.grpc, gp, GRPC_KEYS);
  if (g) {
    partial.grpc = {
      // "" is a valid service: the whole server (the default).
      service: str(c, g.service, `${gp}.service`, (s) => (s === '' || PRINTABLE.test(s)) && s.length <= MAX_SERVICE, `a service name such as "grpc.health.v1.Health" or "" (no spaces, at most ${MAX_SERVICE} characters)`),
      tls: opt(g.tls, () => c.bool(g.tls, `${gp}.tls`, undefined as never)),
      authority: str(c, g.authority, `${gp}.authority`, (s) => PRINTABLE.test(s) && s.length <= 255, 'a non-empty :authority value such as "api.internal:50051" without spaces'),
    };
  }
  const up = at('udp');
  const u = subObject(c, h.udp, up, UDP_KEYS);
  if (u) partial.udp = { send: udpBytes(c, u, up, 'send', MAX_DATAGRAM), expect: udpBytes(c, u, up, 'expect', MAX_DATAGRAM) };
  const tp = at('tls');
  const t = subObject(c, h.tls, tp, TLS_KEYS);
  if (t) {
    partial.tls = {
      sni: sni(c, t.sni, `${tp}.sni`),
      verify: opt(t.verify, () => c.bool(t.verify, `${tp}.verify`, undefined as never)),
      ca: str(c, t.ca, `${tp}.ca`, (s) => s.length > 0, 'the path of a PEM CA bundle'),
    };
  }
  return partial;
}

/** Deep merge: the backend's fields over the pool's; `http.headers` are merged by name. */
function merge(pool: PartialCheck | undefined, backend: PartialCheck | undefined): PartialCheck | undefined {
  const out = overlay(pool, backend);
  if (!out || !pool || !backend) return out;
  out.http = overlay(pool.http, backend.http);
  out.grpc = overlay(pool.grpc, backend.grpc);
  // send/send_hex (and expect/expect_hex) are one field each once read, so a backend's send_hex replaces the pool's send.
  out.udp = overlay(pool.udp, backend.udp);
  if (out.http && pool.http?.headers && backend.http?.headers) out.http.headers = { ...pool.http.headers, ...backend.http.headers };
  out.tls = overlay(pool.tls, backend.tls);
  return out;
}

/** Fill in defaults and apply the cross-field rules; issues are `[key relative to the section, message]`. */
function resolve(p: PartialCheck): [ResolvedHealthCheck, [string, string][]] {
  const d = DEFAULTS.health_check;
  const issues: [string, string][] = [];
  const type = p.type ?? d.type;
  const interval = p.interval_ms ?? d.interval_ms;
  // Defaults follow a short interval down, so `interval: 500ms` alone is valid.
  const timeout = p.timeout_ms ?? Math.min(d.timeout_ms, interval);
  const jitter = p.jitter_ms ?? Math.round((interval * d.jitter_percent) / 100);
  if (timeout > interval) issues.push(['timeout', `must be at most interval (${interval} ms), got ${timeout} ms`]);
  if (jitter > interval) issues.push(['jitter', `must be at most interval (${interval} ms), got ${jitter} ms`]);
  const useTls = type === 'tls' || (type === 'http' && p.http?.tls === true) || (type === 'grpc' && p.grpc?.tls === true);
  if (p.http && type !== 'http') issues.push(['http', `applies only to type http, but the type is ${show(type)}`]);
  if (p.grpc && type !== 'grpc') issues.push(['grpc', `applies only to type grpc, but the type is ${show(type)}`]);
  if (p.udp && type !== 'udp') issues.push(['udp', `applies only to type udp, but the type is ${show(type)}`]);
  let udp: ResolvedUdpCheck | null = null;
  if (type === 'udp') {
    if (p.udp?.send === undefined) issues.push(['udp.send', 'type udp needs the datagram to send: udp.send (text) or udp.send_hex (bytes)']);
    udp = { send_hex: p.udp?.send ?? '', expect_hex: p.udp?.expect ?? null };
  }
  const without = type === 'http' ? ' without http.tls' : type === 'grpc' ? ' without grpc.tls' : '';
  if (p.tls && !useTls) issues.push(['tls', `applies only to type tls, or http with http.tls: true, or grpc with grpc.tls: true; the type is ${show(type)}${without}`]);
  if (p.http?.sni !== undefined && p.http.tls !== true) issues.push(['http.sni', 'applies only with http.tls: true']);
  const method = p.http?.method ?? d.method;
  if (p.http?.expect_body !== undefined && method === 'HEAD') issues.push(['http.expect_body', 'a HEAD answer has no body; use GET']);
  const check: ResolvedHealthCheck = {
    type,
    interval_ms: interval,
    timeout_ms: timeout,
    jitter_ms: jitter,
    rise: p.rise ?? d.rise,
    fall: p.fall ?? d.fall,
    down_interval_ms: p.down_interval_ms ?? interval,
    port: p.port ?? null,
    http:
      type === 'http'
        ? {
            method,
            path: p.http?.path ?? d.path,
            host: p.http?.host ?? null,
            headers: { ...p.http?.headers },
            expect_status: (p.http?.expect_status ?? d.expect_status).map((r) => ({ ...r })),
            expect_body: p.http?.expect_body ?? null,
          }
        : null,
    grpc: type === 'grpc' ? { service: p.grpc?.service ?? '', authority: p.grpc?.authority ?? null } : null,
    udp,
    tls: useTls ? { sni: p.http?.sni ?? p.tls?.sni ?? null, verify: p.tls?.verify ?? d.verify, ca: p.tls?.ca ?? null } : null,
  };
  return [check, issues];
}

/** Read `pools.NAME.health_check` (undefined when absent) at `path`. */
export function poolHealthCheck(c: Checker, raw: unknown, path: string): PoolHealthCheck {
  const result: PoolHealthCheck = { partial: undefined, resolved: null, reported: new Set() };
  if (raw === undefined) return result;
  result.partial = readSection(c, raw, path);
  if (!result.partial) return result;
  const [check, issues] = resolve(result.partial);
  for (const [key, message] of issues) {
    c.add(`${path}.${key}`, message);
    result.reported.add(`${key}|${message}`);
  }
  result.resolved = check;
  return result;
}

/** The effective check of one backend: its `health_check` (at `path`) merged over the pool's; null when neither has one. */
export function backendHealthCheck(c: Checker, pool: PoolHealthCheck, raw: unknown, path: string): ResolvedHealthCheck | null {
  if (raw === undefined) return pool.resolved && structuredClone(pool.resolved);
  const own = readSection(c, raw, path);
  const merged = merge(pool.partial, own);
  if (!merged) return null;
  const [check, issues] = resolve(merged);
  // A rule the pool already breaks is reported once, at the pool.
  for (const [key, message] of issues) if (!pool.reported.has(`${key}|${message}`)) c.add(`${path}.${key}`, message);
  return check;
}
