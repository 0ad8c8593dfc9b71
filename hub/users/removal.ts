import type { HubContext } from '../context.js';
import type { UserRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { oauthClientId } from '../servers/naming.js';
import { recordAudit, userTarget, type AuditBy } from '../audit/record.js';
import { oauthTokensByRoute } from '../sharing/lost-access.js';

/** What deleting an account did, for the log and the admin. */
export interface UserRemoval {
  user: string;
  purge: boolean;
  /** Objects removed outside the hub's DB (roles, schemas, volumes, PVCs). */
  removed: string[];
  /** What could not be removed, with the reason; the account is deleted all the same. */
  failed: string[];
}

/**
 * Deletes an account and everything it held. Its servers stop first (their tokens, OAuth clients, routes and
 * credential leases go with them); the user row goes next, with its tokens, sessions, OAuth codes, identities and
 * memberships (foreign keys cascade), in the transaction that records the deletion as done `by` whoever asked, so
 * the name is free and nothing more can start. Then what lives outside the DB: each data service drops the user's
 * owner role, and with `purge` their schema and database, and the spawner removes their home volume or PVC. Without `purge` that data stays where it is, named from the deleted account's
 * uid (or legacy name), which no later account is ever given.
 */
export async function removeUser(ctx: HubContext, user: UserRow, options: { purge: boolean }, by: AuditBy): Promise<UserRemoval> {
  for (const server of (await ctx.store.servers.forUsers([user.id])).get(user.id) ?? []) {
    if (server.status === 'stopped') continue;
    if ((await ctx.servers.stop(user, server.name, 30_000, by)) === 'pending') throw new HttpError(400, `${user.name}'s server is still stopping; try again`);
  }
  const failed: string[] = [];
  // Leases outlive the user row; a revocation that fails here is retried by the sweeper.
  const unrevoked = await ctx.credentials.revokeUser(user.name);
  if (unrevoked.length) failed.push(`${unrevoked.length} credential lease(s) not revoked yet; the sweeper retries them`);
  const clientPrefix = oauthClientId(user.uid, '');
  const signedIn = await oauthTokensByRoute(ctx, user.id);
  await ctx.store.transaction(async (tx) => {
    for (const id of await tx.oauth.allClientIds()) {
      if (id !== clientPrefix && !id.startsWith(`${clientPrefix}-`)) continue;
      await tx.tokens.deleteForClient(id);
      await tx.oauth.deleteClient(id);
    }
    await tx.users.delete(user.id);
    await recordAudit(tx, { action: 'user.delete', ...by, target: userTarget(user), details: { purge: options.purge } });
  });
  // Tabs the account still has open on other people's servers lose them now, not when singleuser's cache runs out.
  for (const [route, hashes] of signedIn) await ctx.revocations.refuse(route, hashes);
  const owner = { name: user.name, uid: user.uid, legacyName: user.legacy_name };
  const services = await ctx.credentials.removeUser(owner, options);
  const removed = [...services.removed];
  failed.push(...services.failed);
  if (options.purge && ctx.spawner.removeUserData) {
    try {
      removed.push(...(await ctx.spawner.removeUserData(owner)));
    } catch (err) {
      failed.push(`${ctx.spawner.kind} spawner: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { user: user.name, purge: options.purge, removed, failed };
}
