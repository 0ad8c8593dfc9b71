import { nowIso, type Db } from './database.js';
import type { ServiceRow } from './schema.js';

export class ServiceRepository {
  constructor(private readonly db: Db) {}

  byName(name: string): Promise<ServiceRow | undefined> {
    return this.db.selectFrom('services').selectAll().where('name', '=', name).executeTakeFirst();
  }

  byId(id: number): Promise<ServiceRow | undefined> {
    return this.db.selectFrom('services').selectAll().where('id', '=', id).executeTakeFirst();
  }

  list(): Promise<ServiceRow[]> {
    return this.db.selectFrom('services').selectAll().orderBy('name').execute();
  }

  async upsert(s: { name: string; admin: boolean; url: string | null }): Promise<ServiceRow> {
    return this.db.insertInto('services').values({ name: s.name, admin: s.admin ? 1 : 0, url: s.url, from_config: 1, created: nowIso() })
      .onConflict((oc) => oc.column('name').doUpdateSet({ admin: s.admin ? 1 : 0, url: s.url, from_config: 1 }))
      .returningAll().executeTakeFirstOrThrow();
  }

  async deleteExcept(names: string[]): Promise<void> {
    let q = this.db.deleteFrom('services');
    if (names.length) q = q.where('name', 'not in', names);
    await q.execute();
  }
}
