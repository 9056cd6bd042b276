/**
 * The reader every config validator reports to (`validate.ts`, `tls.ts`,
 * `health/config.ts`): typed readers that record an issue with its path and
 * return a fallback, so one run reports every problem. Its own module so those
 * validators depend on it rather than on each other.
 */
import { isIPv6 } from 'node:net';
import type { ConfigIssue } from '../errors.js';
import { formatDuration, parseDuration } from './duration.js';
import { formatSize, parseSize } from './size.js';
import { parseHostPort, type HostPort } from '../dns/names.js';

/** A pool or listener name. */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export type Obj = Record<string, unknown>;

/** A validated socket address; `ip` is canonical so equal addresses compare equal. */
export interface Addr {
  ip: string;
  v6: boolean;
  port: number;
  /** Canonical `ip:port` handed to the data plane. */
  text: string;
  /** What the user wrote, quoted back in messages. */
  given: string;
}

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Describe a value for "expected X, got Y" messages. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v);
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `a ${typeof v}`;
}

/** Parse `a.b.c.d:port`, `[v6]:port` or `localhost:port`; a string result is the error. */
export function parseAddress(s: string, minPort: number): Addr | string {
  const bad = `expected "host:port" with an IP address, got ${describe(s)}`;
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
  if (!m) return s.split(':').length > 2 && !s.startsWith('[') ? `${bad} (write IPv6 addresses as "[::1]:port")` : bad;
  const [, v6host, host, portText = ''] = m;
  const port = Number(portText);
  let addr: Addr;
  if (v6host !== undefined) {
    // Zone ids ("%eth0") are rejected: the data plane parses std SocketAddr, which has none.
    if (!isIPv6(v6host) || v6host.includes('%')) return bad;
    const ip = new URL(`tcp://[${v6host}]`).hostname; // canonical form, e.g. [::1]
    addr = { ip, v6: true, port, text: `${ip}:${port}`, given: s };
  } else if (host === 'localhost' || (host !== undefined && IPV4.test(host))) {
    const ip = host === 'localhost' ? '127.0.0.1' : host;
    addr = { ip, v6: false, port, text: `${ip}:${port}`, given: s };
  } else {
    // The hint only helps for names; a malformed IPv4 literal gets the plain message.
    return /[a-z]/i.test(host ?? '') ? `${bad} (only IP literals and "localhost" are accepted here; host names are resolved in backend addresses only)` : bad;
  }
  if (port < minPort || port > 65535) return `expected "host:port" with a port ${minPort}..65535, got ${describe(s)}`;
  return addr;
}

/** Collects issues while reading values; every reader returns a fallback on error so checking continues. */
export class Checker {
  readonly issues: ConfigIssue[] = [];

  add(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  keys(obj: Obj, allowed: readonly string[], path: string): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        this.add(path ? `${path}.${key}` : key, `unknown key ${JSON.stringify(key)} (allowed: ${allowed.join(', ')})`);
      }
    }
  }

  object(v: unknown, path: string, what: string): Obj | undefined {
    if (isObject(v)) return v;
    this.add(path, `expected ${what}, got ${describe(v)}`);
    return undefined;
  }

  int(v: unknown, path: string, min: number, max: number, fallback: number): number {
    if (v === undefined) return fallback;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    this.add(path, `expected an integer ${min}..${max}, got ${describe(v)}`);
    return fallback;
  }

  bool(v: unknown, path: string, fallback: boolean): boolean {
    if (v === undefined) return fallback;
    if (typeof v === 'boolean') return v;
    this.add(path, `expected true or false, got ${describe(v)}`);
    return fallback;
  }

  oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[], fallback: T): T {
    if (v === undefined) return fallback;
    if (allowed.includes(v as T)) return v as T;
    this.add(path, `expected one of ${allowed.join(', ')}, got ${describe(v)}`);
    return fallback;
  }

  duration(v: unknown, path: string, minMs: number, maxMs: number, fallback: number): number {
    if (v === undefined) return fallback;
    const ms = parseDuration(v);
    if (typeof ms === 'string') {
      this.add(path, ms);
      return fallback;
    }
    if (ms >= minMs && ms <= maxMs) return ms;
    this.add(path, `expected a duration ${formatDuration(minMs)}..${formatDuration(maxMs)}, got ${describe(v)}`);
    return fallback;
  }

  /** A size in bytes (`16384`, `"16k"`) within min..max; `fallback` when absent or wrong (reported). */
  size<T extends number | null>(v: unknown, path: string, min: number, max: number, fallback: T): number | T {
    if (v === undefined) return fallback;
    const bytes = parseSize(v);
    if (typeof bytes === 'string') {
      this.add(path, bytes);
      return fallback;
    }
    if (bytes >= min && bytes <= max) return bytes;
    this.add(path, `expected a size ${formatSize(min)}..${formatSize(max)} (${min}..${max} bytes), got ${describe(v)}`);
    return fallback;
  }

  address(v: unknown, path: string, minPort: number): Addr | undefined {
    if (typeof v !== 'string') {
      this.add(path, v === undefined ? 'missing (expected "host:port")' : `expected a "host:port" string, got ${describe(v)}`);
      return undefined;
    }
    const addr = parseAddress(v, minPort);
    if (typeof addr === 'string') {
      this.add(path, addr);
      return undefined;
    }
    return addr;
  }

  /** A backend address: an IP address as `address` reads it, or `name:port` with a host name
   * to resolve (`ts/dns/`). */
  backendAddress(v: unknown, path: string): Addr | HostPort | undefined {
    if (typeof v === 'string') {
      const named = parseAddress(v, 1);
      if (typeof named === 'string' && v !== '' && !v.startsWith('[')) {
        const host = parseHostPort(v, 0);
        if (host && host.port === 0) {
          this.add(path, `expected "host:port" with a port 1..65535, got ${describe(v)}`);
          return undefined;
        }
        if (host) return host;
      }
    }
    return this.address(v, path, 1);
  }

  /** A non-empty object keyed by names; returns its entries with valid or invalid names (both are checked further). */
  named(v: unknown, path: string, what: string): [string, unknown][] {
    if (v === undefined) {
      this.add(path, `missing (expected an object of ${what} keyed by name)`);
      return [];
    }
    const obj = this.object(v, path, `an object of ${what} keyed by name`);
    if (!obj) return [];
    const entries = Object.entries(obj);
    if (entries.length === 0) this.add(path, `expected at least one entry in ${what}, got {}`);
    for (const [name] of entries) {
      if (!NAME.test(name)) this.add(`${path}.${name}`, `invalid name ${describe(name)} (expected 1-64 characters of A-Z a-z 0-9 _ . -)`);
    }
    return entries;
  }
}
