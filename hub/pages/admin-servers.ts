import { Router } from 'express';
import type { HubContext } from '../context.js';
import { renderPage } from './render.js';
import { requireUnfilteredScopes } from './page-context.js';
import { adminLayout, flash, serverActions } from './admin-layout.js';
import { profileOption } from '../classes/profiles.js';

/** Admin: every server that is not stopped, with its profile and actions. */
export function adminServerPages(ctx: HubContext): Router {
  const router = Router();
  router.get('/admin/servers', async (req, res) => {
    await requireUnfilteredScopes(ctx, req, ['admin-ui', 'admin:servers']);
    const rows = (await ctx.store.servers.active()).sort((a, b) => a.user_name.localeCompare(b.user_name) || a.name.localeCompare(b.name));
    res.send(renderPage('admin-servers.njk', {
      ...(await adminLayout(ctx, req, res, 'servers')), ...flash(req),
      servers: rows.map((r) => ({
        user: r.user_name, name: r.name, label: r.name ? `${r.user_name}/${r.name}` : r.user_name,
        userUrl: `/hub/admin/users/${encodeURIComponent(r.user_name)}`, started: r.started, lastActivity: r.last_activity,
        profile: profileOption(r.user_options),
        ...serverActions(r.user_name, r.name, r.status, '/hub/admin/servers'),
      })),
    }));
  });
  return router;
}
