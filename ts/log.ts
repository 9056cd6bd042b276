/**
 * Structured logging: one line per lifecycle event, with a level.
 *
 * Lines are pino-compatible JSON (`level` 10..60, `time` in epoch ms, `pid`,
 * `hostname`, `msg`) and keep Switchyard's `event` name and fields, so `pino-pretty`,
 * jq and log shippers read them as they are. On a terminal `consoleLogger` writes a
 * readable one-line form instead. Repeated identical lines are folded by `Repeats`.
 */
import { hostname } from 'node:os';

/** Log levels, as pino numbers them. */
export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/** A level name: `trace`, `debug`, `info`, `warn`, `error`, `fatal`. */
export type LogLevel = keyof typeof LEVELS;

/** Receives lifecycle events (`event` names what happened; the rest are its fields). Without a
 * `level` the level follows from the event's name (`levelOf`). */
export type Logger = (event: string, fields?: Record<string, unknown>, level?: LogLevel) => void;

/** Discards everything (the library default). */
export const silent: Logger = () => {};

/** Where lines go: a stream, or anything with `write` (and `isTTY` when it is a terminal). */
export interface LineStream {
  write(line: string): unknown;
  isTTY?: boolean;
}

/** Options of the line loggers. */
export interface LineOptions {
  /** Lines below this level are dropped. Default `info`. */
  level?: LogLevel;
}

/** Events that are worth an operator's attention but are no failure of Switchyard itself. */
const WARN_EVENTS = new Set([
  'backend.down',
  'backend.ejected',
  'backend.ejection_skipped',
  'backend.events_dropped',
  'backend.proxy_refused',
  'backend.connection_refused',
  'backend.drain_closed',
  'tls.certificate_expired',
  'health.local_error',
]);

/** The level of `event` when the caller gives none: `*_failed` / `*_error` / `*.error` are
 * errors, the events in `WARN_EVENTS` warnings, everything else info. */
export function levelOf(event: string): LogLevel {
  if (/(?:_failed|_error|\.error)$/.test(event)) return 'error';
  return WARN_EVENTS.has(event) ? 'warn' : 'info';
}

/** `value` as a level, or an error naming `what` and the accepted names. */
export function parseLevel(value: string, what = '--log-level'): LogLevel {
  if (Object.hasOwn(LEVELS, value)) return value as LogLevel;
  throw new RangeError(`${what}: expected one of ${Object.keys(LEVELS).join(', ')}, got "${value}"`);
}

/** The one-line human summary of an event, pino's `msg`: the event, its backend, its reason. */
function message(event: string, fields: Record<string, unknown>): string {
  const where = [fields.pool, fields.address ?? fields.listener].filter((x) => typeof x === 'string' && x !== '').join(' ');
  const why = fields.reason ?? fields.error;
  return `${event}${where ? ` ${where}` : ''}${typeof why === 'string' && why ? `: ${why}` : ''}`;
}

/** A logger that writes lines formatted by `format`, dropping those below `options.level`. */
function lineLogger(stream: LineStream, options: LineOptions, format: (level: LogLevel, event: string, fields: Record<string, unknown>) => string): Logger {
  const min = LEVELS[options.level ?? 'info'];
  return (event, fields = {}, level = levelOf(event)) => {
    if (LEVELS[level] >= min) stream.write(`${format(level, event, fields)}\n`);
  };
}

const PID = process.pid;
const HOST = hostname();

/** One pino-compatible JSON object per line: `{"level":30,"time":…,"pid":…,"hostname":…,"event":…,…,"msg":…}`. */
export function jsonLines(stream: LineStream = process.stdout, options: LineOptions = {}): Logger {
  return lineLogger(stream, options, (level, event, fields) => {
    const fixed = { level: LEVELS[level], time: Date.now(), pid: PID, hostname: HOST, event };
    // Fields come after the fixed keys but can never replace them (a field named `level` would break readers).
    return JSON.stringify(Object.assign({ ...fixed }, fields, fixed, { msg: message(event, fields) }));
  });
}

/** One readable line per event for a terminal: `12:00:01.250 WARN  backend.down pool=api address=… reason="…"`. */
export function prettyLines(stream: LineStream = process.stdout, options: LineOptions = {}): Logger {
  return lineLogger(stream, options, (level, event, fields) => {
    const now = new Date();
    const time = `${now.toTimeString().slice(0, 8)}.${String(now.getMilliseconds()).padStart(3, '0')}`;
    const rest = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${time} ${level.toUpperCase().padEnd(5)} ${event}${rest ? ` ${rest}` : ''}`;
  });
}

/** The command line's logger: readable lines on a terminal, JSON lines otherwise. */
export function consoleLogger(options: LineOptions & { stream?: LineStream } = {}): Logger {
  const stream = options.stream ?? process.stdout;
  return stream.isTTY ? prettyLines(stream, options) : jsonLines(stream, options);
}

/**
 * Folds repeated items: the first item of a key passes at once; more of the same key within
 * `windowMs` are only counted, and when the window ends the last of them is handed to
 * `summary` with how many were held back (then a new window starts). So a storm of one kind
 * costs at most one line per key per window, and nothing is lost from the count.
 */
export class Repeats<T> {
  readonly #open = new Map<string, { last: T | undefined; count: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly windowMs: number,
    private readonly summary: (item: T, repeated: number) => void,
  ) {}

  /** Whether `item` should go out now (otherwise it is counted towards the window's summary). */
  admit(key: string, item: T): boolean {
    const open = this.#open.get(key);
    if (open) {
      open.count++;
      open.last = item;
      return false;
    }
    this.#start(key);
    return true;
  }

  /** Hand out every pending summary now and forget all windows. */
  flush(): void {
    for (const [key, open] of this.#open) {
      clearTimeout(open.timer);
      this.#open.delete(key);
      if (open.count > 0) this.summary(open.last as T, open.count);
    }
  }

  #start(key: string): void {
    const timer = setTimeout(() => {
      const open = this.#open.get(key)!;
      this.#open.delete(key);
      if (open.count === 0) return;
      // The storm goes on: a new window, so the next summary is at most one window away too.
      this.#start(key);
      this.summary(open.last as T, open.count);
    }, this.windowMs);
    timer.unref();
    this.#open.set(key, { last: undefined, count: 0, timer });
  }
}
