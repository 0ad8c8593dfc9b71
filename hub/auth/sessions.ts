import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { parse as parseCookies, serialize } from 'cookie';
import { nowIso } from '../db/database.js';
import type { Store } from '../db/index.js';
import type { SessionRow, UserRow } from '../db/schema.js';
import { secretDigest } from './tokens.js';

export const SESSION_COOKIE = 'labhub-session';

export interface SessionOptions {
  maxAgeDays: number;
  /** Secure cookies: true when the public URL is https. */
  secure: boolean;
}

export interface ActiveSession {
  session: SessionRow;
  user: UserRow;
}


/**
 * Browser sessions, kept in the DB so that they survive hub restarts and can be ended from the server side.
 * The cookie holds `<id>.<secret>`; the DB holds the id and a hash of the secret, so a leaked DB gives no cookie.
 * A session is valid only while the user's cookie_id is the one it was created with: rotating it logs the user
 * out everywhere.
 */
export class SessionManager {
  constructor(private readonly store: Store, private readonly options: SessionOptions) {}

  cookies(req: Request): Record<string, string | undefined> {
    return parseCookies(req.headers.cookie ?? '');
  }

  async current(req: Request): Promise<ActiveSession | null> {
    return this.fromCookieValue(this.cookies(req)[SESSION_COOKIE]);
  }

  /** The live session a session cookie's value names, or null for anything else (unknown, expired, logged out). */
  async fromCookieValue(raw: string | undefined): Promise<ActiveSession | null> {
    if (!raw || raw.length > 200) return null;
    const dot = raw.indexOf('.');
    if (dot <= 0) return null;
    const id = raw.slice(0, dot);
    const secret = raw.slice(dot + 1);
    const session = await this.store.sessions.byId(id);
    if (!session) return null;
    const given = Buffer.from(secretDigest(secret));
    const stored = Buffer.from(session.secret_hash);
    if (given.length !== stored.length || !timingSafeEqual(given, stored)) return null;
    const user = await this.store.users.byId(session.user_id);
    if (!user || user.cookie_id !== session.cookie_id) return null;
    return { session, user };
  }

  /** Starts a fresh session (a new id on every login: no session fixation) and sets its cookie. */
  async start(res: Response, user: UserRow): Promise<SessionRow> {
    const id = randomBytes(16).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const expires = new Date(Date.now() + this.options.maxAgeDays * 86_400_000);
    const row: SessionRow = {
      id, secret_hash: secretDigest(secret), user_id: user.id, cookie_id: user.cookie_id, created: nowIso(), expires_at: expires.toISOString(),
    };
    await this.store.sessions.create(row);
    res.append('Set-Cookie', serialize(SESSION_COOKIE, `${id}.${secret}`, {
      httpOnly: true, sameSite: 'lax', secure: this.options.secure, path: '/hub/', expires,
    }));
    return row;
  }

  /** Ends a session and every token issued under it (OAuth tokens of notebook servers opened in it). */
  async end(res: Response, session: SessionRow | null): Promise<void> {
    if (session) {
      await this.store.tokens.deleteForSession(session.id);
      await this.store.sessions.delete(session.id);
    }
    res.append('Set-Cookie', serialize(SESSION_COOKIE, '', {
      httpOnly: true, sameSite: 'lax', secure: this.options.secure, path: '/hub/', expires: new Date(0),
    }));
  }
}
