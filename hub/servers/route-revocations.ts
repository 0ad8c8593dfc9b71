import type { Logger } from '../log.js';
import type { Store } from '../db/index.js';
import type { ProxyClient } from '../../proxy/client.js';
import { REVOKED_TOKENS_KEY } from '../../proxy/revocations.js';
import { normalizeRouteKey } from './naming.js';

/**
 * How long the proxy refuses a revoked token. Past jupyterhub-singleuser's cache of the hub's answers
 * (`HubAuth.cache_max_age`, 300 s by default), the server itself asks the hub again and is refused.
 */
export const REVOCATION_HOLD_MS = 10 * 60_000;

/**
 * Has the proxy refuse tokens the hub has just deleted, at the route of the server they were for, so that an open
 * tab and its websockets lose access at once rather than when singleuser's cache runs out (`proxy/revocations.ts`).
 *
 * The digests ride in the route's data, so every proxy worker and replica gets them as it gets routes; a proxy that
 * ignores them (configurable-http-proxy) leaves singleuser's cache as the bound. Changes are made one at a time,
 * because each rewrites the route from what the proxy holds.
 */
export class RouteRevocations {
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly proxy: ProxyClient, private readonly log: Logger) {}

  /**
   * Refuses tokens with these stored hashes (`sha256:<hex>`) at `routePath` (e.g. `/user/alice/`). Never throws:
   * the revocation itself is already committed, and a proxy that cannot take this leaves the cache as the bound.
   */
  refuse(routePath: string, hashes: readonly string[]): Promise<void> {
    const digests = hashes.filter((h) => h.startsWith('sha256:')).map((h) => h.slice('sha256:'.length));
    if (digests.length === 0) return Promise.resolve();
    const run = this.queue.then(() => this.addToRoute(routePath, digests)).catch((err: unknown) => {
      this.log.warn({ route: routePath, err: (err as Error).message }, 'the proxy could not take a revocation; singleuser\'s cache bounds it');
    });
    this.queue = run;
    return run;
  }

  private async addToRoute(routePath: string, digests: string[]): Promise<void> {
    const key = normalizeRouteKey(routePath);
    const entry = Object.entries(await this.proxy.getRoutes()).find(([path]) => normalizeRouteKey(path) === key)?.[1];
    // No route: the server is not running, so no open tab and no cache can still let the token in.
    if (!entry) return;
    const { target, last_activity: _lastActivity, ...data } = entry;
    const now = Date.now();
    const held = Object.entries(recordOf(data[REVOKED_TOKENS_KEY])).filter(([, until]) => typeof until === 'string' && Date.parse(until) > now);
    const until = new Date(now + REVOCATION_HOLD_MS).toISOString();
    data[REVOKED_TOKENS_KEY] = Object.fromEntries([...held, ...digests.map((digest) => [digest, until])]);
    await this.proxy.addRoute(routePath, target, data);
    this.log.info({ route: routePath, tokens: digests.length }, 'revoked tokens refused at the proxy');
  }
}

function recordOf(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : {};
}

/** The route an OAuth client serves, a server's or a service's; undefined for other clients and unknown ones. */
export async function routeOfClient(store: Store, clientId: string): Promise<string | undefined> {
  const client = await store.oauth.client(clientId);
  return client ? routeOfCallback(client.redirect_uri) : undefined;
}

/** A callback URL's path without `oauth_callback`. */
function routeOfCallback(redirectUri: string): string | undefined {
  let path: string;
  try {
    path = new URL(redirectUri, 'http://hub.invalid').pathname;
  } catch {
    return undefined;
  }
  return path.endsWith('/oauth_callback') ? path.slice(0, -'oauth_callback'.length) : undefined;
}
