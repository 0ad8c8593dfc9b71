import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { nowIso, type Db } from './database.js';
import type { UserRow } from './schema.js';
import { newUserUid } from './user-uid.js';
import { InvitationRepository } from './invitations.js';
import { CompiledQueries } from './compiled-queries.js';

export type UserSort = 'id' | 'name' | 'last_activity';
/** active: some server starting, running or stopping; ready: some server running; inactive: no active server. */
export type UserStateFilter = 'active' | 'ready' | 'inactive';

export interface UserListQuery {
  offset: number;
  limit: number;
  sort: UserSort;
  descending: boolean;
  state?: UserStateFilter;
  nameFilter?: string;
  /** Restricts to these names (scope filters); undefined means no restriction. */
  names?: string[];
  /** Restricts to members of these groups (scope filters), unioned with `names`. */
  groups?: string[];
}

export class UserRepository {
  private readonly compiled: CompiledQueries;

  constructor(private readonly db: Db) {
    this.compiled = new CompiledQueries(db);
  }

  async byName(name: string): Promise<UserRow | undefined> {
    const [row] = await this.compiled.rows('userByName', [name], (n) => this.db.selectFrom('users').selectAll().where('name', '=', n));
    return row;
  }

  async byId(id: number): Promise<UserRow | undefined> {
    const [row] = await this.compiled.rows('userById', [id], (i) => this.db.selectFrom('users').selectAll().where('id', '=', i));
    return row;
  }

  /** Names of accounts by id (those that still exist). */
  async namesById(ids: number[]): Promise<Map<number, string>> {
    if (!ids.length) return new Map();
    const rows = await this.db.selectFrom('users').select(['id', 'name']).where('id', 'in', [...new Set(ids)]).execute();
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  async create(name: string, options: { admin?: boolean; passwordHash?: string | null } = {}): Promise<UserRow> {
    return this.db
      .insertInto('users')
      .values({
        name,
        admin: options.admin ? 1 : 0,
        created: nowIso(),
        last_activity: null,
        cookie_id: randomUUID(),
        password_hash: options.passwordHash ?? null,
        auth_state: null,
        uid: newUserUid(),
        legacy_name: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** Creates every name that does not exist yet, in one transaction; returns only the created rows. */
  async createMany(names: string[], admin: boolean): Promise<UserRow[]> {
    // Inside a caller's transaction (one that records the creation in the audit log) it joins that one.
    const inOne = (work: (trx: Db) => Promise<UserRow[]>) => (this.db.isTransaction ? work(this.db) : this.db.transaction().execute(work));
    return inOne(async (trx) => {
      const existing = new Set<string>();
      for (let i = 0; i < names.length; i += 500) {
        const rows = await trx.selectFrom('users').select('name').where('name', 'in', names.slice(i, i + 500)).execute();
        for (const r of rows) existing.add(r.name);
      }
      const fresh = [...new Set(names)].filter((n) => !existing.has(n));
      const created: UserRow[] = [];
      const now = nowIso();
      for (let i = 0; i < fresh.length; i += 200) {
        const values = fresh.slice(i, i + 200).map((name) => ({
          name, admin: admin ? 1 : 0, created: now, last_activity: null, cookie_id: randomUUID(),
          password_hash: null, auth_state: null, uid: newUserUid(), legacy_name: null,
        }));
        created.push(...(await trx.insertInto('users').values(values).returningAll().execute()));
      }
      return created;
    });
  }

  async update(id: number, changes: { name?: string; admin?: boolean; passwordHash?: string | null; authState?: string | null; userInfo?: string | null }): Promise<UserRow> {
    await new InvitationRepository(this.db).revokeOnChange(id, changes);
    return this.db
      .updateTable('users')
      .set({
        ...(changes.name !== undefined && { name: changes.name }),
        ...(changes.admin !== undefined && { admin: changes.admin ? 1 : 0 }),
        ...(changes.passwordHash !== undefined && { password_hash: changes.passwordHash }),
        ...(changes.authState !== undefined && { auth_state: changes.authState }),
        ...(changes.userInfo !== undefined && { user_info: changes.userInfo }),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** Moves last_activity forward only, as JupyterHub does: reports arrive out of order. */
  async touch(id: number, when: string): Promise<void> {
    await this.db
      .updateTable('users')
      .set({ last_activity: when })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_activity', 'is', null), eb('last_activity', '<', when)]))
      .execute();
  }

  /** A new cookie_id ends every browser session of the user. */
  async rotateCookieId(id: number): Promise<void> {
    await this.db.updateTable('users').set({ cookie_id: randomUUID() }).where('id', '=', id).execute();
  }

  async delete(id: number): Promise<void> {
    await this.db.deleteFrom('users').where('id', '=', id).execute();
  }

  count(): Promise<number> {
    return this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow().then((r) => Number(r.n));
  }

  countAdmins(): Promise<number> {
    return this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('admin', '=', 1)
      .executeTakeFirstOrThrow().then((r) => Number(r.n));
  }

  async list(q: UserListQuery): Promise<{ rows: UserRow[]; total: number }> {
    let query = this.db.selectFrom('users');
    if (q.names !== undefined || q.groups !== undefined) {
      const names = q.names ?? [];
      const groups = q.groups ?? [];
      query = query.where((eb) => {
        const ors = [];
        if (names.length) ors.push(eb('users.name', 'in', names));
        if (groups.length) {
          ors.push(eb('users.id', 'in', eb.selectFrom('user_groups').innerJoin('groups', 'groups.id', 'user_groups.group_id')
            .select('user_groups.user_id').where('groups.name', 'in', groups)));
        }
        return ors.length ? eb.or(ors) : sql<boolean>`1 = 0`;
      });
    }
    if (q.nameFilter) {
      const pattern = `%${q.nameFilter.replace(/[\\%_]/g, (c) => '\\' + c)}%`;
      query = query.where(sql<boolean>`lower(users.name) like lower(${pattern}) escape '\\'`);
    }
    if (q.state) {
      const statuses = q.state === 'ready' ? ['running'] : ['starting', 'running', 'stopping'];
      const operator = q.state === 'inactive' ? 'not in' : 'in';
      query = query.where((eb) =>
        eb('users.id', operator, eb.selectFrom('servers').select('servers.user_id').where('servers.status', 'in', statuses)));
    }
    const total = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const direction = q.descending ? 'desc' : 'asc';
    let ordered = query.selectAll('users');
    ordered = q.sort === 'last_activity'
      // Never active counts as least recent, as in JupyterHub: first in ascending order, last in descending.
      ? ordered.orderBy(sql`users.last_activity is not null`, direction).orderBy('users.last_activity', direction)
      : ordered.orderBy(`users.${q.sort}`, direction);
    const rows = await ordered.orderBy('users.id').offset(q.offset).limit(q.limit).execute();
    return { rows, total: Number(total.n) };
  }

  /** Group names per user id, in one query for a page of users. */
  async groupsOf(userIds: number[]): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>(userIds.map((id) => [id, []]));
    if (!userIds.length) return out;
    const rows = await this.compiled.rows('groupsOf', [userIds], (ids) => this.db.selectFrom('user_groups')
      .innerJoin('groups', 'groups.id', 'user_groups.group_id')
      .select(['user_groups.user_id', 'groups.name']).where('user_groups.user_id', 'in', ids).orderBy('groups.name'));
    for (const r of rows) out.get(r.user_id)?.push(r.name);
    return out;
  }
}
