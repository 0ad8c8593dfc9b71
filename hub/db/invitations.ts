import { nowIso, type Db } from './database.js';
import type { InvitationRow } from './schema.js';

/** One-time links (first-admin setup, invitations). Only a hash of each code is stored. */
export class InvitationRepository {
  constructor(private readonly db: Db) {}

  async create(i: { codeHash: string; username: string | null; admin: boolean; expiresAt: string }): Promise<void> {
    await this.db.insertInto('invitations').values({
      code_hash: i.codeHash, username: i.username, admin: i.admin ? 1 : 0, created: nowIso(), expires_at: i.expiresAt,
    }).execute();
  }

  valid(codeHash: string): Promise<InvitationRow | undefined> {
    return this.db.selectFrom('invitations').selectAll().where('code_hash', '=', codeHash).where('expires_at', '>', nowIso()).executeTakeFirst();
  }

  /** Single use: the row is deleted in the same transaction as it is read. */
  async consume(codeHash: string): Promise<InvitationRow | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('invitations').selectAll().where('code_hash', '=', codeHash)
        .where('expires_at', '>', nowIso()).executeTakeFirst();
      if (row) await trx.deleteFrom('invitations').where('id', '=', row.id).execute();
      return row;
    });
  }

  /** Ends every link made for an account (its password is set another way now). */
  async deleteForUser(username: string): Promise<void> {
    await this.db.deleteFrom('invitations').where('username', '=', username).execute();
  }

  async deleteSetupLinks(): Promise<void> {
    await this.db.deleteFrom('invitations').where('username', 'is', null).execute();
  }
}
