import type { Request, Response } from 'express';
import type { HubContext } from '../context.js';
import { HttpError } from '../errors.js';
import { progressUrl, serverPrefix } from '../servers/naming.js';
import { layoutFor } from './page-context.js';
import { redirectWithFlash } from './flash.js';

/**
 * The admin area's sections, in tab order. A feature with its own admin page adds one entry here and mounts its
 * router beside the others in hub/pages/admin.ts.
 */
export const ADMIN_SECTIONS: Array<{ id: string; label: string; url: string }> = [
  { id: 'users', label: 'Users', url: '/hub/admin/users' },
  { id: 'classes', label: 'Classes', url: '/hub/admin/classes' },
  { id: 'servers', label: 'Active servers', url: '/hub/admin/servers' },
  { id: 'leases', label: 'Credential leases', url: '/hub/admin/leases' },
  { id: 'audit', label: 'Audit log', url: '/hub/admin/audit' },
];

export async function adminLayout(ctx: HubContext, req: Request, res: Response, adminSection: string): Promise<Record<string, unknown>> {
  return { ...(await layoutFor(ctx, req, res, 'admin')), adminSection, adminSections: ADMIN_SECTIONS };
}

export { flash } from './flash.js';

/**
 * Runs an admin form action and redirects (303) with its outcome: the success text to `successTarget`, a client error
 * back to `back`. Server errors propagate to the error page. An action that answered itself (a page showing
 * something only once, such as new sign-in links) returns null.
 */
export async function withFlash(res: Response, back: string, work: () => Promise<string | null>, successTarget = back): Promise<void> {
  let done: string | null;
  try {
    done = await work();
  } catch (err) {
    if (!(err instanceof HttpError) || err.status >= 500) throw err;
    return redirectWithFlash(res, back, 'error', err.message);
  }
  if (done !== null) redirectWithFlash(res, successTarget, 'done', done);
}

export const serverPath = (user: string, server: string) => `${encodeURIComponent(user)}${server ? `/${encodeURIComponent(server)}` : ''}`;

/** The page where a server's shares and share links are managed (the default server's ends in `/`). */
export const sharingUrl = (user: string, server: string) => `/hub/sharing/${serverPath(user, server)}${server ? '' : '/'}`;

/** Links and form targets to start, stop, open or follow one server, returning to `next` after a stop. */
export function serverActions(user: string, server: string, status: string, next: string) {
  const back = adminReturnPath(next);
  return {
    status, next, url: serverPrefix(user, server),
    startAction: `/hub/spawn/${serverPath(user, server)}`, stopAction: `/hub/stop/${serverPath(user, server)}`,
    pendingUrl: `/hub/spawn-pending/${serverPath(user, server)}${back ? `?next=${encodeURIComponent(back)}` : ''}`,
    progressUrl: progressUrl(user, server),
  };
}

/** Where a stop form may send the browser back to: only an admin page of this hub. */
export function adminReturnPath(next: string): string | null {
  return /^\/hub\/admin\/[A-Za-z0-9\-._~%/?=&+]*$/.test(next) && !next.includes('//') ? next : null;
}
