import { Router } from 'express';
import type { HubContext } from '../context.js';
import { VERSION } from '../version.js';

/** `/hub/api/` (version, unauthenticated), `/info` and `/user` (who am I). */
export function rootRouter(ctx: HubContext): Router {
  const router = Router();

  router.get('/', (_req, res) => {
    res.json({ version: ctx.version });
  });

  router.get('/info', async (_req, res) => {
    await ctx.authz.require(res.locals.requester ?? null, ['read:hub']);
    res.json({
      version: ctx.version,
      python: null,
      sys_executable: process.execPath,
      node: process.version,
      labhub_version: VERSION,
      spawner: { class: ctx.spawner.kind, version: ctx.version },
      authenticator: { class: ctx.authenticator.kind, version: ctx.version },
    });
  });

  router.get('/user', async (_req, res) => {
    const requester = res.locals.requester;
    if (!requester) {
      res.status(403).json({ status: 403, message: 'Missing or invalid credentials.' });
      return;
    }
    const base: Record<string, unknown> = requester.user
      ? {
          kind: 'user', name: requester.name, admin: Boolean(requester.user.admin),
          groups: await ctx.store.groups.namesOfUser(requester.user.id),
        }
      : { kind: 'service', name: requester.name, admin: Boolean(requester.service?.admin) };
    if (requester.user && (await ctx.authz.allows(requester, ['read:users'], { user: requester.name }))) {
      const servers = await ctx.store.servers.forUsers([requester.user.id]);
      const running = (servers.get(requester.user.id) ?? []).find((s) => s.name === '' && s.status === 'running');
      Object.assign(base, {
        roles: ['user', ...(requester.user.admin ? ['admin'] : [])], created: requester.user.created,
        last_activity: requester.user.last_activity, server: running ? `/user/${encodeURIComponent(requester.name)}/` : null,
        pending: null,
      });
    }
    res.json({
      ...base,
      scopes: requester.tokenScopes,
      session_id: requester.token?.session_id ?? requester.session?.id ?? null,
      token_id: requester.token ? `a${requester.token.id}` : null,
    });
  });

  return router;
}
