/**
 * Host names in backend addresses (`api.internal:8080`) and SRV names
 * (`_http._tcp.api.internal`): what the validator accepts as a name to resolve.
 * No imports from `config/`, so the checker can use it without a cycle.
 */

/** One DNS label (letters, digits, inner hyphens), at most 63 characters. */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
/** A host name: labels joined by dots, an optional final dot, at least one letter somewhere
 * (so a malformed IPv4 literal such as `10.0.0.300` is never taken for a name). */
const HOST_NAME = new RegExp(`^(?=.*[A-Za-z])${LABEL}(?:\\.${LABEL})*\\.?$`);
/** An SRV owner name: `_service._proto.` then a host name (RFC 2782). */
const SRV_NAME = new RegExp(`^_[A-Za-z0-9-]{1,62}\\._(?:tcp|udp|sctp)\\.${LABEL}(?:\\.${LABEL})*\\.?$`);

/** The JSON Schema pattern of a backend address that names a host (`name:port`). */
export const HOST_ADDRESS_PATTERN = `^${LABEL}(\\.${LABEL})*\\.?:\\d{1,5}$`;
/** The JSON Schema pattern of an SRV name. */
export const SRV_NAME_PATTERN = SRV_NAME.source;

/** Is `s` a host name that can be resolved (at most 253 characters)? */
export function isHostName(s: string): boolean {
  return s.length <= 253 && HOST_NAME.test(s);
}

/** Is `s` an SRV name such as `_http._tcp.api.internal`? */
export function isSrvName(s: string): boolean {
  return s.length <= 253 && SRV_NAME.test(s);
}

/** A backend address that names a host: the name and the port. */
export interface HostPort {
  host: string;
  port: number;
}

/** `name:port` with a resolvable host name and a port `minPort..65535`, or undefined. */
export function parseHostPort(s: string, minPort: number): HostPort | undefined {
  const m = /^([^:[\]]+):(\d{1,5})$/.exec(s);
  if (!m || !isHostName(m[1]!)) return undefined;
  const port = Number(m[2]);
  return port >= minPort && port <= 65535 ? { host: m[1]!, port } : undefined;
}
