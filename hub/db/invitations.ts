import { nowIso, type Db } from './database.js';
import type { InvitationRow } from './schema.js';

/** One-time links (first-admin setup, invitations). Only a hash of each code is stored. */
export class InvitationRepository {
  constructor(private readonly db: Db) {}

  async create(i: { codeHash: string; userId: number | null; accountState: string | null; expiresAt: string }): Promise<void> {
    await this.db.insertInto('invitations').values({
      code_hash: i.codeHash, user_id: i.userId, account_state: i.accountState, created: nowIso(), expires_at: i.expiresAt,
    }).execute();
  }

  /** The unexpired link with this code, without using it up (to show its form). */
  valid(codeHash: string): Promise<InvitationRow | undefined> {
    return this.db.selectFrom('invitations').selectAll().where('code_hash', '=', codeHash).where('expires_at', '>', nowIso()).executeTakeFirst();
  }

  /**
   * Takes a link out of the store in one statement, so of two concurrent uses exactly one gets the row (SQLite and
   * PostgreSQL alike). A setup link is taken only while no admin exists, checked in the same statement.
   */
  consume(codeHash: string): Promise<InvitationRow | undefined> {
    return this.db.deleteFrom('invitations')
      .where('code_hash', '=', codeHash)
      .where('expires_at', '>', nowIso())
      .where((eb) => eb.or([
        eb('user_id', 'is not', null),
        eb.not(eb.exists(eb.selectFrom('users').select('users.id').where('users.admin', '=', 1))),
      ]))
      .returningAll()
      .executeTakeFirst();
  }

  /**
   * Revokes the account's invitations when a change to it would make them act on a different account than the one
   * they were made for: a new password (set by any means), or a change of its admin flag. Deletion cascades.
   */
  async revokeOnChange(userId: number, changes: { admin?: boolean; passwordHash?: string | null }): Promise<void> {
    if (changes.passwordHash === undefined && changes.admin === undefined) return;
    let revoke = this.db.deleteFrom('invitations').where('user_id', '=', userId);
    if (changes.passwordHash === undefined) {
      const admin = changes.admin ? 1 : 0;
      revoke = revoke.where((eb) => eb.exists(eb.selectFrom('users').select('users.id').where('users.id', '=', userId).where('users.admin', '<>', admin)));
    }
    await revoke.execute();
  }

  async deleteSetupLinks(): Promise<void> {
    await this.db.deleteFrom('invitations').where('user_id', 'is', null).execute();
  }
}
