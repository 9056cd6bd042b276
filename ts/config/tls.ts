/**
 * TLS settings: termination per listener, SNI passthrough routes, TLS to
 * backends. Certificates are read and checked here (the file exists, parses,
 * the key fits, expiry, which names it serves); their PEM contents go to the
 * data plane only in the engine projection, so private keys never sit in
 * `lb.config` (which the admin API may show).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { BackendTlsConfig as EngineBackendTls, TlsConfig } from '../binding/types.generated.js';
import type { Checker } from './checker.js';
import type { Duration } from './duration.js';
import { BACKEND_TLS, LISTENER_TLS, keysOf } from './fields.js';

/** TLS termination as written in a config. */
export interface ListenerTlsConfig {
  /** The first is the default certificate. */
  certificates: { cert: string; key: string; names?: string[] }[];
  /** Refuse clients without SNI or with an unknown name. Default false. */
  strict_sni?: boolean;
  /** ALPN protocols offered, e.g. `["h2", "http/1.1"]`. Default none. */
  alpn?: string[];
  /** Lowest TLS version accepted: `"1.2"` (default) or `"1.3"`. */
  min_version?: '1.2' | '1.3';
  /** Session tickets and a session cache. Default true. */
  session_resumption?: boolean;
  /** Close clients that do not finish the handshake in time. Default `"10s"`. */
  handshake_timeout?: Duration;
  /** Refuse expired certificates instead of warning. Default false. */
  strict?: boolean;
}

/** TLS from the balancer to a pool's backends. */
export interface BackendTlsConfig {
  /** Name sent as SNI and verified (default: the backend's IP). */
  sni?: string;
  /** CA bundle (PEM file) to verify backends with. Default: the system bundle. */
  ca?: string;
  /** Verify the backend's certificate. Default true. */
  verify?: boolean;
}

/** One certificate after checking. */
export interface ResolvedCertificate {
  cert: string;
  key: string;
  /** Names it serves (from `names`, else the certificate's DNS SANs, else its CN). */
  names: string[];
  /** True when `names` was given; otherwise they are re-read from the file on every reload. */
  names_explicit: boolean;
  /** ISO time the certificate expires. */
  not_after: string;
  expired: boolean;
}

export interface ResolvedListenerTls {
  certificates: ResolvedCertificate[];
  strict_sni: boolean;
  alpn: string[];
  min_version: '1.2' | '1.3';
  session_resumption: boolean;
  handshake_timeout_ms: number;
  strict: boolean;
}

export interface ResolvedBackendTls {
  sni: string | null;
  /** Absolute path of the CA bundle, or null when not verifying. */
  ca: string | null;
  verify: boolean;
}

const TLS_KEYS = keysOf(LISTENER_TLS);
const CERT_KEYS = keysOf(LISTENER_TLS.fields.certificates.items);
const BACKEND_TLS_KEYS = keysOf(BACKEND_TLS);
const SYSTEM_CA = '/etc/ssl/certs/ca-certificates.crt';
const HOSTNAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** The directory relative paths are resolved against: the config file's, else the cwd. */
export function baseDir(source: string): string {
  return existsSync(source) ? dirname(resolve(source)) : process.cwd();
}

