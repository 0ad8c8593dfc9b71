import { Router, type Request, type Response } from 'express';
import type { HubContext } from '../context.js';
import { auditBy, recordAudit } from '../audit/record.js';
import { shareCodeDigest } from '../api/shares.js';
import type { ShareCodeView } from '../db/shares.js';
import { HttpError } from '../errors.js';
import { serverPrefix } from '../servers/naming.js';
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
  const { store } = ctx;
  const login = requireLogin(ctx);

  async function liveCode(raw: string): Promise<ShareCodeView> {
    const code = raw && raw.length <= 200 ? await store.shares.code({ codeHash: shareCodeDigest(raw) }) : undefined;
    if (!code) throw new HttpError(404, 'This share link is not valid: it expired, was revoked, or was mistyped. Ask its owner for a new one.');
    return code;
  }

  router.get('/accept-share', login, async (req: Request, res: Response) => {
    const raw = typeof req.query.code === 'string' ? req.query.code : '';
    const code = await liveCode(raw);
    const own = code.owner_name === res.locals.session!.user.name;
    res.send(renderPage('accept-share.njk', {
      ...(await layoutFor(ctx, req, res, 'home')), code: raw, owner: code.owner_name, server: code.server_name || 'default server',
      scopes: shownScopes(code), expiresAt: code.expires_at, own,
    }));
  });

  router.post('/accept-share', login, async (req: Request, res: Response) => {
    checkFormXsrf(ctx, req, res);
    const code = await liveCode(formField(req, 'code', 200));
    const user = res.locals.session!.user;
    if (code.owner_name === user.name) throw new HttpError(400, 'This is your own server; share links are for other people.');
    const owner = await store.users.byName(code.owner_name);
    if (!owner) throw new HttpError(404, 'The owner of this server no longer exists.');
    const requester = await ctx.authz.fromSession(req);
    await store.transaction(async (tx) => {
      await tx.shares.grant(owner.id, code.server_name, { userId: user.id }, code.scopes);
      await tx.shares.codeExchanged(code.id);
      await recordAudit(tx, {
        action: 'share.grant', ...auditBy(requester, req), target: { kind: 'user', name: owner.name, uid: owner.uid },
        details: { server: `${owner.name}/${code.server_name}`, with: { kind: 'user', name: user.name }, scopes: code.scopes, via: 'code' },
      });
    });
    res.redirect(302, serverPrefix(owner.name, code.server_name));
  });

  return router;
}
