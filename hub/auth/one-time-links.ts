import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../db/index.js';
import type { InvitationRow, UserRow } from '../db/schema.js';
import { secretDigest } from './tokens.js';
import { BY_HUB, recordAudit, userActor, userTarget, type AuditBy } from '../audit/record.js';

/**
 * One-time links carry no power of their own. The first-admin setup link creates one new admin account, and only
 * while no admin exists. An invitation sets the password of the one account it was made for (its row id, which
 * neither SQLite's AUTOINCREMENT nor a PostgreSQL sequence reuses) and only while that account is as it was when the
 * link was made: same creation time, same admin flag, same password. Whatever admin rights the account has come
 * from the account; deleting it, changing its admin flag or setting its password revokes its links.
 */

/** How long an invitation link works. */
export const INVITATION_TTL_S = 7 * 86_400;
/** How long the setup link printed at first start works. */
export const SETUP_TTL_S = 24 * 3600;

/** What the link was made for has changed; the link must not act on what the account is now. */
export function accountState(user: Pick<UserRow, 'id' | 'created' | 'admin' | 'password_hash'>): string {
  return createHash('sha256').update(JSON.stringify([user.id, user.created, user.admin ? 1 : 0, user.password_hash ?? ''])).digest('hex');
}

async function storeLink(store: Store, user: UserRow | null, ttlSeconds: number, maker: AuditBy): Promise<string> {
  const code = randomBytes(24).toString('base64url');
  const expiresAt = new Date(Date.now() + ttlSeconds * 1000).toISOString();
  await store.transaction(async (tx) => {
    await tx.invitations.create({ codeHash: secretDigest(code), userId: user?.id ?? null, accountState: user ? accountState(user) : null, expiresAt });
    await recordAudit(tx, {
      action: 'link.create', actor: maker.actor, source: maker.source,
      ...(user ? { target: userTarget(user) } : {}), details: { link: user ? 'invitation' : 'setup', expires_at: expiresAt },
    });
  });
  return code;
}

/** A new setup link; earlier ones stop working. Only the code's hash is stored: the DB alone never yields a link. */
export async function createSetupLink(store: Store): Promise<string> {
  await store.invitations.deleteSetupLinks();
  return storeLink(store, null, SETUP_TTL_S, BY_HUB);
}

/** A link that sets `user`'s password, bound to the account as it is now. */
export function createInvitation(store: Store, user: UserRow, maker: AuditBy): Promise<string> {
  return storeLink(store, user, INVITATION_TTL_S, maker);
}

/** Where an invitation's code is used: the page at `<origin>/hub/invite` (API, admin pages and CLI alike). */
export function invitationUrl(origin: string, code: string): string {
  return `${origin}/hub/invite?code=${code}`;
}

export type LinkTarget = { kind: 'setup' } | { kind: 'account'; user: UserRow };

/** What a stored link may act on now, or null when it is dead. */
async function targetOf(store: Store, link: InvitationRow): Promise<LinkTarget | null> {
  if (link.user_id === null) return (await store.users.countAdmins()) === 0 ? { kind: 'setup' } : null;
  const user = await store.users.byId(link.user_id);
  return user && link.account_state === accountState(user) ? { kind: 'account', user } : null;
}

/** The live link for a code, to show its form; null when the code is unknown, expired, used or dead. */
export async function openLink(store: Store, code: string): Promise<LinkTarget | null> {
  const link = code ? await store.invitations.valid(secretDigest(code)) : undefined;
  return link ? targetOf(store, link) : null;
}

/** The setup link was asked to create an account whose name is taken; the link stays usable. */
class NameTaken extends Error {}

export type Redemption = { user: UserRow; setup: boolean } | 'dead' | 'taken';

/**
 * Uses a link up: in one transaction the link is taken (atomically, so two concurrent uses cannot both succeed) and
 * either the new admin account is created (setup link) or the bound account's password is set, which revokes the
 * account's other links. `username` matters only for the setup link, which never touches an existing account.
 */
export async function redeemLink(store: Store, code: string, username: string, passwordHash: string, source: string | null): Promise<Redemption> {
  let creating = false;
  try {
    return await store.transaction(async (tx): Promise<Redemption> => {
      const link = await tx.invitations.consume(secretDigest(code));
      const target = link ? await targetOf(tx, link) : null;
      if (!target) return 'dead';
      if (target.kind === 'account') {
        const user = await tx.users.update(target.user.id, { passwordHash });
        await tx.users.rotateCookieId(user.id);
        await recordAudit(tx, { action: 'link.use', actor: userActor(user), target: userTarget(user), source, details: { link: 'invitation' } });
        return { user, setup: false };
      }
      if (await tx.users.byName(username)) throw new NameTaken();
      creating = true;
      const user = await tx.users.create(username, { admin: true, passwordHash });
      await tx.invitations.deleteSetupLinks();
      await recordAudit(tx, { action: 'link.use', actor: userActor(user), target: userTarget(user), source, details: { link: 'setup' } });
      await recordAudit(tx, { action: 'user.create', actor: userActor(user), target: userTarget(user), source, details: { admin: true } });
      return { user, setup: true };
    });
  } catch (err) {
    // A concurrent account creation under the same name fails on the unique name; either way nothing was written.
    if (err instanceof NameTaken || (creating && (await store.users.byName(username)))) return 'taken';
    throw err;
  }
}
