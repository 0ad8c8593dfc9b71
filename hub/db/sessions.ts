import { nowIso, type Db } from './database.js';
import type { SessionRow } from './schema.js';
import { CompiledQueries } from './compiled-queries.js';

export class SessionRepository {
  private readonly compiled: CompiledQueries;

  constructor(private readonly db: Db) {
    this.compiled = new CompiledQueries(db);
  }

  async create(row: SessionRow): Promise<void> {
    await this.db.insertInto('sessions').values(row).execute();
  }

  async byId(id: string): Promise<SessionRow | undefined> {
    const [row] = await this.compiled.rows('sessionById', [id, nowIso()], (i, now) => this.db.selectFrom('sessions').selectAll()
      .where('id', '=', i).where('expires_at', '>', now));
    return row;
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id', '=', id).execute();
  }

  async deleteForUser(userId: number): Promise<void> {
    await this.db.deleteFrom('sessions').where('user_id', '=', userId).execute();
  }

  async deleteExpired(): Promise<void> {
    await this.db.deleteFrom('sessions').where('expires_at', '<=', nowIso()).execute();
  }
}
