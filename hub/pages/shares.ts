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
import { flash } from './flash.js';
import { sharingUrl, withFlash } from './admin-layout.js';
import { normalizeUsername } from '../auth/usernames.js';
import { HttpError } from '../errors.js';
import type { ShareView } from '../db/shares.js';

/** Choices of the page's link form, in seconds. */
const LINK_LIFETIMES: Array<[number, string]> = [[3600, '1 hour'], [86_400, '1 day'], [7 * 86_400, '7 days'], [30 * 86_400, '30 days']];

/**
 * `/hub/sharing/<owner>/[<server>]`: who may use a server, and links that let people in; for the owner (and for
 * admins, or whoever holds `shares` on it). `/hub/accept-share?code=…`: the link a share code makes. The signed-in user sees whose server it opens and
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

  async function serverAt(req: Request) {
    const requester = await ctx.authz.fromSession(req);
    return sharing.server(requester, normalizeUsername(String(req.params.owner)), String(req.params.server ?? ''), ['shares']);
  }

  async function show(req: Request, res: Response, status: number, extra: Record<string, unknown> = {}) {
    const at = await serverAt(req);
    const [{ rows: shares }, { rows: codes }] = await Promise.all([
      ctx.store.shares.list({ ownerId: at.owner.id, serverName: at.server }), ctx.store.shares.codes(at.owner.id, at.server, 0, 100),
    ]);
    const { done, message } = flash(req);
    res.status(status).send(renderPage('sharing.njk', {
      ...(await layoutFor(ctx, req, res, 'home')), owner: at.owner.name, server: at.server, serverLabel: at.server || 'default server',
      action: sharingUrl(at.owner.name, at.server), serverUrl: serverPrefix(at.owner.name, at.server),
      shares: shares.map((s: ShareView) => ({ id: s.id, kind: s.user_name !== null ? 'user' : 'group', name: s.user_name ?? s.group_name, created: s.created })),
      codes, lifetimes: LINK_LIFETIMES, done, message, ...extra,
    }));
  }

  const paths = ['/sharing/:owner/:server', '/sharing/:owner/', '/sharing/:owner'];
  router.get(paths, login, (req, res) => show(req, res, 200));

  router.post(paths, login, async (req: Request, res: Response) => {
    checkFormXsrf(ctx, req, res);
    const at = await serverAt(req);
    const by = auditBy(at.requester, req);
    const back = sharingUrl(at.owner.name, at.server);
    const who = () => {
      const kind = formField(req, 'kind', 10);
      const name = formField(req, 'name', 255).trim();
      if (!name) throw new HttpError(400, 'Give the name of a user or a group.');
      return kind === 'group' ? { group: name } : { user: name };
    };
    switch (formField(req, 'do', 20)) {
      case 'grant':
        return withFlash(res, back, async () => {
          const target = who();
          await sharing.grant(at, target, undefined, by);
          return `Shared with ${target.user ?? `the group ${target.group}`}.`;
        });
      case 'revoke':
        // By the share's id, among this server's shares: someone who accepted a link may be a user the owner cannot name.
        return withFlash(res, back, async () => {
          const id = Number(formField(req, 'id', 15));
          const share = (await ctx.store.shares.list({ ownerId: at.owner.id, serverName: at.server })).rows.find((s) => s.id === id);
          if (!share) throw new HttpError(404, 'That share is already gone.');
          await sharing.revoke(at, share, null, by);
          return `${share.user_name ?? `The group ${share.group_name}`} can no longer use this server.`;
        });
      case 'code': {
        const seconds = Number(formField(req, 'expires_in', 10));
        if (!LINK_LIFETIMES.some(([s]) => s === seconds)) throw new HttpError(400, 'Choose how long the link works.');
        const { code } = await sharing.createCode(at, undefined, seconds, by);
        // Without public_url the link is built on the address this browser used, which it alone sees.
        const host = req.get('host') ?? '';
        const origin = ctx.config.public_url ?? (/^[A-Za-z0-9.:[\]-]{1,300}$/.test(host) ? `${req.protocol}://${host}` : null);
        const path = `/hub/accept-share?code=${code}`;
        const link = origin ? new URL(path, origin).toString() : path;
        // Shown once, here: only the code's digest is kept.
        return show(req, res, 201, { newLink: link });
      }
      case 'revoke-code':
        return withFlash(res, back, async () => {
          const id = Number(formField(req, 'id', 15));
          await sharing.revokeCode(at, Number.isSafeInteger(id) ? await ctx.store.shares.code({ id }) : undefined, by);
          return 'The link no longer works.';
        });
      default:
        throw new HttpError(400, 'Unknown action');
    }
  });

  return router;
}
