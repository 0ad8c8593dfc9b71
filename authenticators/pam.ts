import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pamAuthenticatePromise } from 'node-linux-pam';
import { passwordRejection } from '../hub/auth/passwords.js';
import { normalizeUsername, validateUsername } from '../hub/auth/usernames.js';
import type { Logger } from '../hub/log.js';
import type { AuthenticatedUser, Authenticator, LoginAttempt } from './authenticator.js';

const run = promisify(execFile);

/** The UNIX groups of a user as the system's name service sees them (files, LDAP, sssd alike). */
export async function unixGroupsOf(name: string): Promise<string[]> {
  const { stdout } = await run('id', ['-Gn', '--', name], { timeout: 10_000 });
  return stdout.trim().split(/\s+/).filter(Boolean);
}

/**
 * System accounts through PAM with node-linux-pam, which runs pam_authenticate and then pam_acct_mgmt, so expired
 * and locked accounts are refused. Checking other users' passwords needs root or membership of group shadow.
 * The groups returned are the user's UNIX groups, for auth.allowed_groups and auth.admin_groups.
 */
export class PamAuthenticator implements Authenticator {
  readonly kind = 'pam';
  readonly loginStyle = 'form' as const;

  constructor(private readonly service: string, private readonly log: Logger) {}

  async authenticate(attempt: LoginAttempt): Promise<AuthenticatedUser | null> {
    // PAM with nullok takes any password for a passwordless account, and the binding cuts passwords at NUL.
    if (passwordRejection(attempt.password) !== null) return null;
    const name = normalizeUsername(attempt.username);
    if (validateUsername(name) !== null) return null;
    try {
      await pamAuthenticatePromise({ username: name, password: attempt.password, serviceName: this.service, remoteHost: attempt.ip });
    } catch (err) {
      // The code tells an admin why (7 wrong password, 13 expired, 9 hub not allowed to read shadow); users get one message.
      this.log.info({ pamCode: (err as { code?: number }).code }, 'PAM refused a login');
      return null;
    }
    // An account PAM knows but the name service does not (a PAM-only module) simply has no groups.
    const groups = await unixGroupsOf(name).catch(() => []);
    return { name, groups };
  }
}
