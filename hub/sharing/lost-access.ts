import type { HubContext } from '../context.js';
import type { Resource } from '../auth/identity.js';
import { routeOfClient } from '../servers/route-revocations.js';

/**
 * After people's groups or admin status change, the OAuth tokens they hold for servers and services they may no
 * longer use are deleted and refused at the proxy at once (route-revocations.ts): the cut a revoked share makes,
 * for access lost any other way, such as leaving a group a server is shared with. Call it once the change is
 * committed, so their scopes are read as they now stand.
 */
export async function dropLostAccess(ctx: HubContext, userIds: readonly number[]): Promise<void> {
  const { store, authz } = ctx;
  for (const id of new Set(userIds)) {
    const user = await store.users.byId(id);
    if (!user) continue;
    const clients = new Set((await store.tokens.listForUser(user.id)).flatMap((t) => (t.oauth_client_id ? [t.oauth_client_id] : [])));
    if (clients.size === 0) continue;
    const requester = await authz.forUser(user);
    for (const clientId of clients) {
      const route = await routeOfClient(store, clientId);
      const needs = route ? accessTo(route) : undefined;
      if (!route || !needs || await authz.allows(requester, [needs.scope], needs.resource)) continue;
      await ctx.revocations.refuse(route, await store.tokens.deleteForUserAndClient(user.id, clientId));
    }
  }
}

/**
 * The hashes of a user's OAuth tokens by the route of the server or service each was issued for: what a deleted
 * account's open tabs hold, to be refused at the proxy once the account is gone.
 */
export async function oauthTokensByRoute(ctx: HubContext, userId: number): Promise<Map<string, string[]>> {
  const byRoute = new Map<string, string[]>();
  for (const token of await ctx.store.tokens.listForUser(userId)) {
    const route = token.oauth_client_id ? await routeOfClient(ctx.store, token.oauth_client_id) : undefined;
    if (route) byRoute.set(route, [...byRoute.get(route) ?? [], token.hashed]);
  }
  return byRoute;
}

/** What using a route takes: `access:servers` on `/user/<name>[/<server>]/`, `access:services` on `/services/<name>/`. */
function accessTo(route: string): { scope: string; resource: Resource } | undefined {
  let parts: string[];
  try {
    parts = route.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return undefined;
  }
  if (parts[0] === 'user' && (parts.length === 2 || parts.length === 3)) return { scope: 'access:servers', resource: { server: `${parts[1]}/${parts[2] ?? ''}` } };
  if (parts[0] === 'services' && parts.length === 2) return { scope: 'access:services', resource: { service: parts[1]! } };
  return undefined;
}
