import type { AuthenticatedUser } from '../../authenticators/authenticator.js';
import type { HubContext } from '../context.js';
import type { UserRow } from '../db/schema.js';
import { GROUP_NAME } from '../api/groups.js';
import { normalizeUsername } from './usernames.js';
import { dropLostAccess } from '../sharing/lost-access.js';

const normalized = (names: string[]) => new Set(names.map(normalizeUsername));
const meets = (groups: Set<string>, wanted: string[]) => wanted.some((g) => groups.has(g));

/**
 * What the hub decides after an identity source vouched for someone: blocked or not, allowed or not, admin or not,
 * which hub groups, and the auth_state to keep. Returns the hub user, or null when the login is refused.
 */
export async function admitUser(ctx: HubContext, result: AuthenticatedUser): Promise<UserRow | null> {
  const { store } = ctx;
  const { blocked_users: blockedUsers, allowed_users: allowedUsers, admin_users: adminUsers } = ctx.config.authenticator;
  const { allowed_groups: allowedGroups, admin_groups: adminGroups, blocked_groups: blockedGroups } = ctx.config.auth;
  const groups = new Set(result.groups ?? []);
  // Deny rules run before any allow rule, so no allow setting can bypass them (GHSA-gprj-3p75-f996).
  if (normalized(blockedUsers).has(result.name) || meets(groups, blockedGroups)) return null;

  const configuredAdmin = normalized(adminUsers).has(result.name);
  const groupAdmin = meets(groups, adminGroups);
  let user = await store.users.byName(result.name);
  // Native accounts exist before their first login; other sources create the hub user on first login if allowed.
  if (!user && ctx.authenticator.kind === 'native') return null;
  const anyAllowRule = allowedUsers.length > 0 || allowedGroups.length > 0;
  // An existing hub account (made by an admin) counts as allowed, unless access is managed by group.
  const allowed = !anyAllowRule || configuredAdmin || groupAdmin || normalized(allowedUsers).has(result.name)
    || meets(groups, allowedGroups) || (user !== undefined && allowedGroups.length === 0);
  if (!allowed) return null;

  if (result.identity && !(await identityMatches(ctx, result.identity, user))) {
    ctx.log.warn({ user: result.name, issuer: result.identity.issuer }, 'login refused: this username belongs to another identity at the provider');
    return null;
  }

  const grant = configuredAdmin || groupAdmin || result.admin === true;
  // admin_groups is authoritative: outside them (and outside admin_users) a user loses admin at login.
  const admin = grant ? true : adminGroups.length > 0 || result.admin === false ? false : undefined;
  if (!user) user = await store.users.create(result.name, { admin: admin === true });
  else if (admin !== undefined && Boolean(user.admin) !== admin) user = await store.users.update(user.id, { admin });

  if (result.identity && (await store.identities.subjectOf(user.id, result.identity.issuer)) === undefined) {
    await store.identities.bind(result.identity.issuer, result.identity.subject, user.id);
  }
  if (ctx.config.auth.manage_groups && result.groups) await syncGroups(ctx, user, result.groups);
  const info = result.userInfo ? JSON.stringify(result.userInfo) : null;
  if (result.userInfo !== undefined && info !== user.user_info) user = await store.users.update(user.id, { userInfo: info });
  if (ctx.authState && ctx.config.auth.auth_state.enabled && result.authState) {
    user = await store.users.update(user.id, { authState: ctx.authState.seal(user.id, result.authState) });
  }
  return user;
}

/** Makes the user's hub groups exactly the source's groups, creating missing ones; names the hub cannot hold are skipped. */
async function syncGroups(ctx: HubContext, user: UserRow, names: string[]): Promise<void> {
  const valid = [...new Set(names)].filter((n) => GROUP_NAME.test(n));
  await ctx.store.transaction(async (tx) => {
    const ids: number[] = [];
    for (const name of valid) ids.push((await tx.groups.byName(name) ?? await tx.groups.create(name)).id);
    await tx.groups.setUserGroups(user.id, ids);
  });
  await dropLostAccess(ctx, [user.id]);
}

/**
 * A provider identity and a hub user go together only one to one: the subject must not already belong to another
 * hub user (the username claim changed), and the user must not already be bound to another subject of this
 * issuer (someone else now carries that username claim). Users without a binding yet are bound at this login.
 */
async function identityMatches(ctx: HubContext, identity: { issuer: string; subject: string }, user: UserRow | undefined): Promise<boolean> {
  const owner = await ctx.store.identities.userOf(identity.issuer, identity.subject);
  if (owner !== undefined && owner !== user?.id) return false;
  if (!user) return true;
  const subject = await ctx.store.identities.subjectOf(user.id, identity.issuer);
  return subject === undefined || subject === identity.subject;
}
