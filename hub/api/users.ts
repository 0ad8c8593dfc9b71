import { Router } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { Requester } from '../auth/identity.js';
import type { UserRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { PASSWORDS_SCOPE } from '../auth/scopes.js';
import { userModels } from './models.js';
import { removeUser, type UserRemoval } from '../users/removal.js';
import { createInvitation, INVITATION_TTL_S, invitationUrl } from '../auth/one-time-links.js';
import { publicOrigin } from '../config/load.js';
import { actorOf, recordAudit, sourceOf, userTarget } from '../audit/record.js';
import { isEmptyBody, paginatedBody, pagination, parseInput, requestUrl, usernameFrom, wantsPagination } from './validate.js';
import { dropLostAccess } from '../sharing/lost-access.js';

/** Unknown arguments are ignored, as JupyterHub does (clients add cache-busters such as `_=<time>`). */
const listQuery = z.object({
  state: z.enum(['active', 'ready', 'inactive']).optional(),
  include_stopped_servers: z.string().optional(),
  sort: z.enum(['id', 'name', 'last_activity', '-id', '-name', '-last_activity']).optional(),
  name_filter: z.string().max(255).optional(),
  offset: z.string().optional(),
  limit: z.string().optional(),
});

const bulkCreateBody = z.strictObject({
  usernames: z.array(z.string().max(1024)).min(1).max(100_000),
  admin: z.boolean().default(false),
});

const deleteQuery = z.object({ purge: z.enum(['true', 'false', '1', '0']).optional() });

const createBody = z.strictObject({ admin: z.boolean().default(false) }).nullable().optional();

const patchBody = z.strictObject({
  name: z.string().max(1024).optional(),
  admin: z.boolean().optional(),
  groups: z.array(z.string().max(255)).optional(),
  roles: z.array(z.string()).optional(),
  auth_state: z.record(z.string(), z.unknown()).nullable().optional(),
}).refine((b) => Object.keys(b).length > 0, 'at least one of name, admin, groups, auth_state is required');

const isoTime = z.string().max(64).refine((s) => !Number.isNaN(Date.parse(s)) && /(Z|[+-]\d\d:?\d\d)$/.test(s), 'expected an ISO 8601 timestamp with a timezone');
const activityBody = z.strictObject({
  last_activity: isoTime.optional(),
  servers: z.record(z.string(), z.strictObject({ last_activity: isoTime })).optional(),
}).refine((b) => b.last_activity !== undefined || b.servers !== undefined, 'last_activity or servers is required');

/** Users: list, create, read, change, delete, and activity reports from servers. */
export function usersRouter(ctx: HubContext): Router {
  const router = Router();
  const { store, authz } = ctx;

  const modelsFor = (requester: Requester, users: UserRow[], includeStopped: boolean) => userModels(ctx, requester, users, includeStopped);

  async function existingUser(raw: string): Promise<UserRow> {
    const user = await store.users.byName(usernameFrom(raw));
    if (!user) throw new HttpError(404, `No such user: ${raw.slice(0, 64)}`);
    return user;
  }

  router.get('/users', async (req, res) => {
    const { requester, only } = authz.requireList(res.locals.requester ?? null, 'list:users');
    const q = parseInput(listQuery, req.query, 'query');
    const paginated = wantsPagination(req.get('accept'));
    const { offset, limit } = pagination(req.query, paginated);
    const names = only ? [...only.user] : undefined;
    const groups = only ? [...only.group] : undefined;
    const sort = (q.sort ?? 'id').replace(/^-/, '') as 'id' | 'name' | 'last_activity';
    const { rows, total } = await store.users.list({
      offset, limit, sort, descending: q.sort?.startsWith('-') ?? false, state: q.state, nameFilter: q.name_filter, names, groups,
    });
    const items = await modelsFor(requester, rows, q.include_stopped_servers !== undefined);
    res.json(paginated ? paginatedBody(items, offset, limit, total, requestUrl(req)) : items);
  });

  router.post('/users', async (req, res) => {
    const requester = await authz.require(res.locals.requester ?? null, ['admin:users']);
    requireUnfiltered(requester, 'admin:users', 'create users');
    const body = parseInput(bulkCreateBody, req.body);
    if (body.admin) requireAdmin(requester);
    const names = [...new Set(body.usernames.map(usernameFrom))];
    const created = await store.transaction(async (tx) => {
      const made = await tx.users.createMany(names, body.admin);
      for (const u of made) await recordAudit(tx, { action: 'user.create', actor: actorOf(requester), target: userTarget(u), source: sourceOf(req), details: { admin: body.admin } });
      return made;
    });
    if (!created.length) throw new HttpError(409, 'All those users already exist');
    ctx.log.info({ count: created.length, by: requester.name }, 'users created');
    res.status(201).json(await modelsFor(requester, created, false));
  });

  router.get('/users/:name', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    const requester = await authz.require(res.locals.requester ?? null,
      ['read:users', 'read:users:name', 'read:servers', 'read:users:groups', 'read:users:activity', 'read:roles:users'], { user: name });
    const user = await existingUser(name);
    const [model] = await modelsFor(requester, [user], req.query.include_stopped_servers !== undefined);
    res.json(model);
  });

  router.post('/users/:name', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    const requester = await authz.require(res.locals.requester ?? null, ['admin:users'], { user: name });
    requireUnfiltered(requester, 'admin:users', 'create users');
    const body = parseInput(createBody, isEmptyBody(req.body) ? undefined : req.body) ?? { admin: false };
    if (body.admin) requireAdmin(requester);
    if (await store.users.byName(name)) throw new HttpError(409, `User ${name} already exists`);
    const user = await store.transaction(async (tx) => {
      const made = await tx.users.create(name, { admin: body.admin });
      await recordAudit(tx, { action: 'user.create', actor: actorOf(requester), target: userTarget(made), source: sourceOf(req), details: { admin: body.admin } });
      return made;
    });
    const [model] = await modelsFor(requester, [user], false);
    res.status(201).json(model);
  });

  router.patch('/users/:name', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    const requester = await authz.require(res.locals.requester ?? null, ['admin:users'], { user: name });
    const body = parseInput(patchBody, req.body);
    let user = await existingUser(name);
    // Granting or changing admin status needs an admin, not just the admin:users scope (GHSA-9x4q-3gxw-849f).
    if ((body.admin !== undefined && body.admin !== Boolean(user.admin)) || user.admin) requireAdmin(requester, user.admin ? 'edit an admin' : 'grant admin');
    if (body.roles !== undefined) throw new HttpError(400, 'roles are assigned in the configuration, not through the API');
    const newName = body.name !== undefined ? usernameFrom(body.name) : undefined;
    if (newName !== undefined && newName !== user.name) {
      if (await store.users.byName(newName)) throw new HttpError(400, `User ${newName} already exists`);
      const servers = (await store.servers.forUsers([user.id])).get(user.id) ?? [];
      if (servers.some((s) => s.status !== 'stopped')) throw new HttpError(400, 'Stop the user\'s servers before renaming them');
    }
    let groupIds: number[] | undefined;
    if (body.groups !== undefined) {
      await authz.require(requester, ['groups', 'admin:groups']);
      groupIds = [];
      const before = new Set(await store.groups.namesOfUser(user.id));
      for (const g of new Set(body.groups)) {
        const group = await store.groups.byName(g);
        if (!group) throw new HttpError(400, `No such group: ${g.slice(0, 64)}`);
        if (!before.delete(g)) await ctx.classes.checkMembers(requester, group, [user], []);
        groupIds.push(group.id);
      }
      for (const left of before) await ctx.classes.checkMembers(requester, (await store.groups.byName(left))!, [], [user]);
    }
    if (body.auth_state !== undefined) await authz.require(requester, ['admin:auth_state'], { user: name });
    // auth_state is only ever stored encrypted; without LABHUB_CRYPT_KEY there is nowhere to keep it.
    if (body.auth_state && !ctx.authState) throw new HttpError(400, 'auth_state cannot be stored: the hub has no LABHUB_CRYPT_KEY');
    const current = user;
    user = await store.transaction(async (tx) => {
      // A body with only `groups` changes no column of the user: an UPDATE without SET is not SQL.
      const columns = newName !== undefined || body.admin !== undefined || body.auth_state !== undefined;
      const updated = !columns ? current : await tx.users.update(current.id, {
        name: newName, admin: body.admin,
        authState: body.auth_state === undefined ? undefined : body.auth_state === null ? null : ctx.authState!.seal(current.id, body.auth_state),
      });
      if (groupIds) await tx.groups.setUserGroups(user.id, groupIds);
      const audit = { actor: actorOf(requester), target: userTarget(updated), source: sourceOf(req) };
      if (body.admin !== undefined && body.admin !== Boolean(current.admin)) await recordAudit(tx, { ...audit, action: 'user.admin', details: { admin: body.admin } });
      if (updated.name !== current.name) await recordAudit(tx, { ...audit, action: 'user.rename', details: { old_name: current.name, new_name: updated.name } });
      if (groupIds) await recordAudit(tx, { ...audit, action: 'group.change', details: { change: 'set_groups', users: [updated.name], groups: body.groups } });
      return updated;
    });
    if (body.admin === false) await store.users.rotateCookieId(user.id);
    if (body.admin === false || groupIds) await dropLostAccess(ctx, [user.id]);
    const [model] = await modelsFor(requester, [user], false);
    res.json(model);
  });

  /**
   * 204 as in JupyterHub. LabHub's `?purge=true` also removes the user's data (schema, database, home volume or
   * PVC); without it that data is kept, unreachable by any later account. What was removed is logged.
   */
  router.delete('/users/:name', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    const requester = await authz.require(res.locals.requester ?? null, ['delete:users'], { user: name });
    const { purge } = parseInput(deleteQuery, req.query, 'query');
    const user = await existingUser(name);
    await deleteUser(ctx, requester, user, { purge: purge === 'true' || purge === '1' }, sourceOf(req));
    res.status(204).end();
  });

  /** LabHub extension: a one-time link where a native account sets its password (the admin never sees it). */
  router.post('/users/:name/invitation', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    const requester = await authz.require(res.locals.requester ?? null, ['admin:users'], { user: name });
    if (ctx.authenticator.kind !== 'native') throw new HttpError(400, 'Invitation links are for native accounts; this hub uses another authenticator');
    parseInput(z.strictObject({}), isEmptyBody(req.body) ? {} : req.body);
    const user = await existingUser(name);
    await requirePasswordPower(ctx, requester, user);
    const code = await createInvitation(store, user, { actor: actorOf(requester), source: sourceOf(req) });
    res.status(201).json({
      url: invitationUrl(publicOrigin(ctx.config), code),
      expires_at: new Date(Date.now() + INVITATION_TTL_S * 1000).toISOString(),
    });
  });

  router.post('/users/:name/activity', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    await authz.require(res.locals.requester ?? null, ['users:activity'], { user: name });
    const body = parseInput(activityBody, req.body);
    const user = await existingUser(name);
    const limit = Date.now() + 59 * 60_000;
    const check = (ts: string) => {
      if (Date.parse(ts) > limit) throw new HttpError(400, `last_activity ${ts} is in the future`);
      return new Date(ts).toISOString();
    };
    const servers = (await store.servers.forUsers([user.id])).get(user.id) ?? [];
    const updates: Array<[number, string]> = [];
    for (const [serverName, report] of Object.entries(body.servers ?? {})) {
      const server = servers.find((s) => s.name === serverName);
      if (!server) throw new HttpError(400, `No such server: ${serverName.slice(0, 64)}`);
      updates.push([server.id, check(report.last_activity)]);
    }
    const userActivity = body.last_activity ? check(body.last_activity) : undefined;
    for (const [id, ts] of updates) await store.servers.touch(id, ts);
    const newest = [userActivity, ...updates.map(([, ts]) => ts)].filter((x): x is string => !!x).sort().at(-1);
    if (newest) await store.users.touch(user.id, newest);
    res.status(200).json({});
  });

  return router;
}

