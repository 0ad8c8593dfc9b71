import type { Request, Response } from 'express';
import type { HubContext } from '../context.js';
import type { Requester } from '../auth/identity.js';
import { HttpError } from '../errors.js';
import type { UserRow } from '../db/schema.js';
import { idlePolicy } from '../servers/idle-culler.js';
import { idleUrl } from '../servers/naming.js';
import { escapeForPath } from '../auth/usernames.js';

/** What every logged-in page's layout needs: who is looking, their XSRF token, and whether to offer the admin pages. */
export async function layoutFor(ctx: HubContext, req: Request, res: Response, section: string): Promise<Record<string, unknown>> {
  const active = res.locals.session!;
  const requester = await ctx.authz.fromSession(req);
  return {
    user: active.user, xsrf: ctx.xsrf.tokenFor(req, res, active.session.id), section,
    canAdmin: requester !== null && requester.scopes.has('admin-ui'), nativeLogin: ctx.authenticator.kind === 'native',
    idleWatch: await idleWatchFor(ctx, active.user),
  };
}

/**
 * The viewer's running servers, for the banner that warns before one is culled for inactivity
 * (templates/static/idle-warnings.js); none when the hub knows of no idle timeout.
 */
async function idleWatchFor(ctx: HubContext, user: UserRow): Promise<Array<{ name: string; label: string; idleUrl: string; activityUrl: string }>> {
  if (!idlePolicy(ctx.config.idle_culling)) return [];
  const rows = (await ctx.store.servers.forUsers([user.id])).get(user.id) ?? [];
  const activityUrl = `/hub/api/users/${escapeForPath(user.name)}/activity`;
  return rows.filter((r) => r.status === 'running')
    .map((r) => ({ name: r.name, label: r.name ? `Your server ${r.name}` : 'Your server', idleUrl: idleUrl(user.name, r.name), activityUrl }));
}

/** Every form a logged-in page posts carries the session's XSRF token. */
export function checkFormXsrf(ctx: HubContext, req: Request, res: Response): void {
  if (!ctx.xsrf.check(req, res.locals.session!.session.id)) throw new HttpError(403, "'_xsrf' argument missing or invalid");
}

/** The session's requester, refused unless it holds each scope unfiltered (the admin pages act on everyone). */
export async function requireUnfilteredScopes(ctx: HubContext, req: Request, scopes: string[]): Promise<Requester> {
  const requester = await ctx.authz.fromSession(req);
  for (const scope of scopes) {
    if (!requester || requester.scopes.get(scope) !== 'all') throw new HttpError(403, `This page needs the ${scope} permission`);
  }
  return requester!;
}

/** Values of a repeated form field (checkboxes), each a short string; anything else is dropped. */
export function formList(req: Request, name: string, max = 255): string[] {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  return ([] as unknown[]).concat(value ?? []).filter((v): v is string => typeof v === 'string' && v.length <= max);
}
