import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Authenticator } from '../../authenticators/authenticator.js';
import { AuthStateVault } from '../../hub/auth/auth-state.js';
import { authStateForSpawn } from '../../hub/auth/spawn-auth-state.js';
import type { Store } from '../../hub/db/index.js';
import type { UserRow } from '../../hub/db/schema.js';

const vault = new AuthStateVault([randomBytes(32)]);
const user = (state: Record<string, unknown> | null): UserRow => ({
  id: 4, name: 'dora', admin: 0, created: '', last_activity: null, cookie_id: 'c', password_hash: null, uid: 'doradoradora', legacy_name: null, user_info: null,
  auth_state: state && vault.seal(4, state),
});

/** Records what would be written back to users.auth_state. */
function fakeStore(): { store: Store; written: (string | null | undefined)[] } {
  const written: (string | null | undefined)[] = [];
  const store = { users: { update: async (_id: number, changes: { authState?: string | null }) => void written.push(changes.authState) } } as unknown as Store;
  return { store, written };
}

function authenticator(refresh?: Authenticator['refreshAuthState']): Authenticator {
  return { kind: 'oidc', loginStyle: 'redirect', authenticate: async () => null, ...(refresh && { refreshAuthState: refresh }) };
}

describe('auth_state for a spawn', () => {
  it('is nothing when auth_state is off or there is no key', async () => {
    const { store } = fakeStore();
    expect(await authStateForSpawn({ store, authenticator: authenticator(), vault, enabled: false }, user({ a: 1 }))).toBeUndefined();
    expect(await authStateForSpawn({ store, authenticator: authenticator(), vault: undefined, enabled: true }, user({ a: 1 }))).toBeUndefined();
  });

  it('is the decrypted state, unchanged and not rewritten when the authenticator keeps it', async () => {
    const { store, written } = fakeStore();
    const deps = { store, authenticator: authenticator(async (s) => s), vault, enabled: true };
    expect(await authStateForSpawn(deps, user({ access_token: 'a1' }))).toEqual({ access_token: 'a1' });
    expect(written).toEqual([]);
  });

  it('stores a refreshed state sealed, and hands over the fresh one', async () => {
    const { store, written } = fakeStore();
    const deps = { store, authenticator: authenticator(async () => ({ access_token: 'a2' })), vault, enabled: true };
    expect(await authStateForSpawn(deps, user({ access_token: 'a1' }))).toEqual({ access_token: 'a2' });
    expect(written).toHaveLength(1);
    expect(vault.open(4, written[0]!)).toEqual({ access_token: 'a2' });
  });

  it('stops the spawn when the provider refuses the refresh', async () => {
    const { store } = fakeStore();
    const deps = { store, authenticator: authenticator(async () => null), vault, enabled: true };
    await expect(authStateForSpawn(deps, user({ access_token: 'a1' }))).rejects.toThrow(/sign in again/);
  });
});
