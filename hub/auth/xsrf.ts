import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { parse as parseCookies, serialize } from 'cookie';

export const XSRF_COOKIE = '_xsrf';

/**
 * XSRF tokens that an attacker on a sibling path or subdomain cannot forge or plant (GHSA-7r3h-4ph8-w38g):
 * - logged in: HMAC(secret, session id); changes at every login, checked against the server-side session;
 * - anonymous (the login form): `<nonce>.<HMAC(secret, nonce)>`, double-submitted in the `_xsrf` cookie.
 * The cookie is readable by scripts (as JupyterHub's is) so that tools which read `_xsrf` and post it back work.
 */
export class Xsrf {
  constructor(private readonly secret: string, private readonly secure: boolean) {}

  private mac(value: string): string {
    return createHmac('sha256', this.secret).update(value).digest('base64url');
  }

  forSession(sessionId: string): string {
    return this.mac(`session:${sessionId}`);
  }

  private validAnonymous(token: string | undefined): boolean {
    if (!token || token.length > 200) return false;
    const dot = token.indexOf('.');
    return dot > 0 && safeEqual(token.slice(dot + 1), this.mac(`anon:${token.slice(0, dot)}`));
  }

  /** The token for the current visitor; sets the anonymous cookie when a new one is needed. */
  tokenFor(req: Request, res: Response, sessionId: string | null): string {
    if (sessionId) {
      const token = this.forSession(sessionId);
      if (parseCookies(req.headers.cookie ?? '')[XSRF_COOKIE] !== token) this.setCookie(res, token);
      return token;
    }
    const existing = parseCookies(req.headers.cookie ?? '')[XSRF_COOKIE];
    if (this.validAnonymous(existing)) return existing!;
    const nonce = randomBytes(16).toString('base64url');
    const token = `${nonce}.${this.mac(`anon:${nonce}`)}`;
    this.setCookie(res, token);
    return token;
  }

  private setCookie(res: Response, token: string): void {
    res.append('Set-Cookie', serialize(XSRF_COOKIE, token, { sameSite: 'lax', secure: this.secure, path: '/hub/', maxAge: 86_400 }));
  }

  /** The token a request carries: `_xsrf` form field or query argument, or an `X-XSRFToken`/`X-CSRFToken` header. */
  submitted(req: Request): string | undefined {
    const header = req.get('x-xsrftoken') ?? req.get('x-csrftoken');
    if (header) return header;
    const body = req.body as Record<string, unknown> | undefined;
    if (body && typeof body === 'object' && typeof body._xsrf === 'string') return body._xsrf;
    const query = req.query._xsrf;
    return typeof query === 'string' ? query : undefined;
  }

  /** True when the request carries the token of its session, or (anonymous) a valid token equal to its cookie. */
  check(req: Request, sessionId: string | null): boolean {
    const given = this.submitted(req);
    if (!given) return false;
    if (sessionId) return safeEqual(given, this.forSession(sessionId));
    const cookieToken = parseCookies(req.headers.cookie ?? '')[XSRF_COOKIE];
    return this.validAnonymous(given) && cookieToken !== undefined && safeEqual(given, cookieToken);
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
