import { nowIso, type Db } from './database.js';
import type { TokenRow } from './schema.js';

export interface NewTokenRecord {
  hashed: string;
  prefix: string;
  owner: { userId: number } | { serviceId: number };
  scopes: string[];
  note: string;
  expiresAt: string | null;
  sessionId?: string | null;
  oauthClientId?: string | null;
}

export class TokenRepository {
  constructor(private readonly db: Db) {}

  create(t: NewTokenRecord): Promise<TokenRow> {
    return this.db.insertInto('api_tokens').values({
      hashed: t.hashed,
      prefix: t.prefix,
      user_id: 'userId' in t.owner ? t.owner.userId : null,
      service_id: 'serviceId' in t.owner ? t.owner.serviceId : null,
      scopes: JSON.stringify(t.scopes),
      note: t.note,
      created: nowIso(),
      expires_at: t.expiresAt,
      last_activity: null,
      session_id: t.sessionId ?? null,
      oauth_client_id: t.oauthClientId ?? null,
    }).returningAll().executeTakeFirstOrThrow();
  }

  /** Unexpired candidates sharing a prefix; the caller verifies the hash in constant time. */
  candidates(prefix: string, now = nowIso()): Promise<TokenRow[]> {
    return this.db.selectFrom('api_tokens').selectAll().where('prefix', '=', prefix)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)])).execute();
  }

  byId(id: number): Promise<TokenRow | undefined> {
    return this.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
  }

  listForUser(userId: number): Promise<TokenRow[]> {
    return this.db.selectFrom('api_tokens').selectAll().where('user_id', '=', userId)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso())]))
      .orderBy('id').execute();
  }

  async touch(id: number, when: string): Promise<void> {
    await this.db.updateTable('api_tokens').set({ last_activity: when }).where('id', '=', id).execute();
  }

  async delete(id: number): Promise<void> {
    await this.db.deleteFrom('api_tokens').where('id', '=', id).execute();
  }

  /** Deleting an OAuth token logs the user out of that client entirely, as JupyterHub does. Returns the deleted hashes. */
  async deleteForUserAndClient(userId: number, clientId: string): Promise<string[]> {
    const deleted = await this.db.deleteFrom('api_tokens').where('user_id', '=', userId).where('oauth_client_id', '=', clientId)
      .returning('hashed').execute();
    return deleted.map((row) => row.hashed);
  }

  async deleteForClient(clientId: string): Promise<void> {
    await this.db.deleteFrom('api_tokens').where('oauth_client_id', '=', clientId).execute();
  }

  async deleteForSession(sessionId: string): Promise<void> {
    await this.db.deleteFrom('api_tokens').where('session_id', '=', sessionId).execute();
  }

  async deleteExpired(): Promise<void> {
    await this.db.deleteFrom('api_tokens').where('expires_at', '<=', nowIso()).execute();
  }

  async deleteForService(serviceId: number): Promise<void> {
    await this.db.deleteFrom('api_tokens').where('service_id', '=', serviceId).execute();
  }
}
