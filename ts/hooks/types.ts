/**
 * The public types of opt-in hooks: what a hook function is told about a
 * request, what it may answer, and its signature.
 */

/** What a hook is told about the request (HTTP route) or connection (L4 rule) it decides. */
export interface HookRequest {
  /** The listener's name. */
  listener: string;
  /** The route (HTTP) or rule (L4) whose `hook` asked. */
  rule: string;
  /** The client's `ip:port`. */
  client: string;
  /** HTTP: the method, host (without port), path and raw query (without `?`). */
  method?: string;
  host?: string;
  path?: string;
  query?: string;
  /** HTTP: header fields by lower-case name (repeated fields joined with `, `); at most 64 fields are sent. */
  headers: Readonly<Record<string, string>>;
  /** L4: the ClientHello's server name. */
  sni?: string;
  /** L4: the port the client connected to. */
  dstPort?: number;
}

/**
 * A hook's answer. `pool` and `deny` exclude each other; `{}` (or `undefined`) keeps the
 * rule's own pool. An unknown pool counts as an invalid answer: the fallback is used.
 */
export interface HookDecision {
  /** Send it to this pool instead. */
  pool?: string;
  /** Refuse it: this HTTP status (400..599; `true`: 403) from Switchyard; an L4 connection is closed. */
  deny?: number | true;
  /** Hash this string as the selection key (pools with consistent_hash or maglev). */
  hash_key?: string;
  /** A label for logs and metrics. */
  tag?: string;
}

/**
 * A hook function: called for each request of a route whose `hook` names it, it must answer
 * within the route's budget (default 2 ms) or the route's `fallback` decides. A throw or a
 * rejected promise also means the fallback.
 */
export type HookFn = (request: HookRequest) => HookDecision | undefined | void | Promise<HookDecision | undefined | void>;
