/**
 * `policy`: match → action rules per listener, and the rate classes they count against,
 * compiled into the listeners' own route tables — one routing mechanism. An http listener's
 * rules become routes placed before its `routes` (`http.ts`); a tcp listener's rules become
 * its `rules` table (`L4RuleConfig`), evaluated before `sni_routes` and `pool`. First match
 * wins; every error names the rule (`policy.rules.LISTENER[i]`). The data plane re-checks the
 * tables (`crates/switchyard-core/src/rules/`) and swaps them in with the rest of the config.
 */
import { describe, type Checker, type Obj } from './checker.js';
import { POLICY, RULE, RULE_MATCH, TLV_KEY_PATTERN, keysOf } from './fields.js';
import { checkHook, poolRef, ruleName, valueMatches } from './http.js';
import { ruleActions, sources } from './rule-actions.js';
import type { L4Key, L4RuleConfig, RateClassConfig, TlvKind } from '../binding/types.generated.js';

const POLICY_KEYS = keysOf(POLICY);
const RULE_KEYS = keysOf(RULE);
const TCP_MATCH_KEYS = ['source', 'sni', 'port', 'tlv'];
const HTTP_ONLY_KEYS = keysOf(RULE_MATCH).filter((k) => !TCP_MATCH_KEYS.includes(k));
const TLV_KEY = new RegExp(TLV_KEY_PATTERN);
/** The data plane's `rules::l4::MAX_RULES`. */
const MAX_TCP_RULES = 10_000;
const SNI = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Known TLV types by number, and those the PROXY parser keeps apart (never matchable as text). */
const TLV_NAMES: Record<number, TlvKind> = { 1: 'alpn', 2: 'authority', 5: 'unique_id' };
const TLV_UNMATCHABLE: Record<number, string> = { 3: 'CRC32C', 4: 'NOOP', 0x20: 'SSL', 0x30: 'NETNS' };

/** The `policy` section, read once before the listeners. */
export interface ReadPolicy {
  /** Raw rules by listener name (each listener checks its own). */
  rules: Obj;
  /** The rate classes defined (undefined when the section is broken: references are not checked). */
  names: ReadonlySet<string> | undefined;
  classes: RateClassConfig[];
}

/** Read `policy` (absent: no rules, no classes). */
export function readPolicy(c: Checker, v: unknown): ReadPolicy {
  const out: ReadPolicy = { rules: {}, names: new Set(), classes: [] };
  if (v === undefined) return out;
  const p = c.object(v, 'policy', `an object with keys ${POLICY_KEYS.join(', ')}`);
  if (!p) return { ...out, names: undefined };
  c.keys(p, POLICY_KEYS, 'policy');
  if (p.rules !== undefined) out.rules = c.object(p.rules, 'policy.rules', 'an object of listener name → list of rules') ?? {};
  if (p.rate_classes !== undefined) {
    const names = new Set<string>();
    for (const [name, raw] of c.named(p.rate_classes, 'policy.rate_classes', 'rate classes')) {
      const at = `policy.rate_classes.${name}`;
      const r = c.object(raw, at, 'an object such as { limit: 10, per: "1s" }');
      if (!r) continue;
      c.keys(r, ['limit', 'per', 'by'], at);
      if (r.limit === undefined) c.add(`${at}.limit`, 'missing (expected requests or connections per period, e.g. 10)');
      names.add(name);
      const by = c.oneOf(r.by, `${at}.by`, ['source', 'all'] as const, 'source');
      out.classes.push({ name, limit: c.int(r.limit, `${at}.limit`, 1, 10_000_000, 1), per_ms: c.duration(r.per, `${at}.per`, 1, 3_600_000, 1000), by });
    }
    out.names = names;
  }
  return out;
}

/** After the listeners: rules for listeners that do not exist, or that cannot have rules. */
export function checkPolicyListeners(c: Checker, p: ReadPolicy, protocols: ReadonlyMap<string, string>): void {
  for (const name of Object.keys(p.rules)) {
    const protocol = protocols.get(name);
    if (protocol === undefined) c.add(`policy.rules.${name}`, `no listener named ${describe(name)} (listeners: ${[...protocols.keys()].join(', ') || 'none'})`);
    else if (protocol === 'udp') c.add(`policy.rules.${name}`, 'rules are for tcp and http listeners (this one is udp)');
  }
}

/**
 * A tcp listener's rules (`policy.rules.LISTENER`), compiled.
 * @param listenerPool the listener's raw `pool`: the default of a rule without an action
 */
