import { Router, type Request } from 'express';
import type { HubContext } from '../context.js';
import type { GroupRow, UserRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { usernameFrom } from '../api/validate.js';
import { offeredProfiles, type ClassProfileSpec } from '../classes/profiles.js';
import type { ClassBounds } from '../classes/bounds.js';
import { renderPage } from './render.js';
import { formField } from './auth.js';
import { checkFormXsrf, formList, requireUnfilteredScopes } from './page-context.js';
import { adminLayout, flash, serverActions, withFlash } from './admin-layout.js';
import { redirectWithFlash } from './flash.js';
import type { Store } from '../db/index.js';
import { auditBy, recordAudit, type AuditBy } from '../audit/record.js';
import { dropLostAccess } from '../sharing/lost-access.js';

const GROUP_NAME = /^[^/\s\p{Cc}][^/\p{Cc}]{0,254}$/u;

/** Admin: classes (groups with profiles), their members, profiles, default profile and shared volume. */
export function adminClassPages(ctx: HubContext): Router {
  const router = Router();
  const { store, classes } = ctx;
  const scopes = ['admin-ui', 'admin:groups'];

  async function existing(raw: string): Promise<GroupRow> {
    const group = await store.groups.byName(raw);
    if (!group) throw new HttpError(404, `No such class: ${raw.slice(0, 64)}`);
    return group;
  }

  const pageOf = (name: string) => `/hub/admin/classes/${encodeURIComponent(name)}`;
  const propertiesOf = (group: GroupRow) => JSON.parse(group.properties) as Record<string, unknown>;

  /** Checks changed properties against the class policy and stores them; other property keys are kept as they were. */
  async function saveProperties(by: AuditBy, group: GroupRow, change: (p: Record<string, unknown>) => void): Promise<void> {
    const properties = propertiesOf(group);
    change(properties);
    await classes.checkProperties(properties);
    await store.transaction(async (tx) => {
      await tx.groups.setProperties(group.id, properties);
      await recordAudit(tx, { action: 'class.change', ...by, target: { kind: 'group', name: group.name }, details: { old: propertiesOf(group), new: properties } });
    });
  }

  const groupChange = (tx: Store, by: AuditBy, group: string, change: 'create' | 'delete' | 'add_users' | 'remove_users', users: UserRow[]) =>
    recordAudit(tx, { action: 'group.change', ...by, target: { kind: 'group', name: group }, details: { change, users: users.map((u) => u.name) } });

  router.get('/admin/classes', async (req, res) => {
    await requireUnfilteredScopes(ctx, req, scopes);
    const { rows } = await store.groups.list(0, 1000);
    const members = await store.groups.membersOf(rows.map((g) => g.id));
    res.send(renderPage('admin-classes.njk', {
      ...(await adminLayout(ctx, req, res, 'classes')), ...flash(req),
      classes: rows.map((g) => {
        const properties = propertiesOf(g);
        return {
          name: g.name, url: pageOf(g.name), members: members.get(g.id)?.length ?? 0, profiles: offeredProfiles([g]),
          defaultProfile: properties.default_profile, sharedVolume: properties.shared_volume,
        };
      }),
    }));
  });

  router.post('/admin/classes', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, scopes);
    const name = formField(req, 'name', 255).trim();
    await withFlash(res, '/hub/admin/classes', async () => {
      if (!GROUP_NAME.test(name)) throw new HttpError(400, 'A class name has 1–255 characters without / or control characters');
      if (await store.groups.byName(name)) throw new HttpError(409, `Class ${name} already exists`);
      await store.transaction(async (tx) => {
        await tx.groups.create(name);
        await groupChange(tx, auditBy(requester, req), name, 'create', []);
      });
      return `Created ${name}. Add profiles and members below.`;
    }, pageOf(name));
  });

  router.get('/admin/classes/:name', async (req, res) => {
    await requireUnfilteredScopes(ctx, req, scopes);
    const group = await existing(String(req.params.name));
    const properties = propertiesOf(group);
    const members = (await store.groups.membersOf([group.id])).get(group.id) ?? [];
    const memberRows = members.length ? (await store.users.list({ offset: 0, limit: 1000, sort: 'name', descending: false, groups: [group.name] })).rows : [];
    const servers = await store.servers.forUsers(memberRows.map((u) => u.id));
    const profiles = ((properties.profiles as ClassProfileSpec[] | undefined) ?? []);
    const editing = typeof req.query.edit === 'string' ? profiles.find((p) => p.slug === req.query.edit) : undefined;
    const here = pageOf(group.name);
    res.send(renderPage('admin-class.njk', {
      ...(await adminLayout(ctx, req, res, 'classes')), ...flash(req),
      name: group.name, action: here, offered: offeredProfiles([group]), editing, bounds: boundsView(classes.bounds),
      defaultProfile: properties.default_profile ?? '', sharedVolume: properties.shared_volume ?? '',
      members: memberRows.map((u) => {
        const row = servers.get(u.id)?.find((s) => s.name === '');
        return { name: u.name, editUrl: `/hub/admin/users/${encodeURIComponent(u.name)}`, server: serverActions(u.name, '', row?.status ?? 'stopped', here) };
      }),
    }));
  });

  router.post('/admin/classes/:name/members', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, [...scopes, 'groups']);
    const group = await existing(String(req.params.name));
    await withFlash(res, pageOf(group.name), async () => {
      const lookup = async (names: string[]) => {
        const users: UserRow[] = [];
        for (const raw of new Set(names)) {
          const user = await store.users.byName(usernameFrom(raw));
          if (!user) throw new HttpError(400, `No such user: ${raw.slice(0, 64)}`);
          users.push(user);
        }
        return users;
      };
      const add = await lookup(formField(req, 'add', 200_000).split(/[\s,;]+/).filter(Boolean));
      const remove = await lookup(formList(req, 'remove'));
      await classes.checkMembers(requester, group, add, remove);
      await store.transaction(async (tx) => {
        await tx.groups.addMembers(group.id, add.map((u) => u.id));
        await tx.groups.removeMembers(group.id, remove.map((u) => u.id));
        if (add.length) await groupChange(tx, auditBy(requester, req), group.name, 'add_users', add);
        if (remove.length) await groupChange(tx, auditBy(requester, req), group.name, 'remove_users', remove);
      });
      await dropLostAccess(ctx, remove.map((u) => u.id));
      return `Members of ${group.name}: ${add.length} added, ${remove.length} removed.`;
    });
  });

  router.post('/admin/classes/:name/profiles', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, [...scopes, 'groups']);
    const group = await existing(String(req.params.name));
    await withFlash(res, pageOf(group.name), async () => {
      const profile = profileFromForm(req);
      await saveProperties(auditBy(requester, req), group, (p) => {
        const list = Array.isArray(p.profiles) ? (p.profiles as ClassProfileSpec[]).filter((x) => x?.slug !== profile.slug) : [];
        const at = Array.isArray(p.profiles) ? (p.profiles as ClassProfileSpec[]).findIndex((x) => x?.slug === profile.slug) : -1;
        list.splice(at < 0 ? list.length : at, 0, profile);
        p.profiles = list;
        if (p.default_profile === undefined) p.default_profile = profile.slug;
      });
      return `Saved profile ${profile.slug}.`;
    });
  });

  router.post('/admin/classes/:name/profiles/:slug/delete', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, [...scopes, 'groups']);
    const group = await existing(String(req.params.name));
    const slug = String(req.params.slug);
    await withFlash(res, pageOf(group.name), async () => {
      await saveProperties(auditBy(requester, req), group, (p) => {
        p.profiles = Array.isArray(p.profiles) ? (p.profiles as ClassProfileSpec[]).filter((x) => x?.slug !== slug) : [];
        if (p.default_profile === slug) delete p.default_profile;
      });
      return `Removed profile ${slug}.`;
    });
  });

  router.post('/admin/classes/:name/settings', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, [...scopes, 'groups']);
    const group = await existing(String(req.params.name));
    await withFlash(res, pageOf(group.name), async () => {
      const defaultProfile = formField(req, 'default_profile', 63);
      const sharedVolume = formField(req, 'shared_volume', 128).trim();
      await saveProperties(auditBy(requester, req), group, (p) => {
        if (defaultProfile) p.default_profile = defaultProfile;
        else delete p.default_profile;
        if (sharedVolume) p.shared_volume = sharedVolume;
        else delete p.shared_volume;
      });
      return `Saved the settings of ${group.name}.`;
    });
  });

  router.post('/admin/classes/:name/delete', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, [...scopes, 'delete:groups']);
    const group = await existing(String(req.params.name));
    const members = await store.groups.memberIds(group.id);
    await store.transaction(async (tx) => {
      await tx.groups.delete(group.id);
      await groupChange(tx, auditBy(requester, req), group.name, 'delete', []);
    });
    await dropLostAccess(ctx, members);
    redirectWithFlash(res, '/hub/admin/classes', 'done', `Deleted ${group.name}.`);
  });

  return router;
}

