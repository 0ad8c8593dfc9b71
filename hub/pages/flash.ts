import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { parse as parseCookies } from 'cookie';

const FLASH_COOKIE = 'labhub-flash';
const FLASH_ID = /^[0-9a-f]{12}$/;
const MAX_TEXT = 500;

export type FlashKind = 'done' | 'error';

/**
 * Redirects (303) with the outcome of an action. The text travels in a short-lived cookie and the address only
 * names it (`?done=<id>`, `?error=<id>`): text taken from the query would let any link put words in the hub's banners.
 */
export function redirectWithFlash(res: Response, target: string, kind: FlashKind, text: string): void {
  const id = randomBytes(6).toString('hex');
  res.cookie(FLASH_COOKIE, `${id}.${kind}.${text.slice(0, MAX_TEXT)}`, {
    path: '/hub/', httpOnly: true, sameSite: 'lax', secure: res.req.secure, maxAge: 60_000,
  });
  res.redirect(303, `${target}${target.includes('?') ? '&' : '?'}${kind}=${id}`);
}

/** The outcome the address names, if this browser was just sent here with it; empty strings otherwise. */
export function flash(req: Request): { done: string; message: string } {
  const stored = parseCookies(req.headers.cookie ?? '')[FLASH_COOKIE] ?? '';
  const [id, kind] = stored.split('.', 2);
  const text = stored.slice(`${id}.${kind}.`.length);
  const named = (key: FlashKind) => key === kind && typeof req.query[key] === 'string' && FLASH_ID.test(req.query[key] as string) && req.query[key] === id;
  return { done: named('done') ? text : '', message: named('error') ? text : '' };
}
