import { randomBytes } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
export const USER_UID_LENGTH = 12;
export const USER_UID = /^[a-z2-7]{12}$/;

/**
 * A user account's immutable id: 12 lower-case base32 characters (60 random bits). Every per-user object (database
 * roles and schemas, volumes, pods, OAuth clients) is named from it, never from the username, which can be reused
 * after a delete or collide with another name once escaped. Unique among accounts (unique index); a collision with
 * a deleted account's id needs about 2^30 accounts before it becomes likely.
 */
export function newUserUid(): string {
  const bytes = randomBytes(USER_UID_LENGTH);
  let out = '';
  for (const b of bytes) out += BASE32[b & 31];
  return out;
}

/** The uid, after checking its form: a malformed one ('' above all) would give every account the same names. */
export function checkedUid(uid: string): string {
  if (!USER_UID.test(uid)) throw new Error('the account has no valid uid');
  return uid;
}