/** The bounds as the class page lists them. */
function boundsView(bounds: ClassBounds) {
  const { mqtt, postgres, mongodb } = bounds.credentials;
  return {
    images: bounds.images, sharedVolumes: bounds.sharedVolumes, maxCpuLimit: bounds.maxCpuLimit, maxMemLimit: bounds.maxMemLimit,
    memberGroups: bounds.memberGroups,
    credentials: [
      { key: 'mqtt.subscribe', values: mqtt.subscribe }, { key: 'mqtt.publish', values: mqtt.publish },
      { key: 'postgres.read_schemas', values: postgres.read_schemas },
      { key: 'postgres.own_schema', values: [String(postgres.own_schema)] },
      { key: 'postgres.connection_limit', values: [String(postgres.connection_limit)] },
      { key: 'mongodb.read_databases', values: mongodb.read_databases },
      { key: 'mongodb.own_database', values: [String(mongodb.own_database)] },
    ],
  };
}

/** A profile from the admin form; numbers are checked here, everything else by the class schema. */
function profileFromForm(req: Request): ClassProfileSpec {
  const text = (name: string, max = 255) => formField(req, name, max).trim();
  const cpu = text('cpu_limit', 20);
  const cpuLimit = cpu === '' ? undefined : Number(cpu);
  if (cpuLimit !== undefined && !Number.isFinite(cpuLimit)) throw new HttpError(400, 'CPU limit: enter a number of CPUs, such as 0.5 or 2');
  const memory = text('mem_limit', 20);
  return {
    slug: text('slug', 63), display_name: text('display_name', 200) || text('slug', 63),
    ...(text('description', 2000) && { description: text('description', 2000) }),
    ...(text('image') && { image: text('image') }),
    ...(cpuLimit !== undefined && { cpu_limit: cpuLimit }),
    ...(memory && { mem_limit: /^\d+$/.test(memory) ? Number(memory) : memory }),
  };
}
