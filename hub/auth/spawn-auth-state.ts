import type { Authenticator } from '../../authenticators/authenticator.js';
import type { Store } from '../db/index.js';
import type { UserRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import type { AuthStateVault } from './auth-state.js';

export interface SpawnAuthStateDeps {
  store: Store;
  authenticator: Authenticator;
  vault: AuthStateVault | undefined;
  enabled: boolean;
}

/**
 * The auth_state a spawner receives: decrypted, and first brought up to date by the authenticator (an OpenID
 * Connect provider's expired tokens are refreshed and stored again). A refresh the provider refuses stops the
 * spawn: the user must sign in again rather than get a server with dead credentials.
 */
export async function authStateForSpawn(deps: SpawnAuthStateDeps, user: UserRow): Promise<Record<string, unknown> | undefined> {
  if (!deps.enabled || !deps.vault) return undefined;
  const state = deps.vault.open(user.id, user.auth_state);
  if (!state || !deps.authenticator.refreshAuthState) return state ?? undefined;
  const fresh = await deps.authenticator.refreshAuthState(state);
  if (!fresh) throw new HttpError(403, 'Your sign-in has expired; sign in again to start a server');
  if (fresh !== state) await deps.store.users.update(user.id, { authState: deps.vault.seal(user.id, fresh) });
  return fresh;
}