/** Deletes a user and what they held (hub/users/removal.ts), for the REST API and the admin page; nobody deletes themselves. */
export async function deleteUser(ctx: HubContext, requester: Requester, user: UserRow, options: { purge: boolean }, source: string | null): Promise<UserRemoval> {
  if (requester.user?.id === user.id) throw new HttpError(400, 'You cannot delete yourself');
  if (user.admin) requireAdmin(requester, 'delete an admin');
  const result = await removeUser(ctx, user, options, { actor: actorOf(requester), source });
  const entry = { user: user.name, uid: user.uid, by: requester.name, purge: options.purge, removed: result.removed, failed: result.failed };
  if (result.failed.length) ctx.log.error(entry, 'user deleted; some of their data could not be removed');
  else ctx.log.info(entry, 'user deleted');
  return result;
}

/**
 * A link that sets a user's password is that user's account: `admin:users` alone (which edits users) is not enough.
 * Admins may, and so may holders of `admin:users:passwords` for that user (a LabHub scope, e.g. for a helpdesk),
 * but never for an admin's account. The API and the admin pages both ask here.
 */
export async function requirePasswordPower(ctx: Pick<HubContext, 'authz'>, requester: Requester, user: UserRow): Promise<void> {
  if (user.admin) return requireAdmin(requester, 'invite an admin');
  if (isAdmin(requester) || (await ctx.authz.allows(requester, [PASSWORDS_SCOPE], { user: user.name }))) return;
  throw new HttpError(403, `Only admins, or holders of the ${PASSWORDS_SCOPE} scope, can make a link that sets another user's password`);
}

/** Only admins grant admin, edit admins or delete admins: a scope to edit users is not enough. */
export function requireAdmin(requester: Requester, action = 'grant admin'): void {
  if (!isAdmin(requester)) throw new HttpError(403, `Only admins can ${action}`);
}

function isAdmin(requester: Requester): boolean {
  return requester.user ? Boolean(requester.user.admin) : Boolean(requester.service?.admin);
}

/** Creating users needs the unfiltered scope: a filtered admin cannot create users outside its filter (GHSA-69wv-m5fw-2fhp). */
function requireUnfiltered(requester: Requester, scope: string, action: string): void {
  if (requester.scopes.get(scope) !== 'all') throw new HttpError(403, `Action is not authorized with current scopes; ${action} requires unfiltered ${scope}`);
}
