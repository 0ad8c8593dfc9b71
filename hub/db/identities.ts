import type { Db } from './database.js';

/** user_identities: which issuer + subject each hub user is. */
export class IdentityRepository {
  constructor(private readonly db: Db) {}

  async userOf(issuer: string, subject: string): Promise<number | undefined> {
    const row = await this.db.selectFrom('user_identities').select('user_id').where('issuer', '=', issuer).where('subject', '=', subject).executeTakeFirst();
    return row?.user_id;
  }

  async subjectOf(userId: number, issuer: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('user_identities').select('subject').where('user_id', '=', userId).where('issuer', '=', issuer).executeTakeFirst();
    return row?.subject;
  }

  async bind(issuer: string, subject: string, userId: number): Promise<void> {
    // Two first logins of one person at once bind the same pair; the second insert has nothing to add.
    await this.db.insertInto('user_identities').values({ issuer, subject, user_id: userId }).onConflict((oc) => oc.doNothing()).execute();
  }
}
