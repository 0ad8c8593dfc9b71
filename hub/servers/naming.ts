import { escapeForPath } from '../auth/usernames.js';
import { checkedUid } from '../db/user-uid.js';

/** URL and identifier conventions shared by the API, pages, spawners and the proxy routes. */

export const serverKey = (user: string, server: string) => `${user}/${server}`;

/** `/user/alice/` or `/user/alice/lab2/`: names are percent-encoded, the prefix always ends with `/`. */
export function serverPrefix(user: string, server: string): string {
  return `/user/${escapeForPath(user)}/${server ? `${escapeForPath(server)}/` : ''}`;
}

/** A proxy route key in one spelling: decoded, leading `/`, no trailing `/` (CHP keys and prefixes compare equal). */
export function normalizeRouteKey(path: string): string {
  let p = path;
  try {
    p = decodeURIComponent(path);
  } catch {
    // keep as is: an undecodable key can only be compared literally
  }
  if (!p.startsWith('/')) p = `/${p}`;
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/**
 * The OAuth client id of a server, also the cookie name jupyterhub-singleuser uses (hence JupyterHub's prefix):
 * `jupyterhub-user-<uid>[-<server>]`. The uid has a fixed length and is never reused, so no two (account, server)
 * pairs, past or present, share an id; from names, `j` + `smith` and `j-smith` + default both gave `…-j-smith`.
 */
export function oauthClientId(uid: string, server: string): string {
  return `jupyterhub-user-${checkedUid(uid)}${server ? `-${escapeForPath(server)}` : ''}`;
}

/** A server's API resource: `/hub/api/users/<user>/server/<what>` for the default one, `…/servers/<server>/<what>` else. */
function serverApiUrl(user: string, server: string, what: 'progress' | 'idle'): string {
  const u = escapeForPath(user);
  return server ? `/hub/api/users/${u}/servers/${escapeForPath(server)}/${what}` : `/hub/api/users/${u}/server/${what}`;
}

export const progressUrl = (user: string, server: string) => serverApiUrl(user, server, 'progress');

export const idleUrl = (user: string, server: string) => serverApiUrl(user, server, 'idle');

/** Server names: what JupyterHub 6 enforces, so names stay valid path segments and DNS-friendly. */
export function validateServerName(name: string): string | null {
  if (name.length > 63) return 'server name must be at most 63 characters';
  if (!/^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/i.test(name)) {
    return 'server name must start and end with a letter or digit and contain only letters, digits, ., _ or -';
  }
  return null;
}
