/**
 * Hook functions by name, and the dispatcher the addon's thread-safe function calls once per
 * hook call: it runs the named function, checks its decision and answers the data plane.
 *
 * Contract: `dispatch` never throws (a throw there would reach napi's fatal handler). Every
 * call it can parse is answered exactly once: a decision, the error the function threw (or
 * its promise rejected with), `unregistered` when no function has the hook's name, or an
 * invalid answer (no decision) when the function answered something that is not one. A
 * synchronous function is answered in the same turn, without a promise.
 */
import type { HookCall, HookReply } from '../binding/types.generated.js';
import { formatProblem, isProblem, toDecision } from './decision.js';
import type { HookFn, HookRequest } from './types.js';

/** Where answers go (the engine's `hookReply`). */
export type ReplyFn = (id: number, reply: HookReply) => void;
/** Told about a function that threw or answered something invalid (throttled per hook). */
export type ProblemFn = (hook: string, problem: string) => void;

/** Reported at most this often per hook, so a hook failing on every request does not flood the log. */
const PROBLEM_EVERY_MS = 10_000;

export class HookRegistry {
  readonly #fns = new Map<string, HookFn>();
  readonly #reply: ReplyFn;
  readonly #problem: ProblemFn;
  readonly #lastProblem = new Map<string, number>();

  constructor(reply: ReplyFn, problem: ProblemFn = () => {}) {
    this.#reply = reply;
    this.#problem = problem;
  }

  /** Register `fn` under `name` (replacing one registered before). */
  set(name: string, fn: HookFn): void {
    if (typeof name !== 'string' || name === '') throw new TypeError(`hook: expected a hook name, got ${JSON.stringify(name)}`);
    if (typeof fn !== 'function') throw new TypeError(`hook ${JSON.stringify(name)}: expected a function, got ${typeof fn}`);
    this.#fns.set(name, fn);
  }

  /** Remove the function of `name`; false if there was none. */
  delete(name: string): boolean {
    return this.#fns.delete(name);
  }

  /** The names functions are registered under. */
  names(): string[] {
    return [...this.#fns.keys()];
  }

  /** The addon's handler: one JSON `HookCall` per call. */
  readonly dispatch = (json: string): void => {
    let call: HookCall;
    try {
      call = JSON.parse(json) as HookCall;
    } catch {
      return; // (never expected: the data plane writes it) without an id nobody can be answered; the call times out
    }
    const { id, hook } = call;
    const fn = this.#fns.get(hook);
    if (fn === undefined) {
      this.#send(id, { hook, decision: null, error: null, unregistered: true });
      return;
    }
    let answer: ReturnType<HookFn>;
    try {
      answer = fn(toRequest(call));
    } catch (err) {
      this.#failed(id, hook, err);
      return;
    }
    if (answer !== null && typeof answer === 'object' && typeof (answer as PromiseLike<unknown>).then === 'function') {
      (answer as PromiseLike<unknown>).then(
        (v) => this.#decided(id, hook, v),
        (err: unknown) => this.#failed(id, hook, err),
      );
    } else {
      this.#decided(id, hook, answer);
    }
  };

  #decided(id: number, hook: string, v: unknown): void {
    const decision = toDecision(v);
    if (isProblem(decision)) {
      this.#report(hook, `invalid decision: ${formatProblem(decision)}`);
      this.#send(id, { hook, decision: null, error: null, unregistered: false });
    } else {
      this.#send(id, { hook, decision, error: null, unregistered: false });
    }
  }

  #failed(id: number, hook: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#report(hook, `threw: ${message}`);
    this.#send(id, { hook, decision: null, error: message || 'error', unregistered: false });
  }

  #send(id: number, reply: HookReply): void {
    try {
      this.#reply(id, reply);
    } catch {
      // The engine closed while the function ran: nobody waits for the answer.
    }
  }

  #report(hook: string, problem: string): void {
    const now = Date.now();
    if (now - (this.#lastProblem.get(hook) ?? -Infinity) < PROBLEM_EVERY_MS) return;
    this.#lastProblem.set(hook, now);
    try {
      this.#problem(hook, problem);
    } catch {
      // a logger's failure is not the hook's
    }
  }
}

/** The request as a hook function sees it: headers by lower-case name, absent fields left out. */
function toRequest(call: HookCall): HookRequest {
  const r = call.request;
  // No prototype: a field named __proto__ is a field like any other.
  const headers = Object.create(null) as Record<string, string>;
  for (const { name, value } of r.headers) {
    const n = name.toLowerCase();
    headers[n] = headers[n] === undefined ? value : `${headers[n]}, ${value}`;
  }
  const out: HookRequest = { listener: r.listener, rule: r.rule, client: r.client, headers };
  if (r.method !== null) out.method = r.method;
  if (r.host !== null) out.host = r.host;
  if (r.path !== null) out.path = r.path;
  if (r.query !== null) out.query = r.query;
  if (r.sni !== null) out.sni = r.sni;
  if (r.dst_port !== null) out.dstPort = r.dst_port;
  return out;
}
