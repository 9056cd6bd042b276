/**
 * Every field of the configuration file, declared once: its type, range,
 * allowed values, default and a one-line description. The validators take their
 * key lists and ranges from here (`validate.ts`, `tls.ts`, `health/config.ts`),
 * and `json-schema.ts` turns the same tree into the JSON Schema that editors use
 * (`schema/switchyard.schema.json`, written by `scripts/gen-schema.mjs`). Rules
 * that span fields (timeout ≤ interval, pool options per algorithm, files that
 * must exist) stay in the validators; the schema describes them in words.
 */
import { ALGORITHM_INFO, HASH_KEYS, HOOK_LIMITS, LIMITS } from '../binding/catalog.generated.js';
import { DEFAULTS } from './defaults.js';
import { formatDuration } from './duration.js';
import { formatSize } from './size.js';
import { DNS_DEFAULTS } from '../dns/defaults.js';
import { SRV_NAME_PATTERN } from '../dns/names.js';
import { ETCD_DEFAULTS } from '../etcd/defaults.js';

/** An integer in `min..max`. */
export interface IntField {
  kind: 'int';
  min: number;
  max: number;
  default?: number;
  doc: string;
}
/** A number `> exclusiveMin` (or `≥ min`) and `≤ max`. */
export interface NumberField {
  kind: 'number';
  exclusiveMin?: number;
  min?: number;
  max: number;
  default?: number;
  doc: string;
}
export interface BoolField {
  kind: 'bool';
  default?: boolean;
  doc: string;
}
/** One of a fixed list of strings. */
export interface EnumField {
  kind: 'enum';
  values: readonly string[];
  default?: string;
  doc: string;
}
/** A duration (`"250ms"`, `"2s"`, or 0) in `min..max` milliseconds. */
export interface DurationField {
  kind: 'duration';
  min: number;
  max: number;
  default?: number;
  doc: string;
}
export interface StringField {
  kind: 'string';
  /** A JSON Schema (ECMA-262) pattern the whole value must match. */
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  default?: string;
  doc: string;
}
/** `host:port` with an IP literal or `localhost` (or, with `hostNames`, a DNS name), port `minPort..65535`. */
export interface AddressField {
  kind: 'address';
  minPort: number;
  /** A host name is accepted too and resolved by the control plane (backend addresses). */
  hostNames?: boolean;
  default?: string;
  doc: string;
}
/** An object with exactly these keys. */
export interface ObjectField {
  kind: 'object';
  fields: Fields;
  required?: readonly string[];
  doc: string;
}
/** An object keyed by names the user picks. */
export interface MapField {
  kind: 'map';
  keyPattern: string;
  value: Field;
  minEntries?: number;
  doc: string;
}
export interface ListField {
  kind: 'list';
  items: Field;
  minItems?: number;
  doc: string;
}
/** A size in bytes (`16384`) or with a unit (`"16k"`, `"1m"`), `min..max` bytes. */
export interface SizeField {
  kind: 'size';
  min: number;
  max: number;
  default?: number;
  doc: string;
}
/** Exactly this value (e.g. `true` for "the header is present"). */
export interface ConstField {
  kind: 'const';
  value: string | number | boolean;
  doc: string;
}
/** A value that may take one of several shapes (e.g. a status code or a range). */
export interface AnyOfField {
  kind: 'anyOf';
  of: readonly Field[];
  doc: string;
}

/** One field of the configuration. */
export type Field = IntField | NumberField | BoolField | EnumField | DurationField | SizeField | StringField | AddressField | ObjectField | MapField | ListField | AnyOfField | ConstField;
export type Fields = Readonly<Record<string, Field>>;

const HOUR_MS = 3_600_000;
/** Pool and listener names. */
export const NAME_PATTERN = '^[A-Za-z0-9_.-]{1,64}$';
/** A host name or `*.domain` (certificate names, SNI routes). */
export const HOST_PATTERN = '^(\\*\\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$';
/** A host name without a wildcard (SNI sent to a backend). */
const PLAIN_HOST_PATTERN = '^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$';
/** A DNS name (SNI of a health check): no wildcard. */
/** An HTTP field name (RFC 9110 token); also a cookie name (RFC 6265 token). */
export const TOKEN_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
/** What keyed algorithms hash: the connection's keys, or (HTTP listeners only) a part of the request. */
export const HASH_KEY_PATTERN = `^(${HASH_KEYS.join('|')}|path|(header|cookie):${TOKEN_PATTERN.slice(1, -1)})$`;
/** An HTTP field value: printable, no line breaks or other control characters but tab. */
export const FIELD_VALUE_PATTERN = '^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$';
/** A path (without query or fragment): starts with /, printable. */
export const PATH_PATTERN = '^/[\\x21-\\x22\\x24-\\x3e\\x40-\\x7e]*$';
/** An etcd key prefix: starts with /, printable. */
export const ETCD_PREFIX_PATTERN = '^/[\\x21-\\x7e]*$';
/** An etcd client URL (plain http: TLS and auth to etcd are not supported yet). */
export const ETCD_ENDPOINT_PATTERN = '^http://[^/\\s]+$';
const DNS_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\\.?$';

