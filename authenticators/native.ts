import type { Store } from '../hub/db/index.js';
import { dummyVerify, passwordRejection, verifyPassword } from '../hub/auth/passwords.js';
import { normalizeUsername, validateUsername } from '../hub/auth/usernames.js';
import type { AuthenticatedUser, Authenticator, LoginAttempt } from './authenticator.js';

/**
 * Accounts the hub manages itself: passwords hashed with scrypt in the state DB. Admins create them with the CLI,
 * the API (then set a password through an invitation link) or the first-admin setup link.
 */
export class NativeAuthenticator implements Authenticator {
  readonly kind = 'native';
  readonly loginStyle = 'form' as const;

  constructor(private readonly store: Store) {}

  async authenticate(attempt: LoginAttempt): Promise<AuthenticatedUser | null> {
    const name = normalizeUsername(attempt.username);
    // Refused before any lookup, but after the same amount of work, so timing tells nothing about accounts.
    if (passwordRejection(attempt.password) !== null || validateUsername(name) !== null) {
      await dummyVerify(attempt.password);
      return null;
    }
    const user = await this.store.users.byName(name);
    if (!user?.password_hash) {
      await dummyVerify(attempt.password);
      return null;
    }
    return (await verifyPassword(attempt.password, user.password_hash)) ? { name } : null;
  }
}
