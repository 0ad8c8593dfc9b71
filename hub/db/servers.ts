import { nowIso, type Db } from './database.js';
import type { ServerRow } from './schema.js';
import { CompiledQueries } from './compiled-queries.js';

export type ServerStatus = 'stopped' | 'starting' | 'running' | 'stopping';

export interface ServerWithOwner extends ServerRow {
  user_name: string;
  user_uid: string;
  user_legacy_name: string | null;
}

/**
 * Servers and their lifecycle status. Every transition is written here before the side effect it
 * describes, so a hub killed at any moment finds enough on restart to finish or undo it.
 */
export class ServerRepository {
  private readonly compiled: CompiledQueries;

  constructor(private readonly db: Db) {
    this.compiled = new CompiledQueries(db);
  }

  get(userId: number, name: string): Promise<ServerRow | undefined> {
    return this.db.selectFrom('servers').selectAll().where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
  }

  byId(id: number): Promise<ServerRow | undefined> {
    return this.db.selectFrom('servers').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Servers of several users in one query (for a page of the users list). */
  async forUsers(userIds: number[]): Promise<Map<number, ServerRow[]>> {
    const out = new Map<number, ServerRow[]>(userIds.map((id) => [id, []]));
    if (!userIds.length) return out;
    const rows = await this.compiled.rows('serversOf', [userIds], (ids) => this.db.selectFrom('servers').selectAll().where('user_id', 'in', ids).orderBy('name'));
    for (const r of rows) out.get(r.user_id)?.push(r);
    return out;
  }

  /** Every server not stopped, with its owner's name and uid: what the hub reconciles at start. */
  active(): Promise<ServerWithOwner[]> {
    return this.db.selectFrom('servers').innerJoin('users', 'users.id', 'servers.user_id')
      .selectAll('servers').select(['users.name as user_name', 'users.uid as user_uid', 'users.legacy_name as user_legacy_name'])
      .where('servers.status', '!=', 'stopped').execute();
  }

  countByStatus(status: ServerStatus): Promise<number> {
    return this.db.selectFrom('servers').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', status)
      .executeTakeFirstOrThrow().then((r) => Number(r.n));
  }

  countNamed(userId: number): Promise<number> {
    return this.db.selectFrom('servers').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId).where('name', '!=', '').executeTakeFirstOrThrow().then((r) => Number(r.n));
  }

  /**
   * Marks a server as starting, creating its row if needed. Returns null when it was not stopped:
   * the status check and the write are one statement, so two concurrent starts cannot both win.
   */
  /** A stopped server that does not exist yet (JupyterHub 6.0's PUT); null when the name is taken. */
  async create(userId: number, name: string, userOptions: Record<string, unknown>, displayName: string | null): Promise<ServerRow | null> {
    const row = await this.db.insertInto('servers').values({
      user_id: userId, name, status: 'stopped', url: null, spawner_kind: null, spawner_state: '{}', user_options: JSON.stringify(userOptions),
      started: null, last_activity: null, token_id: null, last_error: null, display_name: displayName,
    }).onConflict((oc) => oc.columns(['user_id', 'name']).doNothing()).returningAll().executeTakeFirst();
    return row ?? null;
  }

  /** Changes a stopped server (JupyterHub 6.0's PATCH); null when it is not stopped (or gone). */
  async modifyStopped(id: number, change: { name?: string; userOptions?: Record<string, unknown>; displayName?: string | null }): Promise<ServerRow | null> {
    const row = await this.db.updateTable('servers').set({
      ...(change.name !== undefined && { name: change.name }),
      ...(change.userOptions !== undefined && { user_options: JSON.stringify(change.userOptions) }),
      ...(change.displayName !== undefined && { display_name: change.displayName }),
    }).where('id', '=', id).where('status', '=', 'stopped').returningAll().executeTakeFirst();
    return row ?? null;
  }

  async beginStart(userId: number, name: string, userOptions: Record<string, unknown>, spawnerKind: string): Promise<ServerRow | null> {
    await this.db.insertInto('servers').values({
      user_id: userId, name, status: 'stopped', url: null, spawner_kind: null, spawner_state: '{}', user_options: '{}',
      started: null, last_activity: null, token_id: null, last_error: null, display_name: null,
    }).onConflict((oc) => oc.columns(['user_id', 'name']).doNothing()).execute();
    const row = await this.db.updateTable('servers')
      .set({ status: 'starting', user_options: JSON.stringify(userOptions), spawner_kind: spawnerKind, url: null,
        spawner_state: '{}', last_error: null, started: null, token_id: null })
      .where('user_id', '=', userId).where('name', '=', name).where('status', '=', 'stopped')
      .returningAll().executeTakeFirst();
    return row ?? null;
  }

  async setToken(id: number, tokenId: number): Promise<void> {
    await this.db.updateTable('servers').set({ token_id: tokenId }).where('id', '=', id).execute();
  }

  async saveSpawnerState(id: number, state: Record<string, unknown>): Promise<void> {
    await this.db.updateTable('servers').set({ spawner_state: JSON.stringify(state) }).where('id', '=', id).execute();
  }

  async markRunning(id: number, url: string, state: Record<string, unknown>): Promise<void> {
    const now = nowIso();
    await this.db.updateTable('servers').set({ status: 'running', url, spawner_state: JSON.stringify(state), started: now, last_activity: now })
      .where('id', '=', id).execute();
  }

  async markStopping(id: number): Promise<void> {
    await this.db.updateTable('servers').set({ status: 'stopping' }).where('id', '=', id).execute();
  }

  async markStopped(id: number, error: string | null = null): Promise<void> {
    await this.db.updateTable('servers')
      .set({ status: 'stopped', url: null, spawner_state: '{}', token_id: null, started: null, last_error: error })
      .where('id', '=', id).execute();
  }

  async touch(id: number, when: string): Promise<void> {
    await this.db.updateTable('servers').set({ last_activity: when }).where('id', '=', id)
      .where((eb) => eb.or([eb('last_activity', 'is', null), eb('last_activity', '<', when)])).execute();
  }

  async delete(id: number): Promise<void> {
    await this.db.deleteFrom('servers').where('id', '=', id).execute();
  }
}
