import { Router } from 'express';
import type { HubContext } from '../context.js';
import { requireLogin } from './servers.js';
import { adminUserPages } from './admin-users.js';
import { adminClassPages } from './admin-classes.js';
import { adminServerPages } from './admin-servers.js';
import { adminLeasePages } from './admin-leases.js';
import { adminAuditPages } from './admin-audit.js';

/** The admin area under /hub/admin: login first, then each section checks the scopes it needs. */
export function adminPages(ctx: HubContext): Router {
  const router = Router();
  router.use('/admin', requireLogin(ctx));
  router.use(adminUserPages(ctx), adminClassPages(ctx), adminServerPages(ctx), adminLeasePages(ctx), adminAuditPages(ctx));
  return router;
}