export function checkTcpRules(c: Checker, listener: string, raw: unknown, pools: Obj | undefined, listenerPool: unknown, classes: ReadonlySet<string> | undefined): L4RuleConfig[] {
  const path = `policy.rules.${listener}`;
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) return (c.add(path, `expected a list of rules, got ${describe(raw)}`), []);
  if (raw.length > MAX_TCP_RULES) return (c.add(path, `at most ${MAX_TCP_RULES} rules per tcp listener, got ${raw.length}`), []);
  const rules: L4RuleConfig[] = [];
  raw.forEach((v: unknown, i) => {
    const at = `${path}[${i}]`;
    const r = c.object(v, at, 'a rule object such as { match: { source: "10.0.0.0/8" }, pool: "internal" }');
    if (!r) return;
    c.keys(r, RULE_KEYS, at);
    for (const k of ['redirect', 'request_headers', 'response_headers', 'max_body_size']) {
      if (r[k] !== undefined) c.add(`${at}.${k}`, `${k} applies to HTTP requests: only for rules of http listeners (this one is tcp)`);
    }
    const name = ruleName(c, r.name, `${at}.name`, `${listener}.policy[${i}]`);
    const actions = ruleActions(c, r, at, classes, false);
    if (actions.answer && r.pool !== undefined) c.add(`${at}.pool`, 'a rule either forwards to a pool or denies, not both');
    const m = matchOf(c, r.match, `${at}.match`);
    const rule: L4RuleConfig = {
      name,
      ...m,
      action: actions.answer ? 'deny' : { pool: poolRef(c, r.pool ?? listenerPool, `${at}.pool`, pools, true) },
      hash_key: tcpKey(c, r.hash_key, `${at}.hash_key`),
      tag: actions.tag,
      rate_class: actions.rate_class,
      hook: actions.answer && r.hook !== undefined ? (c.add(`${at}.hook`, 'a rule that denies asks no hook'), null) : checkHook(c, r.hook, `${at}.hook`, pools),
    };
    const twin = rules.findIndex((o) => o.name === name);
    if (twin >= 0) c.add(`${at}.name`, `duplicate rule name ${describe(name)} (same as ${path}[${twin}])`);
    rules.push(rule);
  });
  const all = rules.findIndex((r) => r.source.length + r.sni.length + r.ports.length + r.tlvs.length === 0);
  if (all >= 0 && all < rules.length - 1) c.add(`${path}[${all + 1}]`, `never matches: ${path}[${all}] before it matches every connection (first match wins)`);
  return rules;
}

function matchOf(c: Checker, v: unknown, path: string): Pick<L4RuleConfig, 'source' | 'sni' | 'ports' | 'tlvs'> {
  const out: Pick<L4RuleConfig, 'source' | 'sni' | 'ports' | 'tlvs'> = { source: [], sni: [], ports: [], tlvs: [] };
  if (v === undefined) return out;
  const m = c.object(v, path, `an object with keys ${TCP_MATCH_KEYS.join(', ')}`);
  if (!m) return out;
  for (const k of HTTP_ONLY_KEYS) {
    if (m[k] !== undefined) c.add(`${path}.${k}`, `${k} is a condition of HTTP requests; this listener is tcp (conditions: ${TCP_MATCH_KEYS.join(', ')})`);
  }
  c.keys(Object.fromEntries(Object.entries(m).filter(([k]) => !HTTP_ONLY_KEYS.includes(k))), TCP_MATCH_KEYS, path);
  out.source = sources(c, m.source, `${path}.source`);
  if (m.sni !== undefined) {
    const list = Array.isArray(m.sni) ? m.sni : [m.sni];
    if (list.length === 0) c.add(`${path}.sni`, 'expected a server name or a non-empty list of them, got []');
    list.forEach((n: unknown, i) => {
      const at = Array.isArray(m.sni) ? `${path}.sni[${i}]` : `${path}.sni`;
      if (typeof n === 'string' && SNI.test(n)) out.sni.push(n.toLowerCase());
      else c.add(at, `expected a server name or *.domain, got ${describe(n)}`);
    });
  }
  if (m.port !== undefined) {
    const list = Array.isArray(m.port) ? m.port : [m.port];
    if (list.length === 0) c.add(`${path}.port`, 'expected a port or a non-empty list of ports, got []');
    list.forEach((p: unknown, i) => out.ports.push(c.int(p, Array.isArray(m.port) ? `${path}.port[${i}]` : `${path}.port`, 1, 65535, 0)));
  }
  // The values as a header's; the names (any accepted there) are read by `tlvKind`.
  for (const v of valueMatches(c, m.tlv, `${path}.tlv`, /(?:)/, false)) {
    const kind = tlvKind(c, v.name, `${path}.tlv.${v.name}`);
    if (kind !== undefined) out.tlvs.push({ tlv: kind, equals: v.equals, regex: v.regex });
  }
  return out;
}

/** A TLV name or type number as the data plane names it. */
function tlvKind(c: Checker, key: string, path: string): TlvKind | undefined {
  if (!TLV_KEY.test(key)) return (c.add(path, `expected authority, alpn, unique_id or a type number (0xE0, 224), got ${describe(key)}`), undefined);
  if (key === 'authority' || key === 'alpn' || key === 'unique_id') return key;
  const n = Number(key);
  if (n > 255) return (c.add(path, `a TLV type is 0..255, got ${key}`), undefined);
  const named = TLV_NAMES[n];
  if (named) return named;
  const apart = TLV_UNMATCHABLE[n];
  if (apart) return (c.add(path, `type ${key} (${apart}) is not a text value rules can match`), undefined);
  return { type: n };
}

/** A tcp rule's `hash_key`. */
function tcpKey(c: Checker, v: unknown, path: string): L4Key | null {
  if (v === undefined) return null;
  if (v === 'source_ip' || v === 'source_ip_port' || v === 'sni') return v;
  const m = typeof v === 'string' ? /^tlv:(.+)$/.exec(v) : null;
  if (m) {
    const kind = tlvKind(c, m[1]!, path);
    return kind === undefined ? null : { tlv: kind };
  }
  c.add(path, `expected source_ip, source_ip_port, sni or tlv:NAME on a tcp listener, got ${describe(v)}`);
  return null;
}
