import { Router, type Request } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { Requester } from '../auth/identity.js';
import type { GroupRow, UserRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import type { Store } from '../db/index.js';
import { auditBy, recordAudit } from '../audit/record.js';
import { groupModelKeysFor } from '../auth/scopes.js';
import { groupModel } from './models.js';
import { hasRequestBody, isEmptyBody, paginatedBody, pagination, parseInput, requestUrl, usernameFrom, wantsPagination } from './validate.js';
import { dropLostAccess } from '../sharing/lost-access.js';

// Control characters, `/` and leading whitespace are what make a name unsafe in paths and logs.
export const GROUP_NAME = new RegExp('^[^/\\s\\p{Cc}][^/\\p{Cc}]{0,254}$', 'u');
const groupName = z.string().regex(GROUP_NAME, 'expected a group name of 1–255 characters without / or control characters');
const usersBody = z.strictObject({ users: z.array(z.string().max(1024)).max(100_000) });
const createOneBody = z.strictObject({ users: z.array(z.string().max(1024)).max(100_000).default([]) });
const bulkBody = z.strictObject({ groups: z.array(groupName).min(1).max(10_000), users: z.array(z.string().max(1024)).max(100_000).default([]) });
const propertiesBody = z.record(z.string(), z.unknown());
const MAX_PROPERTIES_BYTES = 256 * 1024;

/** Groups (a LabHub class is a group with properties): CRUD, members, properties. */
export function groupsRouter(ctx: HubContext): Router {
  const router = Router();
  const { store, authz, classes } = ctx;

  function nameOf(raw: string): string {
    const result = groupName.safeParse(raw);
    if (!result.success) throw new HttpError(400, `Invalid group name: ${result.error.issues[0]!.message}`);
    return raw;
  }

  async function existing(name: string): Promise<GroupRow> {
    const group = await store.groups.byName(name);
    if (!group) throw new HttpError(404, `No such group: ${name.slice(0, 64)}`);
    return group;
  }

  async function usersNamed(names: string[]): Promise<UserRow[]> {
    const users: UserRow[] = [];
    for (const raw of new Set(names)) {
      const user = await store.users.byName(usernameFrom(raw));
      if (!user) throw new HttpError(400, `No such user: ${raw.slice(0, 64)}`);
      users.push(user);
    }
    return users;
  }

  const idsOf = (users: UserRow[]) => users.map((u) => u.id);

  /** Records a change to a group in the transaction `tx` that makes it. */
  const recordChange = (tx: Store, requester: Requester, req: Request, group: string, change: 'create' | 'delete' | 'add_users' | 'remove_users', users: UserRow[]) =>
    recordAudit(tx, { action: 'group.change', ...auditBy(requester, req), target: { kind: 'group', name: group }, details: { change, users: users.map((u) => u.name) } });

  async function models(requester: Requester, groups: GroupRow[]) {
    const ids = groups.map((g) => g.id);
    const [members, roles] = await Promise.all([store.groups.membersOf(ids), store.roles.rolesOf('group', ids)]);
    return groups.map((g) => groupModel(g, members.get(g.id) ?? [], roles.get(g.id) ?? [], groupModelKeysFor(requester.scopes, g.name)));
  }

  router.get('/groups', async (req, res) => {
    const { requester, only } = authz.requireList(res.locals.requester ?? null, 'list:groups');
    const paginated = wantsPagination(req.get('accept'));
    const { offset, limit } = pagination(req.query, paginated);
    const { rows, total } = await store.groups.list(offset, limit, only ? [...only.group] : undefined);
    const items = await models(requester, rows);
    res.json(paginated ? paginatedBody(items, offset, limit, total, requestUrl(req)) : items);
  });

  router.post('/groups', async (req, res) => {
    const requester = await authz.require(res.locals.requester ?? null, ['admin:groups']);
    if (requester.scopes.get('admin:groups') !== 'all') throw new HttpError(403, 'Creating groups requires unfiltered admin:groups');
    const body = parseInput(bulkBody, req.body);
    const members = await usersNamed(body.users);
    const names = [...new Set(body.groups)];
    for (const name of names) if (await store.groups.byName(name)) throw new HttpError(409, `Group ${name} already exists`);
    const created = await store.transaction(async (tx) => {
      const rows: GroupRow[] = [];
      for (const name of names) {
        const group = await tx.groups.create(name);
        await classes.checkMembers(requester, group, members, [], tx);
        await tx.groups.addMembers(group.id, idsOf(members));
        await recordChange(tx, requester, req, name, 'create', members);
        rows.push(group);
      }
      return rows;
    });
    res.status(201).json(await models(requester, created));
  });

  router.get('/groups/:name', async (req, res) => {
    const name = nameOf(req.params.name);
    const requester = await authz.require(res.locals.requester ?? null, ['read:groups', 'read:groups:name', 'read:roles:groups'], { group: name });
    const [model] = await models(requester, [await existing(name)]);
    res.json(model);
  });

  router.post('/groups/:name', async (req, res) => {
    const name = nameOf(req.params.name);
    const requester = await authz.require(res.locals.requester ?? null, ['admin:groups'], { group: name });
    if (requester.scopes.get('admin:groups') !== 'all') throw new HttpError(403, 'Creating groups requires unfiltered admin:groups');
    const body = parseInput(createOneBody, isEmptyBody(req.body) ? {} : req.body);
    if (await store.groups.byName(name)) throw new HttpError(409, `Group ${name} already exists`);
    const members = await usersNamed(body.users);
    const group = await store.transaction(async (tx) => {
      const created = await tx.groups.create(name);
      await classes.checkMembers(requester, created, members, [], tx);
      await tx.groups.addMembers(created.id, idsOf(members));
      await recordChange(tx, requester, req, name, 'create', members);
      return created;
    });
    res.status(201).json((await models(requester, [group]))[0]);
  });

  router.delete('/groups/:name', async (req, res) => {
    const name = nameOf(req.params.name);
    const requester = await authz.require(res.locals.requester ?? null, ['delete:groups'], { group: name });
    const group = await existing(name);
    const members = await store.groups.memberIds(group.id);
    await store.transaction(async (tx) => {
      await tx.groups.delete(group.id);
      await recordChange(tx, requester, req, name, 'delete', []);
    });
    await dropLostAccess(ctx, members);
    res.status(204).end();
  });

  router.post('/groups/:name/users', async (req, res) => {
    const name = nameOf(req.params.name);
    const requester = await authz.require(res.locals.requester ?? null, ['groups'], { group: name });
    const group = await existing(name);
    const users = await usersNamed(parseInput(usersBody, req.body).users);
    await classes.checkMembers(requester, group, users, []);
    await store.transaction(async (tx) => {
      await tx.groups.addMembers(group.id, idsOf(users));
      await recordChange(tx, requester, req, name, 'add_users', users);
    });
    res.json((await models(requester, [group]))[0]);
  });

  router.delete('/groups/:name/users', async (req, res) => {
    const name = nameOf(req.params.name);
    const requester = await authz.require(res.locals.requester ?? null, ['groups'], { group: name });
    const group = await existing(name);
    const users = await usersNamed(parseInput(usersBody, req.body).users);
    await classes.checkMembers(requester, group, [], users);
    await store.transaction(async (tx) => {
      await tx.groups.removeMembers(group.id, idsOf(users));
      await recordChange(tx, requester, req, name, 'remove_users', users);
    });
    await dropLostAccess(ctx, idsOf(users));
    res.json((await models(requester, [group]))[0]);
  });

  router.put('/groups/:name/properties', async (req, res) => {
    const name = nameOf(req.params.name);
    const requester = await authz.require(res.locals.requester ?? null, ['groups'], { group: name });
    const group = await existing(name);
    // The JSON parser reads an empty body as `{}`: without this, a bodiless PUT would wipe the properties.
    if (!hasRequestBody(req)) throw new HttpError(400, 'Must specify properties');
    const properties = parseInput(propertiesBody, req.body, 'group properties');
    if (JSON.stringify(properties).length > MAX_PROPERTIES_BYTES) throw new HttpError(413, 'Group properties are too large');
    await classes.checkProperties(properties);
    await store.transaction(async (tx) => {
      await tx.groups.setProperties(group.id, properties);
      await recordAudit(tx, {
        action: 'class.change', ...auditBy(requester, req), target: { kind: 'group', name },
        details: { old: JSON.parse(group.properties) as Record<string, unknown>, new: properties },
      });
    });
    res.json((await models(requester, [{ ...group, properties: JSON.stringify(properties) }]))[0]);
  });

  return router;
}