function abs(p: string, base: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

/** The names a certificate serves: DNS SANs, else its CN. */
function certNames(x: X509Certificate): string[] {
  const sans = (x.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  if (sans.length) return sans;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

/** Read and check one certificate/key pair; problems are added at `path`. */
function checkCertificate(c: Checker, raw: unknown, path: string, base: string, strict: boolean): ResolvedCertificate | undefined {
  const o = c.object(raw, path, 'a certificate such as { cert: "fullchain.pem", key: "key.pem" }');
  if (!o) return undefined;
  c.keys(o, CERT_KEYS, path);
  if (typeof o.cert !== 'string' || typeof o.key !== 'string') {
    c.add(path, `expected cert and key file paths, got cert ${JSON.stringify(o.cert)} and key ${JSON.stringify(o.key)}`);
    return undefined;
  }
  const cert = abs(o.cert, base);
  const key = abs(o.key, base);
  let x: X509Certificate;
  try {
    x = new X509Certificate(readFileSync(cert));
  } catch (e) {
    c.add(`${path}.cert`, `${cert}: ${e instanceof Error && 'code' in e && e.code === 'ENOENT' ? 'no such file' : `not a readable PEM certificate (${(e as Error).message})`}`);
    return undefined;
  }
  try {
    const k = createPrivateKey(readFileSync(key));
    if (!x.checkPrivateKey(k)) {
      c.add(`${path}.key`, `${key}: this key does not match the certificate ${cert}`);
      return undefined;
    }
  } catch (e) {
    c.add(`${path}.key`, `${key}: ${e instanceof Error && 'code' in e && e.code === 'ENOENT' ? 'no such file' : `not a readable PEM private key (${(e as Error).message})`}`);
    return undefined;
  }
  const notAfter = new Date(x.validTo);
  const expired = notAfter.getTime() < Date.now();
  if (expired && strict) c.add(`${path}.cert`, `${cert}: the certificate expired on ${notAfter.toISOString()} (strict: true refuses it)`);
  let names = certNames(x);
  const names_explicit = o.names !== undefined;
  if (o.names !== undefined) {
    if (!Array.isArray(o.names) || !o.names.every((n) => typeof n === 'string' && HOSTNAME.test(n))) {
      c.add(`${path}.names`, `expected a list of host names such as ["api.example.com", "*.example.com"], got ${JSON.stringify(o.names)}`);
    } else {
      names = o.names.map((n: string) => n.toLowerCase());
    }
  }
  return { cert, key, names, names_explicit, not_after: notAfter.toISOString(), expired };
}

/** Validate a listener's `tls` section. */
export function listenerTls(c: Checker, raw: unknown, path: string, base: string): ResolvedListenerTls | null {
  if (raw === undefined) return null;
  const t = c.object(raw, path, `an object with keys ${TLS_KEYS.join(', ')}`);
  if (!t) return null;
  c.keys(t, TLS_KEYS, path);
  const strict = c.bool(t.strict, `${path}.strict`, false);
  const certificates: ResolvedCertificate[] = [];
  if (!Array.isArray(t.certificates) || t.certificates.length === 0) {
    c.add(`${path}.certificates`, `expected a non-empty list of { cert, key }, got ${JSON.stringify(t.certificates)}`);
  } else {
    t.certificates.forEach((raw: unknown, i: number) => {
      const r = checkCertificate(c, raw, `${path}.certificates[${i}]`, base, strict);
      if (r) certificates.push(r);
    });
  }
  let alpn: string[] = [];
  if (t.alpn !== undefined) {
    if (!Array.isArray(t.alpn) || !t.alpn.every((p) => typeof p === 'string' && p.length > 0 && p.length < 256)) {
      c.add(`${path}.alpn`, `expected a list of protocol names such as ["h2", "http/1.1"], got ${JSON.stringify(t.alpn)}`);
    } else alpn = t.alpn as string[];
  }
  return {
    certificates,
    strict_sni: c.bool(t.strict_sni, `${path}.strict_sni`, false),
    alpn,
    min_version: c.oneOf(t.min_version, `${path}.min_version`, ['1.2', '1.3'] as const, '1.2'),
    session_resumption: c.bool(t.session_resumption, `${path}.session_resumption`, true),
    handshake_timeout_ms: c.duration(t.handshake_timeout, `${path}.handshake_timeout`, LISTENER_TLS.fields.handshake_timeout.min, LISTENER_TLS.fields.handshake_timeout.max, 10_000),
    strict,
  };
}

/** Validate `sni_routes`: `{ "name or *.domain": pool }`. */
export function sniRoutes(c: Checker, raw: unknown, path: string, pools: readonly string[]): { name: string; pool: string }[] | null {
  if (raw === undefined) return null;
  const o = c.object(raw, path, 'an object mapping server names to pools, such as { "api.example.com": "api" }');
  if (!o) return null;
  const routes: { name: string; pool: string }[] = [];
  for (const [name, pool] of Object.entries(o)) {
    if (!HOSTNAME.test(name)) c.add(`${path}.${name}`, `expected a host name or *.domain, got ${JSON.stringify(name)}`);
    else if (typeof pool !== 'string' || !pools.includes(pool)) c.add(`${path}.${name}`, `unknown pool ${JSON.stringify(pool)} (defined pools: ${pools.join(', ')})`);
    else routes.push({ name: name.toLowerCase(), pool });
  }
  return routes;
}

/** Validate a pool's `backend_tls`. */
export function backendTls(c: Checker, raw: unknown, path: string, base: string): ResolvedBackendTls | null {
  if (raw === undefined) return null;
  const o = c.object(raw, path, `an object with keys ${BACKEND_TLS_KEYS.join(', ')}`);
  if (!o) return null;
  c.keys(o, BACKEND_TLS_KEYS, path);
  const verify = c.bool(o.verify, `${path}.verify`, true);
  let sni: string | null = null;
  if (o.sni !== undefined) {
    if (typeof o.sni === 'string' && HOSTNAME.test(o.sni) && !o.sni.startsWith('*')) sni = o.sni;
    else c.add(`${path}.sni`, `expected a host name, got ${JSON.stringify(o.sni)}`);
  }
  let ca: string | null = null;
  if (o.ca !== undefined && (typeof o.ca !== 'string' || o.ca === '')) {
    c.add(`${path}.ca`, `expected the path of a PEM CA bundle, got ${JSON.stringify(o.ca)}`);
  } else if (verify) {
    ca = typeof o.ca === 'string' ? abs(o.ca, base) : SYSTEM_CA;
    try {
      new X509Certificate(readFileSync(ca));
    } catch (e) {
      c.add(`${path}.ca`, `${ca}: ${e instanceof Error && 'code' in e && e.code === 'ENOENT' ? 'no such file' : 'not a readable PEM certificate bundle'}`);
    }
  } else if (o.ca !== undefined) {
    c.add(`${path}.ca`, 'has no effect with verify: false');
  }
  return { sni, ca, verify };
}

/** The names of a PEM certificate, or undefined if it does not parse (the data plane reports that). */
function safeNames(pem: string): string[] | undefined {
  try {
    return certNames(new X509Certificate(pem));
  } catch {
    return undefined;
  }
}

/** The data-plane view of a listener's TLS: the PEM contents, read now. */
export function engineListenerTls(t: ResolvedListenerTls): TlsConfig {
  return {
    certificates: t.certificates.map((x) => {
      const cert_pem = readFileSync(x.cert, 'utf8');
      // A renewed certificate may cover other names: unless they were configured, read them again.
      const names = x.names_explicit ? x.names : safeNames(cert_pem) ?? x.names;
      return { names, cert_pem, key_pem: readFileSync(x.key, 'utf8'), source: x.cert };
    }),
    strict_sni: t.strict_sni,
    alpn: t.alpn,
    min_version: t.min_version,
    session_resumption: t.session_resumption,
    handshake_timeout_ms: t.handshake_timeout_ms,
  };
}

/** The data-plane view of a pool's backend TLS. */
export function engineBackendTls(t: ResolvedBackendTls): EngineBackendTls {
  return { sni: t.sni, ca_pem: t.ca ? readFileSync(t.ca, 'utf8') : null, verify: t.verify };
}
