import { HttpError } from '../errors.js';
import type { ShareView } from '../db/shares.js';

/**
 * What a share may grant. JupyterHub lets a share carry any scope filtered to the server; LabHub grants use of the
 * server and nothing else, so no share reaches the owner's tokens, credentials, other servers or account.
 */
export const SHAREABLE = ['access:servers'] as const;

/** The scopes shares give their holder: each bare scope filtered to its one server, by the owner's current name. */
export function sharedScopes(shares: ShareView[]): string[] {
  return shares.flatMap((s) => s.scopes.map((scope) => `${scope}!server=${s.owner_name}/${s.server_name}`));
}

/** A share's scopes as its model shows them. */
export function shownScopes(share: Pick<ShareView, 'owner_name' | 'server_name' | 'scopes'>): string[] {
  return share.scopes.map((scope) => `${scope}!server=${share.owner_name}/${share.server_name}`);
}

/**
 * Requested scopes as stored (bare). Each must be shareable, and when filtered, filtered to this very server
 * (`access:servers!server=alice/` as JupyterHub's clients send it). Default: access to the server.
 */
export function shareScopesFrom(requested: string[] | undefined, owner: string, server: string): string[] {
  if (requested === undefined) return [...SHAREABLE];
  const out = new Set<string>();
  for (const scope of requested) {
    const [bare, filter] = scope.split('!', 2) as [string, string | undefined];
    if (!(SHAREABLE as readonly string[]).includes(bare)) {
      throw new HttpError(400, `Only ${SHAREABLE.join(', ')} can be shared, not ${scope.slice(0, 100)}`);
    }
    if (filter !== undefined && filter !== `server=${owner}/${server}`) {
      throw new HttpError(400, `A share's scopes must be filtered to the shared server ${owner}/${server}, not ${scope.slice(0, 100)}`);
    }
    out.add(bare);
  }
  if (out.size === 0) throw new HttpError(400, 'No scopes to share');
  return [...out].sort();
}
