import { Router } from 'express';
import type { HubContext } from '../context.js';
import { paginatedBody, pagination, requestUrl, wantsPagination } from './validate.js';

/**
 * `/proxy`: the proxy's routing table as JupyterHub shows it (only the routes the hub made, keyed by routespec with
 * a trailing `/`, `{routespec, target, data}`), and a forced re-sync. Both need the `proxy` scope.
 */
export function proxyRouter(ctx: HubContext): Router {
  const router = Router();

  router.get('/proxy', async (req, res) => {
    await ctx.authz.require(res.locals.requester ?? null, ['proxy']);
    const paginated = wantsPagination(req.get('accept'));
    const { offset, limit } = pagination(req.query, paginated);
    // The hub's own route may be the proxy's default target (set by flag, without data): it is shown as JupyterHub does.
    const table = Object.entries(await ctx.proxy.getRoutes())
      .filter(([path, entry]) => entry.jupyterhub === true || (path === '/' && entry.target === ctx.hubUrl))
      .map(([path, entry]) => {
        const { target, last_activity: _activity, jupyterhub: _tag, ...data } = entry;
        const routespec = path.endsWith('/') ? path : `${path}/`;
        return [routespec, { routespec, target, data: path === '/' ? { ...data, hub: true } : data }] as const;
      })
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const page = Object.fromEntries(table.slice(offset, offset + limit));
    // JupyterHub pages the table as a dict, items included.
    res.json(paginated ? paginatedBody(page, offset, limit, table.length, requestUrl(req)) : page);
  });

  router.post('/proxy', async (_req, res) => {
    await ctx.authz.require(res.locals.requester ?? null, ['proxy']);
    await ctx.servers.syncRoutes(ctx.hubUrl);
    res.status(200).end();
  });

  return router;
}
