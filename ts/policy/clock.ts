/**
 * Time as the control loops see it. Policies never call `setInterval` or `Date.now` themselves:
 * they run on a `Clock`, real timers by default, a `ManualClock` in tests (the test kit), where
 * `advance(ms)` fires every tick that falls due, in order, and waits for each to finish — so a
 * control loop advances deterministically, one decision at a time.
 */

/** A scheduled repetition; `cancel` stops it (safe to call twice). */
export interface Scheduled {
  cancel(): void;
}

/** A source of time and of repeating ticks. */
export interface Clock {
  /** Milliseconds since the Unix epoch (or any fixed origin: only differences matter). */
  now(): number;
  /** Call `tick` every `ms` milliseconds until cancelled. A tick that is still running when the
   * next falls due is not started twice (the next one is skipped). */
  every(ms: number, tick: () => void | Promise<void>): Scheduled;
}

/** Real time: `Date.now` and unref'd intervals (a running control loop never keeps a process alive). */
export const realClock: Clock = {
  now: () => Date.now(),
  every(ms, tick) {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      void Promise.resolve()
        .then(tick)
        .finally(() => {
          running = false;
        });
    }, ms);
    timer.unref();
    return { cancel: () => clearInterval(timer) };
  },
};

interface ManualTimer {
  due: number;
  ms: number;
  tick: () => void | Promise<void>;
  cancelled: boolean;
}

/**
 * A clock that moves only when told: `advance(ms)` runs every tick due up to `now() + ms`, the
 * earliest first, awaiting each (a tick that throws rejects `advance`). Starts at `start`
 * (default 0).
 */
export class ManualClock implements Clock {
  #now: number;
  #timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  every(ms: number, tick: () => void | Promise<void>): Scheduled {
    if (!(ms > 0)) throw new RangeError(`ManualClock.every: expected a positive interval, got ${ms}`);
    const t: ManualTimer = { due: this.#now + ms, ms, tick, cancelled: false };
    this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
        this.#timers = this.#timers.filter((x) => x !== t);
      },
    };
  }

  /** Move time forward by `ms`, running each tick as it falls due. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      const next = this.#timers.filter((t) => t.due <= end).sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      this.#now = next.due;
      next.due += next.ms;
      await next.tick();
    }
    this.#now = end;
  }

  /** Ticks scheduled now (cancelled ones are gone). */
  get pending(): number {
    return this.#timers.length;
  }
}
