import { Router } from 'express';
import type { HubContext } from '../context.js';
import { HttpError } from '../errors.js';
import { serviceModel } from './models.js';

const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/;

/**
 * The services declared in config. As JupyterHub does (and unlike its spec, which shows a paginated array), the list
 * is an object keyed by name, holding the services the requester may list.
 */
export function servicesRouter(ctx: HubContext): Router {
  const router = Router();
  const { store, authz } = ctx;

  router.get('/services', async (_req, res) => {
    const { requester, only } = authz.requireList(res.locals.requester ?? null, 'list:services');
    const out: Record<string, unknown> = {};
    for (const service of await store.services.list()) {
      if (only && !only.service.has(service.name)) continue;
      const model = await serviceModel(ctx, requester, service);
      if (model) out[service.name] = model;
    }
    res.json(out);
  });

  router.get('/services/:name', async (req, res) => {
    const name = req.params.name;
    if (!SERVICE_NAME.test(name)) throw new HttpError(404, 'No such service');
    const requester = await authz.require(res.locals.requester ?? null, ['read:services', 'read:services:name', 'read:roles:services'], { service: name });
    const service = await store.services.byName(name);
    const model = service ? await serviceModel(ctx, requester, service) : null;
    if (!model) throw new HttpError(404, `No such service: ${name}`);
    res.json(model);
  });

  return router;
}
