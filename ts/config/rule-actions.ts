/**
 * What a route or a policy rule does besides forwarding — answer itself (`deny`, `redirect`),
 * label its traffic (`tag`) and count it against a rate class (`rate_class`) — and the
 * `source` condition both kinds share. Read here once for HTTP routes (`http.ts`) and TCP
 * rules (`policy.ts`); the data plane's shapes are `RouteAnswer` and `L4Action`.
 */
import { describe, isObject, type Checker, type Obj } from './checker.js';
import { checkCidrs } from './cidr.js';
import { NAME_PATTERN } from './fields.js';
import type { RouteAnswer } from '../binding/types.generated.js';

const NAME = new RegExp(NAME_PATTERN);
const REDIRECT_KEYS = ['location', 'prefix', 'scheme', 'status'];
const REDIRECT_STATUSES = [301, 302, 303, 307, 308];
const URL_TEXT = /^[\x21-\x7e]+$/;

/** The actions read from a rule or route. `deny` is only the status on tcp (which closes). */
export interface ReadActions {
  answer: RouteAnswer | null;
  tag: string | null;
  rate_class: string | null;
}

/**
 * Read the actions of rule `r` at `path`.
 * @param classes the rate classes defined (undefined: the section is broken, already reported)
 * @param http whether the listener speaks HTTP (redirects and deny statuses apply)
 */
export function ruleActions(c: Checker, r: Obj, path: string, classes: ReadonlySet<string> | undefined, http: boolean): ReadActions {
  const out: ReadActions = { answer: null, tag: null, rate_class: null };
  if (r.deny !== undefined) out.answer = deny(c, r.deny, `${path}.deny`, http);
  // (A tcp rule's redirect is reported with its other HTTP-only fields, see `checkTcpRules`.)
  if (r.redirect !== undefined && http) {
    if (out.answer) c.add(`${path}.redirect`, 'give deny or redirect, not both');
    else out.answer = redirect(c, r.redirect, `${path}.redirect`);
  }
  if (r.tag !== undefined) {
    if (typeof r.tag === 'string' && NAME.test(r.tag)) out.tag = r.tag;
    else c.add(`${path}.tag`, `expected a tag of 1-64 characters of A-Z a-z 0-9 _ . -, got ${describe(r.tag)}`);
  }
  if (r.rate_class !== undefined) {
    if (typeof r.rate_class !== 'string') c.add(`${path}.rate_class`, `expected the name of a rate class, got ${describe(r.rate_class)}`);
    else if (classes && !classes.has(r.rate_class)) {
      c.add(`${path}.rate_class`, `unknown rate class ${describe(r.rate_class)} (defined in policy.rate_classes: ${[...classes].join(', ') || 'none'})`);
    } else out.rate_class = r.rate_class;
  }
  return out;
}

function deny(c: Checker, v: unknown, path: string, http: boolean): RouteAnswer | null {
  if (v === true) return { deny: { status: 403, body: null } };
  if (!http && v !== undefined) {
    c.add(path, `expected true (a tcp listener closes a denied connection; statuses and bodies are for http), got ${describe(v)}`);
    return null;
  }
  if (typeof v === 'number') return { deny: { status: c.int(v, path, 400, 599, 403), body: null } };
  if (isObject(v)) {
    c.keys(v, ['status', 'body'], path);
    if (v.body !== undefined && typeof v.body !== 'string') c.add(`${path}.body`, `expected a text, got ${describe(v.body)}`);
    return { deny: { status: c.int(v.status, `${path}.status`, 400, 599, 403), body: typeof v.body === 'string' ? v.body : null } };
  }
  c.add(path, `expected true, a status 400..599 or { status, body }, got ${describe(v)}`);
  return null;
}

function redirect(c: Checker, v: unknown, path: string): RouteAnswer | null {
  const o = c.object(v, path, 'an object such as { scheme: "https" } or { location: "https://example.com/", status: 301 }');
  if (!o) return null;
  c.keys(o, REDIRECT_KEYS, path);
  const status = o.status === undefined ? 302 : o.status;
  const statusOk = typeof status === 'number' && REDIRECT_STATUSES.includes(status);
  if (!statusOk) c.add(`${path}.status`, `expected one of ${REDIRECT_STATUSES.join(', ')}, got ${describe(o.status)}`);
  const given = (['location', 'prefix', 'scheme'] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1) c.add(path, `give exactly one of location, prefix, scheme, got ${given.length === 0 ? 'none' : given.join(' and ')}`);
  if (given.length !== 1 || typeof status !== 'number' || !statusOk) return null;
  const kind = given[0]!;
  const value = o[kind];
  if (kind === 'scheme') {
    if (value !== 'http' && value !== 'https') return (c.add(`${path}.scheme`, `expected http or https, got ${describe(value)}`), null);
    return { redirect: { to: { scheme: value }, status } };
  }
  if (typeof value !== 'string' || !URL_TEXT.test(value)) return (c.add(`${path}.${kind}`, `expected a URL without spaces or control characters, got ${describe(value)}`), null);
  return { redirect: { to: kind === 'location' ? { location: value } : { prefix: value }, status } };
}

/** `match.source`: a range or a list of them (CIDRs or addresses). */
export function sources(c: Checker, v: unknown, path: string): string[] {
  if (v === undefined) return [];
  return checkCidrs(c, typeof v === 'string' ? [v] : v, path, true);
}
