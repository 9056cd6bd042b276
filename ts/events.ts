/** Backend state changes, as the library emits them and the admin API lists them. */

/** One state change of a backend. */
export interface BackendEvent {
  /** ISO timestamp. */
  time: string;
  pool: string;
  address: string;
  /** `up`, `down` (active checks); `ejected`, `ejection_skipped` (passive, from the data plane);
   * `ready`, `drain`, `maint`, `drain_closed`, `added`, `removed`, `weight`, `algorithm` (operator);
   * `events_dropped` (the data plane's bounded queue overflowed). */
  kind: string;
  /** What happened, for a person: "HTTP 503", "connect failed (3 in a row)", … */
  reason: string;
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
