import { randomBytes } from 'node:crypto';
import type { Store } from '../db/index.js';
import { secretDigest } from './tokens.js';

/** How long an invitation link works. */
export const INVITATION_TTL_S = 7 * 86_400;

/** Creates a one-time link code, stores only its hash (the DB alone never yields a working link), returns the code. */
export async function createOneTimeLink(ctx: { store: Store }, username: string | null, admin: boolean, ttlSeconds: number): Promise<string> {
  const code = randomBytes(24).toString('base64url');
  await ctx.store.invitations.create({ codeHash: secretDigest(code), username, admin, expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString() });
  return code;
}
