import { Router, type Request } from 'express';
import type { Requester } from '../auth/identity.js';
import { formatScopes, identifyScopes, parseScopes } from '../auth/scopes.js';
import { SESSION_COOKIE } from '../auth/sessions.js';
import type { HubContext } from '../context.js';
import { nowIso } from '../db/database.js';
import { HttpError } from '../errors.js';
import { serviceModel, userModels } from './models.js';

const NOT_FOUND = 'Not found';

/**
 * JupyterHub's deprecated `/authorizations` operations, kept for older clients (JupyterHub 5.5.1's
 * `apihandlers/auth.py`). Both lookups need a token in the Authorization header, as its `token_authenticated` does;
 * the token or cookie in the path is never logged nor repeated in an answer.
 */
export function authorizationsRouter(ctx: HubContext): Router {
  const router = Router();

  router.post('/authorizations/token', () => {
    throw new HttpError(404, 'Deprecated endpoint /hub/api/authorizations/token is removed in JupyterHub 2.0. Use /hub/api/users/:user/tokens instead.');
  });

  /**
   * The owner of a token, seen with the requester's scopes plus the owner's identify scopes: holding a token is
   * enough to learn whose it is. Seeing a token counts as its use, so the token's and its user's activity move.
   */
  router.get('/authorizations/token/:token', async (req, res) => {
    const requester = tokenRequester(res.locals.requester);
    const row = await ctx.tokens.resolve(req.params.token!);
    const user = row?.user_id != null ? await ctx.store.users.byId(row.user_id) : undefined;
    const service = row?.service_id != null ? await ctx.store.services.byId(row.service_id) : undefined;
    if (!row || (!user && !service)) throw new HttpError(404, NOT_FOUND);
    const now = nowIso();
    await ctx.store.tokens.touch(row.id, now);
    if (user) await ctx.store.users.touch(user.id, now);
    const owner = user ? { kind: 'user' as const, name: user.name } : { kind: 'service' as const, name: service!.name };
    const identifying: Requester = { ...requester, scopes: parseScopes([...formatScopes(requester.scopes), ...identifyScopes(owner)]) };
    const model = user
      ? (await userModels(ctx, identifying, [(await ctx.store.users.byId(user.id)) ?? user], includeStopped(req)))[0]
      : await serviceModel(ctx, identifying, service!);
    res.json(model);
  });

  /**
   * The user a hub login cookie belongs to, seen with the requester's own scopes only (JupyterHub 5.5.1 adds no
   * identify scopes here). Only the hub's session cookie resolves; any other name is unknown. Recorded as activity.
   */
  router.get('/authorizations/cookie/:cookieName/:cookieValue', async (req, res) => {
    const requester = tokenRequester(res.locals.requester);
    const active = req.params.cookieName === SESSION_COOKIE ? await ctx.sessions.fromCookieValue(req.params.cookieValue) : null;
    if (!active) throw new HttpError(404, NOT_FOUND);
    await ctx.store.users.touch(active.user.id, nowIso());
    const user = (await ctx.store.users.byId(active.user.id)) ?? active.user;
    res.json((await userModels(ctx, requester, [user], includeStopped(req)))[0] ?? {});
  });

  return router;
}

/** JupyterHub's `token_authenticated`: a browser session is not enough. */
function tokenRequester(requester: Requester | null | undefined): Requester {
  if (!requester?.token) throw new HttpError(403, 'Missing or invalid credentials.');
  return requester;
}

function includeStopped(req: Request): boolean {
  return req.query.include_stopped_servers !== undefined;
}
