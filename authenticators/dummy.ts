import { timingSafeEqual } from 'node:crypto';
import { passwordRejection } from '../hub/auth/passwords.js';
import { normalizeUsername, validateUsername } from '../hub/auth/usernames.js';
import type { AuthenticatedUser, Authenticator, LoginAttempt } from './authenticator.js';

/**
 * For tests and demos only: any valid username logs in, with the shared password when one is configured.
 * The hub logs a warning at start when it is in use.
 */
export class DummyAuthenticator implements Authenticator {
  readonly kind = 'dummy';
  readonly loginStyle = 'form' as const;

  constructor(private readonly sharedPassword?: string) {}

  async authenticate(attempt: LoginAttempt): Promise<AuthenticatedUser | null> {
    const name = normalizeUsername(attempt.username);
    if (validateUsername(name) !== null || passwordRejection(attempt.password) !== null) return null;
    if (this.sharedPassword !== undefined) {
      const a = Buffer.from(attempt.password);
      const b = Buffer.from(this.sharedPassword);
      if (a.length !== b.length || !timingSafeEqual(a, b)) return null;
    }
    return { name };
  }
}
