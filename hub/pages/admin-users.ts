import { Router } from 'express';
import type { HubContext } from '../context.js';
import type { UserRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { deleteUser, requireAdmin, requirePasswordPower } from '../api/users.js';
import { createInvitation, INVITATION_TTL_S, invitationUrl } from '../auth/one-time-links.js';
import { publicOrigin } from '../config/load.js';
import type { Requester } from '../auth/identity.js';
import { PASSWORDS_SCOPE } from '../auth/scopes.js';
import { usernameFrom } from '../api/validate.js';
import type { UserSort } from '../db/users.js';
import { renderPage } from './render.js';
import { profileOption } from '../classes/profiles.js';
import { formField } from './auth.js';
import { checkFormXsrf, formList, requireUnfilteredScopes } from './page-context.js';
import { adminLayout, flash, serverActions, sharingUrl, withFlash } from './admin-layout.js';
import { actorOf, recordAudit, sourceOf, userTarget } from '../audit/record.js';
import { dropLostAccess } from '../sharing/lost-access.js';

const PAGE_SIZE = 50;
const SORTS: Record<string, { sort: UserSort; descending: boolean }> = {
  name: { sort: 'name', descending: false }, '-name': { sort: 'name', descending: true },
  last_activity: { sort: 'last_activity', descending: true }, '-last_activity': { sort: 'last_activity', descending: false },
  id: { sort: 'id', descending: false }, '-id': { sort: 'id', descending: true },
};

/** Admin: every user, searched, sorted and paginated in the DB (one page of rows at a time, fast at 10,000 users). */
export function adminUserPages(ctx: HubContext): Router {
  const router = Router();
  const { store } = ctx;

  async function existing(raw: string): Promise<UserRow> {
    const user = await store.users.byName(usernameFrom(raw));
    if (!user) throw new HttpError(404, `No such user: ${raw.slice(0, 64)}`);
    return user;
  }

  const native = ctx.authenticator.kind === 'native';

  /**
   * A one-time link where the user sets a password: an invitation for an account without one, a reset for an
   * account with one. Shown once, in the answer to the admin's POST, never put in an address or a flash cookie.
   */
  async function signInLink(requester: Requester, user: UserRow, source: string | null): Promise<{ name: string; url: string; reset: boolean }> {
    await requirePasswordPower(ctx, requester, user);
    const code = await createInvitation(store, user, { actor: actorOf(requester), source });
    return { name: user.name, url: invitationUrl(publicOrigin(ctx.config), code), reset: Boolean(user.password_hash) };
  }
  const linkDays = INVITATION_TTL_S / 86_400;

  router.get('/admin', (_req, res) => res.redirect(302, '/hub/admin/users'));

  router.get('/admin/users', async (req, res) => {
    await requireUnfilteredScopes(ctx, req, ['admin-ui', 'admin:users']);
    const q = typeof req.query.q === 'string' ? req.query.q.slice(0, 100) : '';
    const sortKey = typeof req.query.sort === 'string' && req.query.sort in SORTS ? req.query.sort : 'name';
    const page = Math.min(Math.max(Number.parseInt(String(req.query.page ?? '1'), 10) || 1, 1), 1_000_000);
    const { rows, total } = await store.users.list({ offset: (page - 1) * PAGE_SIZE, limit: PAGE_SIZE, ...SORTS[sortKey]!, nameFilter: q || undefined });
    const ids = rows.map((r) => r.id);
    const [groups, servers, classes] = await Promise.all([store.users.groupsOf(ids), store.servers.forUsers(ids), store.groups.list(0, 500)]);
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const link = (changes: Record<string, string | number>) => {
      const params = new URLSearchParams({ ...(q && { q }), sort: sortKey, page: String(page), ...Object.fromEntries(Object.entries(changes).map(([k, v]) => [k, String(v)])) });
      return `/hub/admin/users?${params.toString()}`;
    };
    const here = link({});
    const users = rows.map((u) => {
      const own = servers.get(u.id) ?? [];
      const defaultServer = own.find((s) => s.name === '');
      return {
        name: u.name, admin: Boolean(u.admin), classes: groups.get(u.id) ?? [], lastActivity: u.last_activity,
        editUrl: `/hub/admin/users/${encodeURIComponent(u.name)}`,
        server: serverActions(u.name, '', defaultServer?.status ?? 'stopped', here),
        started: defaultServer && defaultServer.status !== 'stopped' ? defaultServer.started : null,
        profile: defaultServer && defaultServer.status !== 'stopped' ? profileOption(defaultServer.user_options) : undefined,
        named: own.filter((s) => s.name !== '' && s.status !== 'stopped').length,
      };
    });
    // A click on the sorted column reverses it; the first click on last activity shows the most recent first.
    const sortLink = (column: string) => {
      const active = sortKey === column || sortKey === `-${column}`;
      const state = !active ? 'none' : SORTS[sortKey]!.descending ? 'descending' : 'ascending';
      return { url: link({ sort: sortKey === column ? `-${column}` : column, page: 1 }), state };
    };
    res.send(renderPage('admin-users.njk', {
      ...(await adminLayout(ctx, req, res, 'users')), ...flash(req),
      users, total, q, page, pages, sortKey, classes: classes.rows.map((g) => g.name), nativeAccounts: native,
      sortName: sortLink('name'), sortActivity: sortLink('last_activity'),
      prevUrl: page > 1 ? link({ page: page - 1 }) : null, nextUrl: page < pages ? link({ page: page + 1 }) : null,
    }));
  });

  router.post('/admin/users', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, ['admin-ui', 'admin:users']);
    const back = '/hub/admin/users';
    await withFlash(res, back, async () => {
      const names = [...new Set(formField(req, 'usernames', 200_000).split(/[\s,;]+/).filter(Boolean).map(usernameFrom))];
      if (!names.length) throw new HttpError(400, 'Enter at least one username');
      const admin = formField(req, 'admin') === 'on';
      if (admin) requireAdmin(requester);
      const links = native && formField(req, 'links') === 'on';
      // Checked before any account is made, so a refusal leaves nothing half done.
      if (links && !requester.user?.admin) await requireUnfilteredScopes(ctx, req, [PASSWORDS_SCOPE]);
      const className = formField(req, 'class', 255);
      const group = className ? await store.groups.byName(className) : undefined;
      if (className && !group) throw new HttpError(400, `No such class: ${className}`);
      if (group) {
        await requireUnfilteredScopes(ctx, req, ['groups']);
        const existingUsers = await Promise.all(names.map((n) => store.users.byName(n)));
        await ctx.classes.checkMembers(requester, group, names.map((name, i) => existingUsers[i] ?? { name, admin }), []);
      }
      const created = await store.transaction(async (tx) => {
        const made = await tx.users.createMany(names, admin);
        for (const u of made) await recordAudit(tx, { action: 'user.create', actor: actorOf(requester), target: userTarget(u), source: sourceOf(req), details: { admin } });
        return made;
      });
      if (group) {
        const members = (await Promise.all(names.map((n) => store.users.byName(n)))).filter((u): u is UserRow => u !== undefined);
        await store.transaction(async (tx) => {
          await tx.groups.addMembers(group.id, members.map((u) => u.id));
          await recordAudit(tx, { action: 'group.change', actor: actorOf(requester), target: { kind: 'group', name: group.name }, source: sourceOf(req), details: { change: 'add_users', users: members.map((u) => u.name) } });
        });
      }
      ctx.log.info({ count: created.length, by: requester.name }, 'users created');
      const skipped = names.length - created.length;
      const summary = `Added ${created.length} user${created.length === 1 ? '' : 's'}${skipped ? ` (${skipped} already existed)` : ''}${group ? ` to ${group.name}` : ''}.`;
      if (!links) return summary;
      // Links for the new accounts only: an existing account's password is not reset by adding it again.
      const made = [];
      for (const user of created) made.push(await signInLink(requester, user, sourceOf(req)));
      res.set('Cache-Control', 'no-store').send(renderPage('admin-links.njk', { ...(await adminLayout(ctx, req, res, 'users')), done: summary, links: made, linkDays }));
      return null;
    });
  });

  router.get('/admin/users/:name', async (req, res) => {
    await requireUnfilteredScopes(ctx, req, ['admin-ui', 'admin:users']);
    await showUser(req, res, await existing(String(req.params.name)));
  });

  router.post('/admin/users/:name/sign-in-link', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, ['admin-ui', 'admin:users']);
    const user = await existing(String(req.params.name));
    if (!native) throw new HttpError(400, 'Sign-in links are for native accounts; this hub uses another authenticator');
    const link = await signInLink(requester, user, sourceOf(req));
    ctx.log.info({ user: user.name, by: requester.name, reset: link.reset }, 'sign-in link made');
    // The link is a secret shown once: never stored by the browser or a cache on the way.
    res.set('Cache-Control', 'no-store');
    await showUser(req, res, user, link);
  });

  async function showUser(req: Parameters<typeof adminLayout>[1], res: Parameters<typeof adminLayout>[2], user: UserRow, link?: { url: string; reset: boolean }) {
    const here = `/hub/admin/users/${encodeURIComponent(user.name)}`;
    const [memberOf, servers, classes] = await Promise.all([
      store.groups.namesOfUser(user.id), store.servers.forUsers([user.id]).then((m) => m.get(user.id) ?? []), store.groups.list(0, 500),
    ]);
    if (!servers.some((s) => s.name === '')) servers.unshift({ name: '', status: 'stopped', last_activity: null, started: null, user_options: '{}' } as (typeof servers)[number]);
    const sharesByServer = new Map<string, number>();
    for (const share of (await store.shares.list({ ownerId: user.id })).rows) sharesByServer.set(share.server_name, (sharesByServer.get(share.server_name) ?? 0) + 1);
    res.send(renderPage('admin-user.njk', {
      ...(await adminLayout(ctx, req, res, 'users')), ...flash(req),
      target: { name: user.name, admin: Boolean(user.admin), created: user.created, lastActivity: user.last_activity },
      classes: classes.rows.map((g) => ({ name: g.name, member: memberOf.includes(g.name) })),
      servers: servers.map((s) => ({
        label: s.name || 'Default server', lastActivity: s.last_activity, started: s.started,
        profile: profileOption(s.user_options), ...serverActions(user.name, s.name, s.status, here),
        shareUrl: sharingUrl(user.name, s.name), shares: sharesByServer.get(s.name) ?? 0,
      })),
      self: user.id === res.locals.session!.user.id, action: here,
      native, hasPassword: Boolean(user.password_hash), link, linkDays,
    }));
  }

  router.post('/admin/users/:name', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, ['admin-ui', 'admin:users']);
    const user = await existing(String(req.params.name));
    const back = `/hub/admin/users/${encodeURIComponent(user.name)}`;
    await withFlash(res, back, async () => {
      const admin = formField(req, 'admin') === 'on';
      // As in the API: only admins change admin status or edit admins (GHSA-9x4q-3gxw-849f).
      if (admin !== Boolean(user.admin) || user.admin) requireAdmin(requester, user.admin ? 'edit an admin' : 'grant admin');
      if (!admin && requester.user?.id === user.id) throw new HttpError(400, 'You cannot remove your own admin rights');
      const wanted = formList(req, 'classes');
      const ids: number[] = [];
      for (const name of new Set(wanted)) {
        const group = await store.groups.byName(name);
        if (!group) throw new HttpError(400, `No such class: ${name.slice(0, 64)}`);
        ids.push(group.id);
      }
      const current = await store.groups.namesOfUser(user.id);
      if (current.length !== wanted.length || current.some((c) => !wanted.includes(c))) await requireUnfilteredScopes(ctx, req, ['groups']);
      await store.transaction(async (tx) => {
        await tx.users.update(user.id, { admin });
        await tx.groups.setUserGroups(user.id, ids);
        const audit = { actor: actorOf(requester), target: userTarget(user), source: sourceOf(req) };
        if (admin !== Boolean(user.admin)) await recordAudit(tx, { ...audit, action: 'user.admin', details: { admin } });
        if (current.length !== wanted.length || current.some((c) => !wanted.includes(c))) {
          await recordAudit(tx, { ...audit, action: 'group.change', details: { change: 'set_groups', users: [user.name], groups: [...new Set(wanted)] } });
        }
      });
      if (!admin && user.admin) await store.users.rotateCookieId(user.id);
      await dropLostAccess(ctx, [user.id]);
      return `Saved ${user.name}.`;
    });
  });

  router.post('/admin/users/:name/delete', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, ['admin-ui', 'admin:users', 'delete:users']);
    const user = await existing(String(req.params.name));
    await withFlash(res, `/hub/admin/users/${encodeURIComponent(user.name)}`, async () => {
      const result = await deleteUser(ctx, requester, user, { purge: formField(req, 'purge') === 'on' }, sourceOf(req));
      return [
        `Deleted ${user.name}.`,
        result.removed.length ? `Removed: ${result.removed.join('; ')}.` : '',
        result.purge ? '' : 'Their data was kept, out of reach of any new account.',
        result.failed.length ? `Could not remove: ${result.failed.join('; ')}.` : '',
      ].filter(Boolean).join(' ');
    }, '/hub/admin/users');
  });

  return router;
}