const int = (min: number, max: number, doc: string, dflt?: number): IntField => ({ kind: 'int', min, max, doc, ...(dflt === undefined ? {} : { default: dflt }) });
const bool = (doc: string, dflt?: boolean): BoolField => ({ kind: 'bool', doc, ...(dflt === undefined ? {} : { default: dflt }) });
const oneOf = (values: readonly string[], doc: string, dflt?: string): EnumField => ({ kind: 'enum', values, doc, ...(dflt === undefined ? {} : { default: dflt }) });
const duration = (min: number, max: number, doc: string, dflt?: number): DurationField => ({ kind: 'duration', min, max, doc, ...(dflt === undefined ? {} : { default: dflt }) });
const size = (min: number, max: number, doc: string, dflt?: number): SizeField => ({ kind: 'size', min, max, doc, ...(dflt === undefined ? {} : { default: dflt }) });
const str = (doc: string, rules: Omit<StringField, 'kind' | 'doc'> = {}): StringField => ({ kind: 'string', doc, ...rules });
const address = (minPort: number, doc: string, dflt?: string): AddressField => ({ kind: 'address', minPort, doc, ...(dflt === undefined ? {} : { default: dflt }) });
const object = <F extends Fields>(doc: string, fields: F, required: readonly (keyof F & string)[] = []): ObjectField & { fields: F } => ({ kind: 'object', doc, fields, required });

const D = DEFAULTS;
const H = DEFAULTS.health_check;

/** `tls` of a listener: TLS termination. */
export const LISTENER_TLS = object(
  'Terminate TLS here (certificates chosen by SNI). Excludes sni_routes.',
  {
    certificates: {
      kind: 'list',
      minItems: 1,
      doc: 'PEM certificate and key files, relative to the config file; the first is the default certificate.',
      items: object(
        'A certificate (chain, leaf first) and its private key.',
        {
          cert: str('Path of the PEM certificate chain.', { minLength: 1 }),
          key: str('Path of the PEM private key (PKCS#8, PKCS#1 or SEC1).', { minLength: 1 }),
          names: { kind: 'list', items: str('A host name or *.domain.', { pattern: HOST_PATTERN }), doc: 'Names served instead of those read from the certificate.' },
        },
        ['cert', 'key'],
      ),
    },
    strict_sni: bool('Refuse clients without SNI or with an unknown name.', false),
    alpn: { kind: 'list', items: str('A protocol name such as h2 or http/1.1.', { minLength: 1, maxLength: 255 }), doc: 'ALPN protocols offered, in preference order. http listeners: h2 and http/1.1 by default (HTTP/2 when the client chooses h2).' },
    min_version: oneOf(['1.2', '1.3'], 'Lowest TLS version accepted.', '1.2'),
    session_resumption: bool('Session tickets and a session cache.', true),
    handshake_timeout: duration(1, 300_000, 'Clients that do not finish the handshake in time are closed.', 10_000),
    strict: bool('Refuse an expired certificate instead of warning.', false),
  },
  ['certificates'],
);

/** `backend_tls` of a pool: TLS to the backends. */
export const BACKEND_TLS = object('TLS from the balancer to the backends (verification on by default).', {
  sni: str('Name sent as SNI and verified (default: the backend IP).', { pattern: PLAIN_HOST_PATTERN }),
  ca: str('PEM CA bundle to verify with (default: the system bundle).', { minLength: 1 }),
  verify: bool('Verify the backend certificate.', true),
});

/** Bytes written as hex: pairs of hex digits, whitespace allowed between them (udp health checks). */
export const HEX_PATTERN = '^\\s*(?:[0-9A-Fa-f]{2}\\s*)+$';

