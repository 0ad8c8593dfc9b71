import { createHash, randomBytes } from 'node:crypto';

/**
 * A form of a hub username that is safe as a database identifier part: lower-case letters, digits and `_`.
 * Names that had to change get a short hash of the original, so `a.b` and `a_b` never share an identifier.
 */
export function identifierSlug(user: string, maxLength = 24): string {
  const cleaned = user.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, maxLength);
  if (cleaned === user) return cleaned;
  return `${cleaned}_${createHash('sha256').update(user).digest('hex').slice(0, 6)}`;
}

/** What a user owns at the data services and keeps across servers. */
export interface UserDataNames {
  /** NOLOGIN PostgreSQL role owning the user's schema; every lease of the user is a member of it. */
  postgresOwner: string;
  postgresSchema: string;
  mongoDatabase: string;
}

/** The user's own role, schema and database: `labhub_owner_<slug>`, `u_<slug>`, `user_<slug>`. */
export function userDataNames(user: string): UserDataNames {
  const slug = identifierSlug(user);
  return { postgresOwner: `labhub_owner_${slug}`, postgresSchema: `u_${slug}`, mongoDatabase: `user_${slug}` };
}

/** A fresh account name: prefix, the user's slug, random letters. Never reused, so audit logs stay attributable. */
export function accountName(prefix: string, user: string, separator = '_'): string {
  return [prefix, identifierSlug(user), randomBytes(6).toString('hex')].join(separator);
}

/** 192 random bits, URL-safe, so the password can go into a connection URL without escaping surprises. */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}
