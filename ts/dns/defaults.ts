/**
 * Defaults of the `dns` section (its own module so `config/fields.ts` can show them in the
 * JSON Schema without importing the DNS validator).
 */
export const DNS_DEFAULTS = Object.freeze({
  /** A record's TTL is raised to 5s: a TTL of 0 or 1 must not turn into a query storm. */
  min_ttl_ms: 5_000,
  /** ... and lowered to 5m, so a long TTL does not hide a change for hours (nginx `valid=`). */
  max_ttl_ms: 300_000,
  /** One query's timeout; with two tries per server, a dead server costs at most a few seconds at start. */
  timeout_ms: 2_000,
  /** A and AAAA records, as nginx's resolver does by default. */
  family: 'any' as const,
});
