import type { Logger } from 'pino';
import { accessScopes } from '../auth/scopes.js';
import { hashToken } from '../auth/tokens.js';
import type { ServiceConfig } from '../config/schema.js';
import type { Store } from '../db/index.js';

/** Where the proxy serves a service with a `url` (its names are path-safe: letters, digits, `.`, `_`, `-`). */
export function servicePrefix(name: string): string {
  return `/services/${name}/`;
}

const SERVER_CLIENTS = 'jupyterhub-user-';

export interface ServiceClient {
  identifier: string;
  redirectUri: string;
  /** What users' tokens for the service may carry: its access scope plus what the admin allowed it to ask. */
  allowedScopes: string[];
}

/**
 * The OAuth client a service logs users in with, as JupyterHub derives it: `service-<name>` sending users back to
 * `/services/<name>/oauth_callback`. None without an api_token (the client secret) or anywhere to send users back.
 */
export function serviceClient(service: ServiceConfig): ServiceClient | null {
  const redirectUri = service.oauth_redirect_uri ?? (service.url ? `${servicePrefix(service.name)}oauth_callback` : undefined);
  if (!service.api_token || !redirectUri) return null;
  return {
    identifier: service.oauth_client_id ?? `service-${service.name}`,
    redirectUri,
    allowedScopes: [...accessScopes({ service: service.name }), ...service.oauth_client_allowed_scopes],
  };
}

/**
 * Makes the OAuth clients of services match config: registers each, and removes clients of services no longer
 * configured along with the tokens users gave them, so a removed service keeps no access to anyone's account.
 */
export async function syncServiceClients(store: Store, services: ServiceConfig[], log: Logger): Promise<void> {
  const wanted = new Set<string>();
  for (const service of services) {
    const client = serviceClient(service);
    if (!client) continue;
    wanted.add(client.identifier);
    await store.oauth.upsertClient({
      identifier: client.identifier,
      description: `Service ${service.name}`,
      secret_hash: hashToken(service.api_token!),
      redirect_uri: client.redirectUri,
      allowed_scopes: JSON.stringify(client.allowedScopes),
    });
  }
  for (const id of await store.oauth.allClientIds()) {
    if (id.startsWith(SERVER_CLIENTS) || wanted.has(id)) continue;
    await store.tokens.deleteForClient(id);
    await store.oauth.deleteClient(id);
    log.info({ client: id }, 'removed the OAuth client of a service no longer configured');
  }
}
