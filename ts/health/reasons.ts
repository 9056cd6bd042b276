/**
 * How a probe reports its outcome: the reasons a person can act on for socket,
 * TLS and HTTP errors, and which errors are this process's own (no verdict).
 * Shared by every probe type (`probes.ts`, `grpc.ts`).
 */

/** The User-Agent every HTTP and gRPC check sends, so backends can tell checks from traffic. */
export const USER_AGENT = 'switchyard-health-check';

/** Settles one check: `local` marks a failure of this process, not of the backend. */
export type Finish = (ok: boolean, reason: string, local?: boolean) => void;

/** A system error as Node reports it (spelled out so the published types need no @types/node). */
export type ErrnoError = Error & { code?: string; syscall?: string };

/** Errors of this process or host, not of the backend: out of file descriptors. */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE']);

/** Whether `err` is a local resource error (see `CheckResult.local`). */
export function isLocalError(err: unknown): boolean {
  return LOCAL_ERRORS.has((err as ErrnoError | null)?.code ?? '');
}

const SYSTEM_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  ETIMEDOUT: 'connect timed out (kernel)',
};

/** A reason for a socket, TLS or HTTP error; `handshaking`: TCP is up, the TLS handshake is not done. */
export function describeError(err: ErrnoError, handshaking: boolean): string {
  const code = err.code ?? '';
  // http's name for "the server closed the connection before answering" (code ECONNRESET).
  if (err.message === 'socket hang up') return handshaking ? 'TLS: connection closed during the handshake' : 'connection closed before a response';
  const system = SYSTEM_ERRORS[code];
  if (system) return handshaking ? `TLS: ${system} during the handshake` : system;
  if (code.startsWith('HPE_')) return `invalid HTTP response: ${err.message}`;
  if (err.syscall) return `${code || 'error'}: ${err.message}`;
  // Verify errors (CERT_HAS_EXPIRED, …), ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_* alerts.
  if (handshaking || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) return `TLS: ${err.message}`;
  return err.message;
}
