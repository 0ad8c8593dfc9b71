import type { Db } from './database.js';
import type { GroupRow } from './schema.js';

export class GroupRepository {
  constructor(private readonly db: Db) {}

  byName(name: string): Promise<GroupRow | undefined> {
    return this.db.selectFrom('groups').selectAll().where('name', '=', name).executeTakeFirst();
  }

  /** Names of groups by id (those that still exist). */
  async namesById(ids: number[]): Promise<Map<number, string>> {
    if (!ids.length) return new Map();
    const rows = await this.db.selectFrom('groups').select(['id', 'name']).where('id', 'in', [...new Set(ids)]).execute();
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  async list(offset: number, limit: number, names?: string[]): Promise<{ rows: GroupRow[]; total: number }> {
    let q = this.db.selectFrom('groups');
    if (names !== undefined) q = names.length ? q.where('name', 'in', names) : q.where('id', '<', 0);
    const total = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q.selectAll().orderBy('name').offset(offset).limit(limit).execute();
    return { rows, total: Number(total.n) };
  }

  create(name: string, properties: Record<string, unknown> = {}): Promise<GroupRow> {
    return this.db.insertInto('groups').values({ name, properties: JSON.stringify(properties) }).returningAll().executeTakeFirstOrThrow();
  }

  async setProperties(id: number, properties: Record<string, unknown>): Promise<void> {
    await this.db.updateTable('groups').set({ properties: JSON.stringify(properties) }).where('id', '=', id).execute();
  }

  async delete(id: number): Promise<void> {
    await this.db.deleteFrom('groups').where('id', '=', id).execute();
  }

  /** Member names per group id, in one query. */
  async membersOf(groupIds: number[]): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>(groupIds.map((id) => [id, []]));
    if (!groupIds.length) return out;
    const rows = await this.db.selectFrom('user_groups').innerJoin('users', 'users.id', 'user_groups.user_id')
      .select(['user_groups.group_id', 'users.name']).where('user_groups.group_id', 'in', groupIds).orderBy('users.name').execute();
    for (const r of rows) out.get(r.group_id)?.push(r.name);
    return out;
  }

  async memberIds(groupId: number): Promise<number[]> {
    const rows = await this.db.selectFrom('user_groups').select('user_id').where('group_id', '=', groupId).execute();
    return rows.map((r) => r.user_id);
  }

  async addMembers(groupId: number, userIds: number[]): Promise<void> {
    if (!userIds.length) return;
    await this.db.insertInto('user_groups').values(userIds.map((user_id) => ({ user_id, group_id: groupId })))
      .onConflict((oc) => oc.doNothing()).execute();
  }

  async removeMembers(groupId: number, userIds: number[]): Promise<void> {
    if (!userIds.length) return;
    await this.db.deleteFrom('user_groups').where('group_id', '=', groupId).where('user_id', 'in', userIds).execute();
  }

  /** A user's groups with their parsed properties (a class's settings, such as credential policy overrides). */
  async propertiesOfUser(userId: number): Promise<Array<{ name: string; properties: Record<string, unknown> }>> {
    const rows = await this.db.selectFrom('user_groups').innerJoin('groups', 'groups.id', 'user_groups.group_id')
      .select(['groups.name', 'groups.properties']).where('user_groups.user_id', '=', userId).orderBy('groups.name').execute();
    return rows.map((r) => ({ name: r.name, properties: JSON.parse(r.properties) as Record<string, unknown> }));
  }

  /** Replaces a user's groups with exactly these (existing) group ids; call it inside `Store.transaction`. */
  async setUserGroups(userId: number, groupIds: number[]): Promise<void> {
    await this.db.deleteFrom('user_groups').where('user_id', '=', userId).execute();
    if (groupIds.length) await this.db.insertInto('user_groups').values(groupIds.map((group_id) => ({ user_id: userId, group_id }))).execute();
  }

  /** A user's groups with their properties, by name: the classes whose profiles the user may start. */
  ofUser(userId: number): Promise<GroupRow[]> {
    return this.db.selectFrom('user_groups').innerJoin('groups', 'groups.id', 'user_groups.group_id')
      .selectAll('groups').where('user_groups.user_id', '=', userId).orderBy('groups.name').execute();
  }

  async namesOfUser(userId: number): Promise<string[]> {
    const rows = await this.db.selectFrom('user_groups').innerJoin('groups', 'groups.id', 'user_groups.group_id')
      .select('groups.name').where('user_groups.user_id', '=', userId).orderBy('groups.name').execute();
    return rows.map((r) => r.name);
  }
}
