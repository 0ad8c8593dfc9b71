import { Router } from 'express';
import type { HubContext } from '../context.js';
import { VERSION } from '../version.js';
import type { Requester } from '../auth/identity.js';
import { formatScopes, identifyScopes, parseScopes } from '../auth/scopes.js';
import { serviceModel, userModels } from './models.js';

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

  /**
   * Who am I: the owner's model as JupyterHub's `SelfAPIHandler` builds it, with the same keys as GET /users/{name}
   * (or a service's model) for the credential's scopes, plus the identify scopes every credential has here.
   */
  router.get('/user', async (req, res) => {
    const requester = res.locals.requester;
    if (!requester) {
      res.status(403).json({ status: 403, message: 'Missing or invalid credentials.' });
      return;
    }
    const identifying: Requester = {
      ...requester, scopes: parseScopes([...formatScopes(requester.scopes), ...identifyScopes({ kind: requester.kind, name: requester.name })]),
    };
    // The requester's row may come from the token cache, which is kept only as fresh as authorization needs.
    const user = requester.user && await ctx.store.users.byId(requester.user.id);
    const model = requester.user
      ? user && (await userModels(ctx, identifying, [user], req.query.include_stopped_servers !== undefined))[0]
      : await serviceModel(ctx, identifying, requester.service!);
    res.json({
      ...model,
      scopes: requester.tokenScopes,
      session_id: requester.token?.session_id ?? requester.session?.id ?? null,
      token_id: requester.token ? `a${requester.token.id}` : null,
    });
  });

  return router;
}
