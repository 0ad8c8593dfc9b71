import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../db/index.js';

/** How long an invitation link works. */
export const INVITATION_TTL_S = 7 * 86_400;

/** Only this hash of a link's code is stored, so the DB alone never yields a working link. */
export const linkCodeHash = (code: string) => createHash('sha256').update(code).digest('hex');

/** Creates a one-time link code, stores its hash, and returns the code. */
export async function createOneTimeLink(ctx: { store: Store }, username: string | null, admin: boolean, ttlSeconds: number): Promise<string> {
  const code = randomBytes(24).toString('base64url');
  await ctx.store.invitations.create({ codeHash: linkCodeHash(code), username, admin, expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString() });
  return code;
}
