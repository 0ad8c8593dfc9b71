import { escapeForPath } from '../auth/usernames.js';
import { oauthClientId, serverPrefix } from './naming.js';

export interface SingleUserEnvInput {
  user: string;
  /** The account's immutable id: names the OAuth client. */
  uid: string;
  server: string;
  apiToken: string;
  /** How servers reach the hub: e.g. http://127.0.0.1:8081 */
  hubConnectUrl: string;
  /** Scopes a user's token needs to use this server. */
  accessScopes: string[];
  clientAllowedScopes: string[];
  publicUrl?: string;
}

/**
 * The JUPYTERHUB_* environment jupyterhub-singleuser 3.x–5.x reads (JupyterHub 5.5.1 `Spawner.get_env`).
 * The spawner adds JUPYTERHUB_SERVICE_URL once it knows the address it binds.
 */
export function singleUserEnvironment(input: SingleUserEnvInput): Record<string, string> {
  const prefix = serverPrefix(input.user, input.server);
  const apiUrl = `${input.hubConnectUrl.replace(/\/$/, '')}/hub/api`;
  const accessScopes = JSON.stringify(input.accessScopes);
  const publicOrigin = input.publicUrl ? new URL(input.publicUrl).origin : '';
  return {
    JUPYTERHUB_API_TOKEN: input.apiToken,
    JPY_API_TOKEN: input.apiToken,
    JUPYTERHUB_CLIENT_ID: oauthClientId(input.uid, input.server),
    JUPYTERHUB_HOST: publicOrigin,
    JUPYTERHUB_OAUTH_CALLBACK_URL: `${prefix}oauth_callback`,
    JUPYTERHUB_OAUTH_ACCESS_SCOPES: accessScopes,
    JUPYTERHUB_OAUTH_SCOPES: accessScopes,
    JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES: JSON.stringify(input.clientAllowedScopes),
    JUPYTERHUB_USER: input.user,
    JUPYTERHUB_SERVER_NAME: input.server,
    JUPYTERHUB_API_URL: apiUrl,
    JUPYTERHUB_ACTIVITY_URL: `${apiUrl}/users/${escapeForPath(input.user)}/activity`,
    JUPYTERHUB_BASE_URL: '/',
    JUPYTERHUB_SERVICE_PREFIX: prefix,
    JUPYTERHUB_PUBLIC_URL: publicOrigin ? `${publicOrigin}${prefix}` : '',
    JUPYTERHUB_PUBLIC_HUB_URL: publicOrigin ? `${publicOrigin}/hub/` : '',
  };
}
