/** Backend state changes, as the library emits them and the admin API lists them. */
import { Repeats } from './log.js';

/** One state change of a backend. */
export interface BackendEvent {
  /** ISO timestamp. */
  time: string;
  pool: string;
  address: string;
  /** `up`, `down` (active checks); `ejected`, `ejection_skipped` (passive, from the data plane);
   * `ready`, `drain`, `maint`, `drain_closed`, `added`, `removed`, `weight`, `algorithm` (operator,
   * or a reload that changed the file's value); `kept` (a reload kept a value set at runtime);
   * `slow_start`; `accept_error` (a listener's failed accept: `pool` is empty, `address` is the
   * listener's name); `proxy_refused` (a listener closed connections for their PROXY header:
   * untrusted source, bad or late header; `address` is the listener's name); `connection_refused`
   * (a listener closed connections by its allow/deny lists or per-source limits); `events_dropped`
   * (the data plane's bounded queue overflowed). */
  kind: string;
  /** What happened, for a person: "HTTP 503", "connect failed (3 in a row)", "state drain→ready (file)", … */
  reason: string;
  /** On a summary of a repeating kind: how many more events of this backend and kind the last
   * window held back (this event carries the last one's reason). */
  repeated?: number;
}

/** Kinds that can repeat many times a second without a state change in between (one per failed
 * connection while ejection is capped, one per failed accept, one per full data-plane queue): these are folded, at most
 * one per backend and kind per `REPEAT_WINDOW_MS`, plus a summary with `repeated`. Transitions
 * (`up`, `down`, `ejected`, operator changes) always go out one by one. */
const REPEATING = new Set(['ejection_skipped', 'accept_error', 'proxy_refused', 'connection_refused', 'events_dropped']);

/** The window over which repeating events are folded. */
export const REPEAT_WINDOW_MS = 1000;

/** Time-stamps backend events, folds repeating ones, and hands the rest to `publish`. */
export class BackendEvents {
  readonly #repeats: Repeats<BackendEvent>;

  constructor(
    private readonly publish: (event: BackendEvent) => void,
    windowMs = REPEAT_WINDOW_MS,
  ) {
    this.#repeats = new Repeats(windowMs, (last, repeated) => publish({ ...last, time: new Date().toISOString(), repeated }));
  }

  /** Publish `e` now, or count it towards its window's summary when it is a repeat. */
  push(e: Omit<BackendEvent, 'time'>): void {
    const event = { time: new Date().toISOString(), ...e };
    if (REPEATING.has(e.kind) && !this.#repeats.admit(`${e.pool} ${e.address} ${e.kind}`, event)) return;
    this.publish(event);
  }

  /** Publish the pending summaries now (on close: no count is lost). */
  flush(): void {
    this.#repeats.flush();
  }
}

/** The most recent events, oldest first, capped. */
export class EventHistory {
  #items: BackendEvent[] = [];
  constructor(private readonly cap = 200) {}
  push(e: BackendEvent): void {
    this.#items.push(e);
    if (this.#items.length > this.cap) this.#items.splice(0, this.#items.length - this.cap);
  }
  list(): BackendEvent[] {
    return this.#items.slice();
  }
}
