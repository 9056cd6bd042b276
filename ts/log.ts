/** Structured logging: one JSON object per line, one line per lifecycle event. */

/** Receives lifecycle events (`event` names what happened; the rest are its fields). */
export type Logger = (event: string, fields?: Record<string, unknown>) => void;

/** Discards everything (the library default). */
export const silent: Logger = () => {};

/** Writes `{"time":…,"event":…,…}` lines to `stream`. */
export function jsonLines(stream: { write(line: string): unknown } = process.stdout): Logger {
  return (event, fields = {}) => {
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
  };
}