/** A `health_check` section (a pool's, or a backend's merged over it). */
export const HEALTH_CHECK = object('Active health check. A backend section is deep-merged over the pool section.', {
  type: oneOf(
    ['tcp', 'http', 'tls', 'grpc', 'udp'],
    'tcp: the connect succeeds; http: a request gets an expected answer; tls: the handshake succeeds; grpc: grpc.health.v1.Health/Check answers SERVING (h2c unless grpc.tls); udp: a datagram (udp.send) gets a reply (containing udp.expect), for pools of udp listeners.',
    H.type,
  ),
  interval: duration(1, HOUR_MS, 'Time from the end of one check to the start of the next.', H.interval_ms),
  timeout: duration(1, HOUR_MS, 'Give up on one check after this long; at most interval.', H.timeout_ms),
  jitter: duration(0, HOUR_MS, `A random 0..jitter is added to every interval; at most interval (default ${H.jitter_percent}% of interval).`),
  rise: int(1, 100, 'Consecutive successes that mark a backend up.', H.rise),
  fall: int(1, 100, 'Consecutive failures that mark a backend down.', H.fall),
  down_interval: duration(1, HOUR_MS, 'Interval while the backend is down (default: interval).'),
  port: int(1, 65535, "Port to check (default: the backend's port)."),
  http: object('Only for type http: the request and the answer expected.', {
    method: oneOf(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'], 'Request method.', H.method),
    path: str('Request path, starting with / (may carry a query string).', { pattern: '^/[\\x21-\\x7e]*$', maxLength: 2048 }),
    host: str('Host header (default: the probed ip:port).', { pattern: '^[\\x21-\\x7e]+$', maxLength: 255 }),
    headers: { kind: 'map', keyPattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", value: str('Header value, without line breaks.', { pattern: '^[^\\r\\n\\u0000]*$' }), doc: 'Extra request headers (set Host with http.host).' },
    expect_status: {
      kind: 'list',
      minItems: 1,
      doc: 'Accepted status codes or ranges, e.g. [200, "300-399"].',
      items: { kind: 'anyOf', doc: 'A status code or an inclusive range.', of: [int(100, 599, 'A status code.'), str('A code or a range such as "200-399".', { pattern: '^\\d{3}(-\\d{3})?$' })] },
    },
    expect_body: str('The body must contain this substring (first 64 KiB).', { minLength: 1 }),
    tls: bool('HTTPS to the backend, with the settings of health_check.tls.', false),
    sni: str('With http.tls: the server name to send and verify.', { pattern: DNS_PATTERN }),
  }),
  grpc: object('Only for type grpc: the standard gRPC health check call.', {
    service: str('Service whose status is asked; "" (the default) asks about the whole server.', { pattern: '^[\\x21-\\x7e]*$', maxLength: 1024, default: '' }),
    tls: bool('HTTP/2 over TLS (ALPN h2), with the settings of health_check.tls; false: h2c (prior knowledge).', false),
    authority: str('The :authority sent (default: the probed ip:port).', { pattern: '^[\\x21-\\x7e]+$', maxLength: 255 }),
  }),
  udp: object('Only for type udp (required there): the datagram sent and the reply expected. Give send or send_hex; an ICMP port unreachable fails the check at once.', {
    send: str('The datagram, as text (UTF-8, at most 65507 bytes).', { minLength: 1, maxLength: 65_507 }),
    send_hex: str('The datagram, as hex bytes (pairs of hex digits, spaces allowed), e.g. a DNS query.', { pattern: HEX_PATTERN }),
    expect: str('The reply must contain this text (default: any reply passes).', { minLength: 1 }),
    expect_hex: str('The reply must contain these bytes (hex, as send_hex).', { pattern: HEX_PATTERN }),
  }),
  tls: object('Only for type tls, or http/grpc with http.tls/grpc.tls: true.', {
    sni: str('Server name (a DNS name, not an IP) sent and verified.', { pattern: DNS_PATTERN }),
    verify: bool('Verify chain, dates and name.', H.verify),
    ca: str('PEM CA bundle to trust instead of the system roots.', { minLength: 1 }),
  }),
});

/** `passive` of a pool: ejection on real traffic. */
export const PASSIVE = object('Passive detection on real traffic, in the data plane.', {
  consecutive_failures: int(0, 1000, 'Failures in a row that eject a backend; 0 turns passive detection off.', D.passive.consecutive_failures),
  ejection_time: duration(1, HOUR_MS, 'First ejection time; doubles on each repeated ejection.', D.passive.ejection_ms),
  max_ejection_time: duration(1, 24 * HOUR_MS, 'Cap of the doubling; at least ejection_time.', D.passive.max_ejection_ms),
  max_ejection_percent: int(LIMITS.percent.min, LIMITS.percent.max, 'Never eject more than this percentage of the pool.', D.passive.max_ejection_percent),
  consecutive_5xx: int(0, 1000, 'HTTP listeners: 5xx responses in a row that eject a backend (with the ejection times above); 0: off.', D.pool_http.eject_after_5xx),
  error_rate: object(
    'HTTP listeners: eject a backend whose share of 5xx responses over a window reaches percent (judged when the window closes). Off when absent.',
    {
      percent: int(1, 100, 'Share of 5xx responses that ejects, percent.'),
      window: duration(100, HOUR_MS, 'Length of a window.', D.error_rate.window_ms),
      min_requests: int(1, 1_000_000, 'Fewer responses in a window decide nothing.', D.error_rate.min_requests),
    },
    ['percent'],
  ),
});

/** `sticky` of a pool: sticky sessions by a cookie Switchyard inserts (HTTP listeners). */
export const STICKY = object(
  'Pin a client to a backend with a cookie Switchyard sets: HMAC(secret, backend), so it reveals no address and every node with the secret reads it. Give the secret one way: secret, secret_file or secret_env.',
  {
    cookie: str('Cookie name (a token such as SY_STICKY).', { pattern: TOKEN_PATTERN, maxLength: 256 }),
    secret: str('HMAC key, 16..1024 printable ASCII characters (or secret_file, secret_env).', { pattern: '^[\\x21-\\x7e]{16,1024}$' }),
    secret_file: str('Read the key from this file (relative to the config file).', { minLength: 1 }),
    secret_env: str('Read the key from this environment variable.', { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }),
    max_age: duration(1_000, 365 * 24 * HOUR_MS, 'Cookie Max-Age, whole seconds (default: a session cookie).'),
  },
  ['cookie'],
);

/** `keepalive` of a pool: idle connections to the backends kept for reuse (HTTP listeners). */
export const KEEPALIVE = object('HTTP listeners: idle keep-alive connections to the backends kept for reuse.', {
  max_idle_per_backend: int(0, 10_000, 'Idle connections kept per backend; 0: a connection per request.', D.pool_http.max_idle_per_backend),
  idle_timeout: duration(1, HOUR_MS, "Close an idle backend connection after this; keep it below the backends' own keep-alive timeout (Node's is 5s).", D.pool_http.idle_timeout_ms),
  http2_connections: int(1, 1_000, 'Pools with http2: most HTTP/2 connections per backend, opened as streams need them.', D.pool_http.http2_connections),
  http2_streams: int(1, 10_000, "Pools with http2: streams in flight on one backend connection before another is opened (the backend's own limit applies too).", D.pool_http.http2_streams),
});

/** A header, query parameter or cookie condition of a route: equals, a regex, or present. */
const VALUE_MATCH: AnyOfField = {
  kind: 'anyOf',
  doc: 'A string: equals it; { regex }: matches it (whole value); true: present.',
  of: [
    str('The value equals this string (quote values YAML would read as true, numbers or null).'),
    object('The whole value matches this regular expression.', { regex: str('Rust regex syntax (no lookaround, no backreferences).', { minLength: 1 }) }, ['regex']),
    { kind: 'const', value: true, doc: 'Present, with any value.' },
  ],
};

/** Client address ranges. */
const SOURCES = (doc: string): AnyOfField => ({
  kind: 'anyOf',
  doc,
  of: [str('An IP address or CIDR.', { minLength: 1, maxLength: 64 }), { kind: 'list', minItems: 1, items: str('An IP address or CIDR.', { minLength: 1, maxLength: 64 }), doc: 'Ranges.' }],
});

/** A TLV name in `match.tlv`: a known name, or a type number (decimal or 0x hex). */
export const TLV_KEY_PATTERN = '^(authority|alpn|unique_id|0[xX][0-9A-Fa-f]{1,2}|[0-9]{1,3})$';

/** `match` of a route: every condition given must hold. */
export const ROUTE_MATCH = object('Conditions of a route; all given must hold. No match: every request.', {
  host: str('Host (without port): a name (case-insensitive) or *.domain (any subdomain).', { pattern: HOST_PATTERN }),
  path: str('The path (without the query) equals this.', { pattern: PATH_PATTERN }),
  path_prefix: str('The path starts with this.', { pattern: PATH_PATTERN }),
  path_regex: str('The whole path matches this regular expression (Rust regex syntax: no lookaround, no backreferences).', { minLength: 1 }),
  method: {
    kind: 'anyOf',
    doc: 'A method or a list of methods (any case; compared upper case).',
    of: [str('A method such as GET.', { pattern: TOKEN_PATTERN }), { kind: 'list', minItems: 1, items: str('A method.', { pattern: TOKEN_PATTERN }), doc: 'Methods.' }],
  },
  header: { kind: 'map', keyPattern: TOKEN_PATTERN, value: VALUE_MATCH, doc: 'Request headers by name (case-insensitive).' },
  query: { kind: 'map', keyPattern: '^[^&=#]+$', value: VALUE_MATCH, doc: 'Query parameters by name (the first value; percent-decoded).' },
  cookie: { kind: 'map', keyPattern: TOKEN_PATTERN, value: VALUE_MATCH, doc: 'Cookies by name (case-sensitive).' },
  source: SOURCES('The client address is in one of these ranges (the PROXY header\'s source behind another balancer).'),
});

/** What a route (or a policy rule) does besides forwarding: answer itself, label, limit. */
const RULE_ACTIONS = {
  deny: {
    kind: 'anyOf',
    doc: 'Refuse instead of forwarding: true (HTTP 403 with a JSON error; tcp: close), a status (400..599), or { status, body }.',
    of: [
      { kind: 'const', value: true, doc: 'Refuse: 403 on http, close on tcp.' },
      int(400, 599, 'The HTTP status.'),
      object('A status and a body.', { status: int(400, 599, 'The HTTP status.', 403), body: str('The body (text/plain).', { maxLength: 65536 }) }),
    ],
  },
  redirect: object(
    'HTTP: answer with a redirect instead of forwarding. One of location, prefix, scheme.',
    {
      location: str('Redirect to this URL.', { pattern: '^[\\x21-\\x7e]+$' }),
      prefix: str('Redirect to this prefix followed by the request\'s path and query.', { pattern: '^[\\x21-\\x7e]+$' }),
      scheme: oneOf(['http', 'https'], 'Redirect to the same host, path and query with this scheme.'),
      status: { kind: 'anyOf', doc: 'The status: 301, 302, 303, 307 or 308 (default 302).', of: [301, 302, 303, 307, 308].map((value) => ({ kind: 'const', value, doc: `${value}` }) as const) },
    },
  ),
  tag: str('A label for metrics (switchyard_rule_actions_total), the access log and traces.', { pattern: NAME_PATTERN }),
  rate_class: str('A rate class of policy.rate_classes that matching requests (tcp: connections) count against, per client address; over it: HTTP 429, tcp: close.', { pattern: NAME_PATTERN }),
} as const satisfies Fields;

/** `request_headers` / `response_headers` of a route. */
const HEADER_OPS = (what: string) =>
  object(`Changes to the ${what} headers, applied in order: remove, set (replace), add (append).`, {
    set: { kind: 'map', keyPattern: TOKEN_PATTERN, value: str('Value.', { pattern: FIELD_VALUE_PATTERN }), doc: 'Replace these headers (or add them).' },
    add: { kind: 'map', keyPattern: TOKEN_PATTERN, value: str('Value.', { pattern: FIELD_VALUE_PATTERN }), doc: 'Append these headers, keeping any already there.' },
    remove: { kind: 'list', items: str('Header name.', { pattern: TOKEN_PATTERN }), doc: 'Remove these headers.' },
  });

/** A hook's decision (a route hook's `fallback`). */
export const HOOK_DECISION = object("A hook's decision: pool and deny exclude each other; {} keeps the route's pool.", {
  pool: str('Send the request to this pool.', { pattern: NAME_PATTERN }),
  deny: {
    kind: 'anyOf',
    doc: 'Answer with this HTTP status (Switchyard\'s JSON error, code "denied"), or true (403); a tcp connection is closed.',
    of: [{ kind: 'const', value: true, doc: '403 (tcp: close).' }, int(400, 599, 'The HTTP status.')],
  },
  hash_key: str('Hash this string as the selection key (pools with consistent_hash or maglev).', { minLength: 1, maxLength: 1024 }),
  tag: str('A label for logs and metrics.', { minLength: 1, maxLength: 1024 }),
});

/** `hook` of a route: a TypeScript function asked before a backend is chosen. */
export const ROUTE_HOOK = object(
  'Ask a hook function (registered with lb.hook(name, fn) or the hooks start option) before choosing a backend: it may pick a pool, deny, or set the hash key. One call into JavaScript per matching request.',
  {
    name: str('Name the function is registered under.', { pattern: NAME_PATTERN }),
    budget: duration(HOOK_LIMITS.budget_ms.min, HOOK_LIMITS.budget_ms.max, 'Longest wait for the answer; then the fallback decides.', HOOK_LIMITS.budget_ms.default),
    fallback: { ...HOOK_DECISION, doc: 'The decision when the hook does not answer within its budget, throws, its queue is full, no function is registered, or its answer is invalid.' },
  },
  ['name', 'fallback'],
);

/** One route of an HTTP listener. */
export const ROUTE = object(
  'A route: conditions, then the pool. First match wins.',
  {
    name: str('Name in stats and logs (default: LISTENER.routes[i]).', { pattern: NAME_PATTERN }),
    match: ROUTE_MATCH,
    pool: str('Name of the pool that receives the matching requests.', { pattern: NAME_PATTERN }),
    hash_key: str("Key of the pool's hash algorithm for this route's requests (default: the pool's hash_key).", { pattern: HASH_KEY_PATTERN }),
    request_headers: HEADER_OPS('request'),
    response_headers: HEADER_OPS('response'),
    max_body_size: size(0, 64 * 1024 ** 3, 'Largest request body; a larger one gets 413 (default: no limit).'),
    ...RULE_ACTIONS,
    hook: ROUTE_HOOK,
  },
);

/** Conditions of a policy rule: a route's (http listeners) or a connection's (tcp listeners). */
export const RULE_MATCH = object('Conditions of a policy rule; all given must hold. http listeners: the route conditions; tcp listeners: source, sni, port, tlv.', {
  ...ROUTE_MATCH.fields,
  sni: {
    kind: 'anyOf',
    doc: 'tcp: the server name (ClientHello on passthrough, the handshake on TLS termination): a name or *.domain, or a list.',
    of: [str('A server name or *.domain.', { pattern: HOST_PATTERN }), { kind: 'list', minItems: 1, items: str('A server name or *.domain.', { pattern: HOST_PATTERN }), doc: 'Server names.' }],
  },
  port: {
    kind: 'anyOf',
    doc: 'tcp: the destination port (the PROXY header\'s, else the listening socket\'s), or a list.',
    of: [int(1, 65535, 'A port.'), { kind: 'list', minItems: 1, items: int(1, 65535, 'A port.'), doc: 'Ports.' }],
  },
  tlv: { kind: 'map', keyPattern: TLV_KEY_PATTERN, value: VALUE_MATCH, doc: 'tcp behind a PROXY v2 sender: TLVs by name (authority, alpn, unique_id) or type (0xE0..0xEF, 224); values as text.' },
});

/** One policy rule. */
export const RULE = object('A policy rule: conditions, then an action. First match wins, before the listener\'s routes (http) or sni_routes and pool (tcp).', {
  name: str('Name in stats, logs, traces and errors (default: policy.rules.LISTENER[i]).', { pattern: NAME_PATTERN }),
  match: RULE_MATCH,
  pool: str('Forward to this pool (default: the listener\'s pool).', { pattern: NAME_PATTERN }),
  hash_key: str('Key of the pool\'s hash algorithm (http: as a route\'s; tcp: source_ip, source_ip_port, sni or tlv:NAME).', { minLength: 1 }),
  request_headers: HEADER_OPS('request'),
  response_headers: HEADER_OPS('response'),
  hook: ROUTE_HOOK,
  ...RULE_ACTIONS,
});

/** `policy`: rules by listener and the rate classes they use. */
export const POLICY = object('Policy rules compiled into the listeners\' route tables (see docs/policy.md).', {
  rules: { kind: 'map', keyPattern: NAME_PATTERN, value: { kind: 'list', items: RULE, doc: 'Rules, first match wins.' }, doc: 'Rules by listener name.' },
  rate_classes: {
    kind: 'map',
    keyPattern: NAME_PATTERN,
    value: object(
      'A rate: per client address, or for all the traffic of the rules that name it.',
      {
        limit: int(1, 10_000_000, 'Requests (tcp: connections) per `per`, and the burst.'),
        per: duration(1, HOUR_MS, 'The period.', 1000),
        by: oneOf(['source', 'all'], 'source: a bucket per client address; all: one bucket for everything the class counts (a global limit).', 'source'),
      },
      ['limit'],
    ),
    doc: 'Named rates that rules count against.',
  },
});

/** `http` of a listener: limits and forwarding headers. */
export const LISTENER_HTTP = object('Protocol http only: limits and forwarding headers.', {
  max_header_size: size(8_192, 1024 ** 2, 'Largest request head (request line and headers); more gets 431.', D.http.max_header_bytes),
  max_headers: int(1, 10_000, 'Most request header fields; more gets 431.', D.http.max_headers),
  header_read_timeout: duration(1, HOUR_MS, 'A client must send a whole request head within this (slowloris); else 408.', D.http.header_read_timeout_ms),
  request_timeout: duration(1, 24 * HOUR_MS, 'A backend must answer with its response head within this; else 504.', D.http.request_timeout_ms),
  x_forwarded: bool('Add X-Forwarded-For (appended), X-Forwarded-Proto, X-Forwarded-Host and X-Real-IP.', D.http.x_forwarded),
  forwarded: bool('Add an RFC 7239 Forwarded element.', D.http.forwarded),
  access_log_sample: { kind: 'number', exclusiveMin: 0, max: 1, doc: 'With access_log: the share of requests logged (0.1: one in ten). Default 1.' },
  h2c: bool('A plain listener also serves HTTP/2 with prior knowledge (h2c): a connection that starts with the HTTP/2 preface. TLS listeners speak HTTP/2 when ALPN chooses h2 (offered by default).', D.http.h2c),
  max_concurrent_streams: int(1, 10_000, 'HTTP/2: streams one client connection may have open at once; more are refused (RST_STREAM REFUSED_STREAM).', D.http.max_concurrent_streams),
});

/** One backend of a pool. */
export const BACKEND = object(
  'One backend server.',
  {
    address: { ...address(1, 'host:port of the backend: an IP literal, localhost, or a host name resolved at start and again as its TTL runs out (one backend per address).'), hostNames: true },
    weight: int(LIMITS.weight.min, LIMITS.weight.max, 'Relative share; 0 takes no new connections.', LIMITS.weight.default),
    backup: bool('Used only when no primary backend is available.', D.backup),
    state: oneOf(['ready', 'drain', 'maint'], 'Operator state: ready takes traffic, drain and maint take no new connections.', D.state),
    health_check: HEALTH_CHECK,
    max_connections: int(1, 10_000_000, "Most connections (HTTP: requests in flight) to this backend at once; default: the pool's max_connections."),
  },
  ['address'],
);

/** `queue` of a pool: clients waiting while every backend is at its max_connections. */
export const QUEUE = object('When every backend a client could use is at its max_connections: wait here, first come first served (HAProxy maxqueue, timeout queue).', {
  max: int(0, 10_000_000, 'Most clients waiting; one more is refused at once.', D.queue_max),
  timeout: duration(1, HOUR_MS, "How long a client waits for a free backend before it is refused (default: the pool's connect_timeout, as HAProxy's timeout queue)."),
});

/** `backends_from` of a pool: backends from DNS SRV records. */
export const BACKENDS_FROM = object(
  'Backends from DNS SRV records (re-resolved as their TTLs run out) or an etcd prefix (watched); with or instead of backends. Exactly one of srv, etcd.',
  {
    srv: str('SRV name such as _http._tcp.api.internal: each target address is a backend with the record\'s port and weight; records with a higher priority value than the lowest are backups.', {
      pattern: SRV_NAME_PATTERN,
    }),
    etcd: str('etcd key prefix such as /switchyard/pools/api/ (the etcd section names the cluster): each key under it is one backend; its value is "ip:port" or JSON {"address", "weight"?, "backup"?}.', {
      pattern: ETCD_PREFIX_PATTERN,
    }),
  },
);

/** The `etcd` section: the cluster that pools' `backends_from.etcd` prefixes are read from. */
export const ETCD = object('The etcd cluster (v3 API) that backends_from.etcd prefixes are read from and watched on.', {
  endpoints: { kind: 'list', minItems: 1, items: str('http://host:port of an etcd member.', { pattern: ETCD_ENDPOINT_PATTERN }), doc: 'etcd members (client URLs).' },
  dial_timeout: duration(100, 60_000, 'How long the first read of a prefix may take at start (an unreachable cluster then is a configuration error).', ETCD_DEFAULTS.dial_timeout_ms),
  shared_health: object('Share active-check verdicts with the other nodes through etcd and follow the majority: a backend down on more than half of the nodes is down everywhere, up on more than half is up. Off when absent. Fixed at start.', {
    prefix: str('Where verdicts are published (PREFIX/POOL/ADDRESS/NODE).', { pattern: ETCD_PREFIX_PATTERN, default: ETCD_DEFAULTS.shared_health_prefix }),
    node: str('This node\'s name, unique in the fleet (default: the host name).', { pattern: '^[A-Za-z0-9_.-]{1,64}$' }),
    ttl: duration(2_000, 300_000, 'A node\'s verdicts expire this long after it stops (its etcd lease).', ETCD_DEFAULTS.shared_health_ttl_ms),
  }),
}, ['endpoints']);

/** The `dns` section: how backend host names and SRV records are resolved. */
export const DNS = object('How backend host names and backends_from.srv are resolved.', {
  servers: {
    kind: 'list',
    minItems: 1,
    items: str('ip or ip:port (IPv6 as [::1]:53).', { pattern: '^[0-9A-Fa-f:.\\[\\]]+$' }),
    doc: "Name servers (default: the system's, from /etc/resolv.conf).",
  },
  min_ttl: duration(100, HOUR_MS, 'A TTL below this is raised to it before the name is queried again; also the retry interval after a failed query.', DNS_DEFAULTS.min_ttl_ms),
  max_ttl: duration(1_000, 24 * HOUR_MS, 'A TTL above this is lowered to it (nginx resolver valid=); at least min_ttl.', DNS_DEFAULTS.max_ttl_ms),
  timeout: duration(100, 60_000, 'Timeout of one query (two tries per server).', DNS_DEFAULTS.timeout_ms),
  family: oneOf(['any', 'ipv4', 'ipv6'], 'Address records used: any (A and AAAA), ipv4 (A), ipv6 (AAAA).', DNS_DEFAULTS.family),
});

/** One pool. */
export const POOL = object(
  'A pool of backends and how to choose among them.',
  {
    algorithm: oneOf(
      ALGORITHM_INFO.map((a) => a.name),
      ALGORITHM_INFO.map((a) => `${a.name}: ${a.summary}`).join('; '),
      D.algorithm,
    ),
    connect_timeout: duration(1, 60_000, 'Give up connecting to a backend after this long.', D.connect_timeout_ms),
    retries: int(0, 10, 'Other backends tried after a failed connect.', D.retries),
    hash_key: str('consistent_hash, maglev: what is hashed: source_ip, source_ip_port, or for HTTP listeners header:NAME, cookie:NAME or path.', {
      pattern: HASH_KEY_PATTERN,
      default: D.hash_key,
    }),
    virtual_nodes: int(LIMITS.virtual_nodes.min, LIMITS.virtual_nodes.max, 'consistent_hash: ring points per weight unit.', LIMITS.virtual_nodes.default),
    table_size: int(LIMITS.table_size.min, LIMITS.table_size.max, 'maglev: lookup table size, a prime.', LIMITS.table_size.default),
    hash_balance_factor: { kind: 'number', exclusiveMin: 1, max: LIMITS.max_balance_factor, doc: 'consistent_hash, maglev: bounded load, e.g. 1.25.' },
    passive: PASSIVE,
    panic_threshold: int(LIMITS.percent.min, LIMITS.percent.max, 'Fail open below this percentage of healthy primaries (default: off).'),
    on_down: oneOf(['keep', 'close'], 'Established connections of a backend marked down.', D.on_down),
    drain_timeout: duration(0, 24 * HOUR_MS, "How long a draining backend's connections may run before they are closed.", D.drain_timeout_ms),
    slow_start: duration(0, HOUR_MS, "Ramp a recovered backend's weight from 10% to 100% over this time (0: off).", D.slow_start_ms),
    health_check: HEALTH_CHECK,
    backend_tls: BACKEND_TLS,
    backends: { kind: 'list', minItems: 1, items: BACKEND, doc: 'The backends; no address twice. Required unless backends_from is given.' },
    backends_from: BACKENDS_FROM,
    sticky: STICKY,
    host_header: str("HTTP listeners: send this Host to the backends (default: the client's).", { pattern: '^[\\x21-\\x7e]+$', maxLength: 255 }),
    keepalive: KEEPALIVE,
    http2: bool('HTTP listeners: speak HTTP/2 to the backends (h2 over TLS via ALPN with backend_tls, else h2c with prior knowledge); requests become streams multiplexed over a few connections per backend (keepalive.http2_*). Needed for gRPC backends.', D.pool_http.http2),
    max_connections: int(1, 10_000_000, 'Most connections (HTTP: requests in flight) per backend at once (HAProxy maxconn): a full backend is skipped; when all are full, clients wait in the queue or are refused.'),
    queue: QUEUE,
    proxy_protocol: oneOf(['v1', 'v2'], 'Write a PROXY protocol header (v1 text, v2 binary with TLS facts where TLS was terminated) before the first byte to each backend connection. Pools of tcp listeners only.'),
  },
);

/** `proxy_protocol` of a listener: PROXY protocol headers from a balancer in front. */
export const PROXY_ACCEPT = object(
  'Behind another balancer: every connection starts with a PROXY protocol header (v1 or v2) from a trusted source; its source address is then the client (keys, logs, X-Forwarded-For, onward headers). Others are closed.',
  {
    trusted: { kind: 'list', minItems: 1, items: str('An IP address or CIDR (10.0.0.0/8, ::1).', { minLength: 1, maxLength: 64 }), doc: 'Sources allowed to send a header; a connection from any other source is closed.' },
    timeout: duration(1, 60_000, 'How long a connection may take to send its whole header.', D.proxy_timeout_ms),
  },
  ['trusted'],
);

/** `per_source` of a listener: limits per client address. */
export const PER_SOURCE = object('Limits per client address (the one a PROXY header declared, behind another balancer); a client over them is closed at once.', {
  max_connections: int(1, 10_000_000, 'Most connections open at once from one address.'),
  rate: object(
    'Most new connections from one address per period: a token bucket holding `connections`, refilled evenly over `per`.',
    { connections: int(1, 10_000_000, 'Connections per period (and the burst).'), per: duration(1, 24 * HOUR_MS, 'The period.') },
    ['connections', 'per'],
  ),
});

/** `udp` of a listener: its flows. */
export const LISTENER_UDP = object('Protocol udp only: flows (a client address pinned to a backend) and their limits.', {
  flow_idle_timeout: duration(1, 24 * HOUR_MS, 'A flow with no datagram either way for this long ends; the client\'s next datagram starts a new one (nginx proxy_timeout).', D.udp.flow_idle_timeout_ms),
  max_flows: int(1, 10_000_000, 'Most flows at once; a datagram that would start one more is dropped and counted.', D.udp.max_flows),
  responses: int(0, 1_000_000, 'Replies after which a flow ends (nginx proxy_responses; 1 for DNS: each query is balanced on its own); 0: no limit.', D.udp.responses),
  max_datagram_size: size(1, 65_507, 'Largest datagram forwarded; a larger one is dropped and counted.', D.udp.max_datagram_bytes),
});

/** One listener. */
export const LISTENER = object(
  'One listener (a frontend).',
  {
    address: address(0, 'host:port to bind; port 0 picks a free port.'),
    pool: str('Name of the pool that receives the connections (required for tcp; for http, the default route after routes).', { pattern: NAME_PATTERN }),
    backlog: int(1, 65535, 'listen(2) backlog.', D.backlog),
    defer_accept: bool('Linux TCP_DEFER_ACCEPT: accept once the client has sent data (client-speaks-first protocols only).', D.defer_accept),
    freebind: bool('Linux IP_FREEBIND: bind the address even if no interface holds it yet (a virtual IP keepalived moves here on failover), TCP and UDP.', D.freebind),
    idle_timeout: duration(1, 24 * HOUR_MS, 'Close a connection after this long without a byte in either direction.', D.idle_timeout_ms),
    splice: oneOf(['auto', 'always', 'never'], 'auto copies, then moves bulk streams to splice(2).', D.splice),
    tls: LISTENER_TLS,
    sni_routes: { kind: 'map', keyPattern: HOST_PATTERN, value: str('Name of a pool.', { pattern: NAME_PATTERN }), doc: 'TLS passthrough: server name or *.domain → pool.' },
    peek_timeout: duration(1, 60_000, 'Passthrough: how long a client may take to send its whole ClientHello.', D.peek_timeout_ms),
    access_log: bool('Log one `access` line per client connection (client, pool, backend, bytes, duration, how it ended).', D.access_log),
    protocol: oneOf(['tcp', 'http', 'udp'], 'tcp forwards bytes; http routes and balances each HTTP/1.1 request or HTTP/2 stream; udp pins each client\'s datagrams (a flow) to a backend.', D.protocol),
    udp: LISTENER_UDP,
    routes: { kind: 'list', minItems: 1, items: ROUTE, doc: 'Protocol http: routes, first match wins; no match gets 404.' },
    http: LISTENER_HTTP,
    proxy_protocol: PROXY_ACCEPT,
    max_connections: int(1, 10_000_000, 'Most connections open at once (HAProxy maxconn on a frontend): at the limit the listener stops accepting and new clients wait in the backlog.'),
    allow: { kind: 'list', items: str('An IP address or CIDR.', { minLength: 1, maxLength: 64 }), doc: 'Only sources in these ranges may connect; others are closed at once.' },
    deny: { kind: 'list', items: str('An IP address or CIDR.', { minLength: 1, maxLength: 64 }), doc: 'Sources in these ranges are closed at once (checked before allow).' },
    per_source: PER_SOURCE,
    max_lifetime: duration(1000, 30 * 24 * HOUR_MS, 'TCP listeners: close a connection this long after it started, whatever it does, so long-lived clients reconnect and rebalance (checked each quarter of idle_timeout, to the second).'),
    max_lifetime_jitter: int(0, 50, 'Percent: each connection lives a random share of max_lifetime between 100 - jitter and 100 percent, so connections opened together do not reconnect together.', D.max_lifetime_jitter_percent),
    trace_sample: { kind: 'number', min: 0, max: 1, default: D.trace_sample, doc: 'TCP and HTTP listeners: the share of connections (HTTP: requests) whose balancing decision is traced (0.01: one in a hundred; 0: none). Read with GET /api/traces or lb.traces(); changed at runtime with PUT /api/listeners/{name}/trace-sample.' },
  },
  ['address'],
);

/** The admin section (checked by `admin.ts`). */
export const ADMIN = object('The admin HTTP API, /metrics and the dashboard. Off when absent.', {
  address: address(0, 'host:port to bind.', D.admin_address),
  token: str('Bearer token, 16..1024 printable ASCII characters; required off loopback (or token_file, token_env).', { pattern: '^[\\x21-\\x7e]{16,1024}$' }),
  token_file: str('Read the token from this file (relative to the config file).', { minLength: 1 }),
  token_env: str('Read the token from this environment variable.', { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }),
});

/** The whole configuration. */
export const CONFIG = object(
  'Switchyard configuration.',
  {
    workers: int(LIMITS.workers.min, LIMITS.workers.max, 'Data-plane worker threads (default: the CPU count).'),
    accept: oneOf(['shared', 'reuseport'], 'How connections are spread over the workers. Fixed at start.', D.accept),
    listeners: { kind: 'map', keyPattern: NAME_PATTERN, value: LISTENER, minEntries: 1, doc: 'Listeners by name.' },
    pools: { kind: 'map', keyPattern: NAME_PATTERN, value: POOL, minEntries: 1, doc: 'Pools by name.' },
    admin: ADMIN,
    dns: DNS,
    etcd: ETCD,
    policy: POLICY,
    max_connections: int(1, 100_000_000, "Most client connections open at once in the whole balancer (HAProxy's global maxconn): at the limit every listener stops accepting. Default: derived from the descriptor limit (ulimit -n), two per connection, keeping a reserve."),
  },
  ['listeners', 'pools'],
);

/** The keys of an object field, in declaration order (what the validators accept). */
export function keysOf(o: ObjectField): string[] {
  return Object.keys(o.fields);
}

/** A field's default as a user would write it (durations with a unit), or undefined when it has none. */
export function writtenDefault(f: Field): unknown {
  if (!('default' in f) || f.default === undefined) return undefined;
  return f.kind === 'duration' ? formatDuration(f.default) : f.kind === 'size' ? formatSize(f.default) : f.default;
}
