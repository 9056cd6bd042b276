/**
 * Bearer-token authentication of the admin server. Tokens are compared in
 * constant time: both sides are hashed to 32 bytes first, so neither the
 * content nor the length of the configured token leaks through timing.
 *
 * Browsers cannot send an `Authorization` header from a bookmark, so the
 * dashboard also accepts `GET /?token=…` once: it sets an HttpOnly,
 * SameSite=Strict cookie holding an HMAC of the token (never the token itself)
 * and redirects to `/`. The cookie is honoured for GET (and HEAD) requests only, so it
 * can read (the page, `/api/*` reads, the stream, `/metrics`) but never change
 * anything; changes always need the header.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const COOKIE = 'switchyard_admin';

function sha256(s: string | Buffer): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Checks requests against a configured token (or lets everything through when there is none). */
export class Auth {
  readonly #want: Buffer | null;
  readonly #cookie: string | null;

  constructor(token: string | null) {
    this.#want = token === null ? null : sha256(token);
    this.#cookie = token === null ? null : createHmac('sha256', token).update('switchyard admin dashboard cookie v1').digest('base64url');
  }

  get required(): boolean {
    return this.#want !== null;
  }

  /** Constant-time comparison of a presented token with the configured one. */
  matches(given: string): boolean {
    return this.#want !== null && timingSafeEqual(sha256(given), this.#want);
  }

  /** Is `req` allowed: a matching bearer token, or (GET and HEAD only) the dashboard cookie. */
  allows(req: IncomingMessage): boolean {
    if (this.#want === null) return true;
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer +(\S+) *$/i.exec(header);
      return m !== null && this.matches(m[1]!);
    }
    if ((req.method !== 'GET' && req.method !== 'HEAD') || this.#cookie === null) return false;
    const given = cookieValue(req.headers.cookie, COOKIE);
    return given !== undefined && timingSafeEqual(sha256(given), sha256(this.#cookie));
  }

  /** The `Set-Cookie` header value for a browser that presented the right `?token=`. */
  setCookie(secure: boolean): string {
    return `${COOKIE}=${this.#cookie}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
