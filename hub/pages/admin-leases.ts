import { Router } from 'express';
import type { HubContext } from '../context.js';
import { HttpError } from '../errors.js';
import { renderPage } from './render.js';
import { checkFormXsrf, requireUnfilteredScopes } from './page-context.js';
import { adminLayout, flash, withFlash } from './admin-layout.js';
import { UNISOLATED_MONGODB_WARNING } from '../credentials/mongodb-warning.js';
import { auditBy } from '../audit/record.js';

/** Admin: every credential lease not yet revoked (failing revocations included), with a revoke button. */
export function adminLeasePages(ctx: HubContext): Router {
  const router = Router();
  const scopes = ['admin-ui', 'admin:servers'];

  router.get('/admin/leases', async (req, res) => {
    await requireUnfilteredScopes(ctx, req, scopes);
    const leases = await ctx.store.leases.unrevoked();
    res.send(renderPage('admin-leases.njk', {
      ...(await adminLayout(ctx, req, res, 'leases')), ...flash(req),
      warnings: ctx.config.credentials.mongodb?.authorization === 'none' ? [UNISOLATED_MONGODB_WARNING] : [],
      leases: leases.map((l) => ({
        id: l.id, user: l.user_name, userUrl: `/hub/admin/users/${encodeURIComponent(l.user_name)}`, server: l.server_name || 'default',
        service: l.service, account: l.account, status: l.status, issuedAt: l.issued_at, expiresAt: l.expires_at,
        failures: l.revoke_failures, lastError: l.last_error,
      })),
    }));
  });

  router.post('/admin/leases/:id/revoke', async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const requester = await requireUnfilteredScopes(ctx, req, scopes);
    const id = Number(req.params.id);
    const lease = Number.isSafeInteger(id) ? await ctx.store.leases.byId(id) : undefined;
    if (!lease || lease.status === 'revoked') throw new HttpError(404, 'No such lease');
    await withFlash(res, '/hub/admin/leases', async () => {
      if (!(await ctx.credentials.revoke(lease, auditBy(requester, req)))) throw new HttpError(409, `Could not revoke ${lease.account} at ${lease.service} yet; the sweeper keeps trying.`);
      return `Revoked ${lease.account} at ${lease.service}.`;
    });
  });

  return router;
}
