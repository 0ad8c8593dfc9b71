import { Router, type Request, type Response } from 'express';
import type { HubContext } from '../context.js';
import { auditBy } from '../audit/record.js';
import { serverPrefix } from '../servers/naming.js';
import { SharingPolicy } from '../sharing/policy.js';
import { shownScopes } from '../sharing/scopes.js';
import { formField } from './auth.js';
import { checkFormXsrf, layoutFor } from './page-context.js';
import { renderPage } from './render.js';
import { requireLogin } from './servers.js';

/**
 * `/hub/accept-share?code=…`: the link a share code makes. The signed-in user sees whose server it opens and
 * accepts with a POST (a link alone must not grant anything, or a page could make a browser accept one).
 */
export function sharePages(ctx: HubContext): Router {
  const router = Router();
  const login = requireLogin(ctx);
  const sharing = new SharingPolicy(ctx);

  router.get('/accept-share', login, async (req: Request, res: Response) => {
    const raw = typeof req.query.code === 'string' ? req.query.code : '';
    const code = await sharing.liveCode(raw);
    res.send(renderPage('accept-share.njk', {
      ...(await layoutFor(ctx, req, res, 'home')), code: raw, owner: code.owner_name, server: code.server_name || 'default server',
      scopes: shownScopes(code), expiresAt: code.expires_at, own: code.owner_name === res.locals.session!.user.name,
    }));
  });

  router.post('/accept-share', login, async (req: Request, res: Response) => {
    checkFormXsrf(ctx, req, res);
    const requester = await ctx.authz.fromSession(req);
    const { owner, server } = await sharing.accept(formField(req, 'code', 200), res.locals.session!.user, auditBy(requester, req));
    res.redirect(302, serverPrefix(owner.name, server));
  });

  return router;
}
