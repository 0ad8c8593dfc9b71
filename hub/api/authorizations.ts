import { Router } from 'express';
import { HttpError } from '../errors.js';

/**
 * `/authorizations/token`: JupyterHub 2.0 removed creating tokens here and answers 404 saying where to go instead;
 * old clients get the same pointer from us.
 */
export function authorizationsRouter(): Router {
  const router = Router();
  router.post('/authorizations/token', () => {
    throw new HttpError(404, 'Deprecated endpoint /hub/api/authorizations/token is removed in JupyterHub 2.0. Use /hub/api/users/:user/tokens instead.');
  });
  return router;
}
