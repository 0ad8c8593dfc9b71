import { Router, type Request, type Response } from 'express';
import type { HubContext } from '../context.js';
import { HttpError } from '../errors.js';
import { issueUserToken, revokeUserToken } from '../api/tokens.js';
import { sourceOf } from '../audit/record.js';
import { parseTokenApiId } from '../auth/tokens.js';
import { renderPage } from './render.js';
import { formField } from './auth.js';
import { requireLogin } from './servers.js';
import { checkFormXsrf, layoutFor } from './page-context.js';

/** Expiry choices offered on the page, in seconds (0: never). */
const EXPIRY_CHOICES: Array<[number, string]> = [
  [3600, '1 hour'], [86_400, '1 day'], [7 * 86_400, '7 days'], [30 * 86_400, '30 days'], [365 * 86_400, '1 year'], [0, 'Never'],
];

/** The token page: a user's API tokens (create with note, expiry and scopes; the value shown once; revoke). */
export function tokenPages(ctx: HubContext): Router {
  const router = Router();
  const login = requireLogin(ctx);

  async function show(req: Request, res: Response, status: number, extra: Record<string, unknown>) {
    const { user } = res.locals.session!;
    await ctx.store.tokens.deleteExpired();
    const rows = await ctx.store.tokens.listForUser(user.id);
    const clients = new Map<string, string>();
    for (const id of new Set(rows.map((r) => r.oauth_client_id).filter((c): c is string => c !== null))) {
      clients.set(id, (await ctx.store.oauth.client(id))?.description || id);
    }
    const view = (r: (typeof rows)[number]) => ({
      id: `a${r.id}`, note: r.note, created: r.created, lastActivity: r.last_activity, expiresAt: r.expires_at,
      scopes: (JSON.parse(r.scopes) as string[]).join(' '), client: r.oauth_client_id ? clients.get(r.oauth_client_id) : null,
    });
    const max = ctx.config.token_expires_in_max_seconds;
    const expiries = EXPIRY_CHOICES.filter(([s]) => max === 0 || (s > 0 && s <= max)).map(([value, label]) => ({ value, label }));
    res.status(status).send(renderPage('token.njk', {
      ...(await layoutFor(ctx, req, res, 'token')),
      apiTokens: rows.filter((r) => !r.oauth_client_id && !r.session_id).map(view),
      authorized: rows.filter((r) => r.oauth_client_id).map(view),
      expiries, ...extra,
    }));
  }

  router.get('/token', login, (req, res) => show(req, res, 200, {}));

  router.post('/token', login, async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const { user } = res.locals.session!;
    const requester = await ctx.authz.fromSession(req);
    await ctx.authz.require(requester, ['tokens'], { user: user.name });
    const note = formField(req, 'note', 1000).trim() || 'Requested via the token page';
    const expiresIn = Number(formField(req, 'expires_in', 12) || '0');
    const scopes = formField(req, 'scopes', 4000).split(/[\s,]+/).filter(Boolean);
    try {
      if (!Number.isSafeInteger(expiresIn) || expiresIn < 0) throw new HttpError(400, 'Choose an expiry from the list');
      const { token } = await issueUserToken(ctx, requester!, user, { scopes: scopes.length ? scopes : ['inherit'], note, expiresIn: expiresIn || null }, sourceOf(req));
      // A page holding a secret is never stored by the browser or a cache on the way.
      res.set('Cache-Control', 'no-store');
      await show(req, res, 201, { created: { token, note } });
    } catch (err) {
      if (!(err instanceof HttpError) || err.status >= 500) throw err;
      await show(req, res, err.status, { message: err.message, form: { note, scopes: scopes.join(' ') } });
    }
  });

  router.post('/token/:id/revoke', login, async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const { user } = res.locals.session!;
    const requester = await ctx.authz.require(await ctx.authz.fromSession(req), ['tokens'], { user: user.name });
    const id = parseTokenApiId(String(req.params.id));
    const row = id === null ? undefined : await ctx.store.tokens.byId(id);
    if (!row || row.user_id !== user.id) throw new HttpError(404, 'No such token');
    await revokeUserToken(ctx, requester, user, row, sourceOf(req));
    res.redirect(303, '/hub/token');
  });

  return router;
}
