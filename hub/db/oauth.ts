import { nowIso, type Db } from './database.js';
import type { OAuthClientRow, OAuthCodeRow } from './schema.js';

export class OAuthRepository {
  constructor(private readonly db: Db) {}

  client(identifier: string): Promise<OAuthClientRow | undefined> {
    return this.db.selectFrom('oauth_clients').selectAll().where('identifier', '=', identifier).executeTakeFirst();
  }

  async upsertClient(c: Omit<OAuthClientRow, 'created'>): Promise<void> {
    await this.db.insertInto('oauth_clients').values({ ...c, created: nowIso() })
      .onConflict((oc) => oc.column('identifier').doUpdateSet({
        description: c.description, secret_hash: c.secret_hash, redirect_uri: c.redirect_uri, allowed_scopes: c.allowed_scopes,
      })).execute();
  }

  async deleteClient(identifier: string): Promise<void> {
    await this.db.deleteFrom('oauth_clients').where('identifier', '=', identifier).execute();
  }

  /** Clients that send users back to this callback: a server's, whatever id it was registered under. */
  clientIdsWithRedirect(redirectUri: string): Promise<string[]> {
    return this.db.selectFrom('oauth_clients').select('identifier').where('redirect_uri', '=', redirectUri).execute()
      .then((rows) => rows.map((r) => r.identifier));
  }

  allClientIds(): Promise<string[]> {
    return this.db.selectFrom('oauth_clients').select('identifier').execute().then((rows) => rows.map((r) => r.identifier));
  }

  async createCode(code: Omit<OAuthCodeRow, 'id'>): Promise<void> {
    await this.db.insertInto('oauth_codes').values(code).execute();
  }

  /**
   * Takes a code out of the store: codes are single use, so reading and deleting are one statement, and of two
   * concurrent exchanges exactly one gets the row (a read then a delete let both through on PostgreSQL).
   */
  async consumeCode(codeHash: string): Promise<OAuthCodeRow | undefined> {
    const row = await this.db.deleteFrom('oauth_codes').where('code_hash', '=', codeHash).returningAll().executeTakeFirst();
    return row && row.expires_at > nowIso() ? row : undefined;
  }

  async deleteExpiredCodes(): Promise<void> {
    await this.db.deleteFrom('oauth_codes').where('expires_at', '<=', nowIso()).execute();
  }
}
