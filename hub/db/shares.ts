import { nowIso, type Db } from './database.js';
import { CompiledQueries } from './compiled-queries.js';

/** A share with the names it is shown by (current names, looked up by id). */
export interface ShareView {
  id: number;
  owner_id: number;
  owner_name: string;
  server_name: string;
  user_name: string | null;
  group_name: string | null;
  scopes: string[];
  created: string;
}

export interface ShareCodeView {
  id: number;
  owner_name: string;
  server_name: string;
  scopes: string[];
  created: string;
  expires_at: string | null;
  last_exchanged_at: string | null;
  exchange_count: number;
}

export type ShareTarget = { userId: number } | { groupId: number };

export interface ShareFilter {
  ownerId?: number;
  serverName?: string;
  userId?: number;
  groupId?: number;
}

export class ShareRepository {
  private readonly compiled: CompiledQueries;

  constructor(private readonly db: Db) {
    this.compiled = new CompiledQueries(db);
  }

  private views() {
    return this.db.selectFrom('shares')
      .innerJoin('users as owner', 'owner.id', 'shares.owner_id')
      .leftJoin('users as recipient', 'recipient.id', 'shares.user_id')
      .leftJoin('groups', 'groups.id', 'shares.group_id')
      .select(['shares.id', 'shares.owner_id', 'owner.name as owner_name', 'shares.server_name', 'recipient.name as user_name',
        'groups.name as group_name', 'shares.scopes', 'shares.created']);
  }

  private filtered(filter: ShareFilter) {
    let q = this.views();
    if (filter.ownerId !== undefined) q = q.where('shares.owner_id', '=', filter.ownerId);
    if (filter.serverName !== undefined) q = q.where('shares.server_name', '=', filter.serverName);
    if (filter.userId !== undefined) q = q.where('shares.user_id', '=', filter.userId);
    if (filter.groupId !== undefined) q = q.where('shares.group_id', '=', filter.groupId);
    return q;
  }

  async list(filter: ShareFilter, offset = 0, limit = 1_000_000): Promise<{ rows: ShareView[]; total: number }> {
    const rows = await this.filtered(filter).orderBy('shares.id').offset(offset).limit(limit).execute();
    const total = await this.count(filter);
    return { rows: rows.map(view), total };
  }

  private async count(filter: ShareFilter): Promise<number> {
    let q = this.db.selectFrom('shares').select((eb) => eb.fn.countAll<number>().as('n'));
    if (filter.ownerId !== undefined) q = q.where('owner_id', '=', filter.ownerId);
    if (filter.serverName !== undefined) q = q.where('server_name', '=', filter.serverName);
    if (filter.userId !== undefined) q = q.where('user_id', '=', filter.userId);
    if (filter.groupId !== undefined) q = q.where('group_id', '=', filter.groupId);
    return Number((await q.executeTakeFirstOrThrow()).n);
  }

  async one(ownerId: number, serverName: string, target: ShareTarget): Promise<ShareView | undefined> {
    const [row] = (await this.list({ ownerId, serverName, ...target }, 0, 1)).rows;
    return row;
  }

  /** Grants `scopes` (bare) on top of what the share already holds; creates it when there is none. */
  async grant(ownerId: number, serverName: string, target: ShareTarget, scopes: string[]): Promise<ShareView> {
    const existing = await this.one(ownerId, serverName, target);
    if (existing) {
      const merged = [...new Set([...existing.scopes, ...scopes])].sort();
      await this.db.updateTable('shares').set({ scopes: JSON.stringify(merged) }).where('id', '=', existing.id).execute();
    } else {
      await this.db.insertInto('shares').values({
        owner_id: ownerId, server_name: serverName, user_id: 'userId' in target ? target.userId : null,
        group_id: 'groupId' in target ? target.groupId : null, scopes: JSON.stringify([...new Set(scopes)].sort()), created: nowIso(),
      }).execute();
    }
    return (await this.one(ownerId, serverName, target))!;
  }

  /** Takes `scopes` (all when null) away from a share; deletes it when none remain. The share left, if any. */
  async revoke(share: ShareView, scopes: string[] | null): Promise<ShareView | null> {
    const remaining = scopes === null ? [] : share.scopes.filter((s) => !scopes.includes(s));
    if (remaining.length === 0) {
      await this.db.deleteFrom('shares').where('id', '=', share.id).execute();
      return null;
    }
    await this.db.updateTable('shares').set({ scopes: JSON.stringify(remaining) }).where('id', '=', share.id).execute();
    return { ...share, scopes: remaining };
  }

  async deleteForServer(ownerId: number, serverName: string): Promise<number> {
    const result = await this.db.deleteFrom('shares').where('owner_id', '=', ownerId).where('server_name', '=', serverName).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** A renamed server keeps its shares and links. */
  async renameServer(ownerId: number, from: string, to: string): Promise<void> {
    await this.db.updateTable('shares').set({ server_name: to }).where('owner_id', '=', ownerId).where('server_name', '=', from).execute();
    await this.db.updateTable('share_codes').set({ server_name: to }).where('owner_id', '=', ownerId).where('server_name', '=', from).execute();
  }

  /** Every share a user holds, directly or through a group they are in. */
  async heldBy(userId: number): Promise<ShareView[]> {
    const rows = await this.compiled.rows('sharesHeldBy', [userId, userId], (direct, viaGroups) => this.views().where((eb) => eb.or([
      eb('shares.user_id', '=', direct),
      eb('shares.group_id', 'in', eb.selectFrom('user_groups').select('group_id').where('user_id', '=', viaGroups)),
    ])).orderBy('shares.id'));
    return rows.map(view);
  }

  async createCode(c: { ownerId: number; serverName: string; codeHash: string; scopes: string[]; expiresAt: string | null }): Promise<ShareCodeView> {
    const row = await this.db.insertInto('share_codes').values({
      owner_id: c.ownerId, server_name: c.serverName, code_hash: c.codeHash, scopes: JSON.stringify(c.scopes), created: nowIso(), expires_at: c.expiresAt,
    }).returning('id').executeTakeFirstOrThrow();
    return (await this.code({ id: Number(row.id) }))!;
  }

  private codeViews() {
    return this.db.selectFrom('share_codes').innerJoin('users as owner', 'owner.id', 'share_codes.owner_id')
      .select(['share_codes.id', 'owner.name as owner_name', 'share_codes.server_name', 'share_codes.scopes', 'share_codes.created',
        'share_codes.expires_at', 'share_codes.last_exchanged_at', 'share_codes.exchange_count'])
      .where((eb) => eb.or([eb('share_codes.expires_at', 'is', null), eb('share_codes.expires_at', '>', nowIso())]));
  }

  /** A live (unexpired) code by id or by the hash of the code itself. */
  async code(by: { id: number } | { codeHash: string }): Promise<ShareCodeView | undefined> {
    const q = 'id' in by ? this.codeViews().where('share_codes.id', '=', by.id) : this.codeViews().where('share_codes.code_hash', '=', by.codeHash);
    const row = await q.executeTakeFirst();
    return row && codeView(row);
  }

  async codes(ownerId: number, serverName: string | undefined, offset: number, limit: number): Promise<{ rows: ShareCodeView[]; total: number }> {
    let q = this.codeViews().where('share_codes.owner_id', '=', ownerId);
    if (serverName !== undefined) q = q.where('share_codes.server_name', '=', serverName);
    const all = await q.orderBy('share_codes.id').execute();
    return { rows: all.slice(offset, offset + limit).map(codeView), total: all.length };
  }

  async deleteCode(id: number): Promise<void> {
    await this.db.deleteFrom('share_codes').where('id', '=', id).execute();
  }

  async deleteCodesFor(ownerId: number, serverName: string): Promise<void> {
    await this.db.deleteFrom('share_codes').where('owner_id', '=', ownerId).where('server_name', '=', serverName).execute();
  }

  async codeExchanged(id: number): Promise<void> {
    await this.db.updateTable('share_codes').set((eb) => ({ exchange_count: eb('exchange_count', '+', 1), last_exchanged_at: nowIso() }))
      .where('id', '=', id).execute();
  }
}

type Raw = Omit<ShareView, 'scopes'> & { scopes: string };

function view(row: Raw): ShareView {
  return { ...row, id: Number(row.id), owner_id: Number(row.owner_id), scopes: JSON.parse(row.scopes) as string[] };
}

function codeView(row: Omit<ShareCodeView, 'scopes'> & { scopes: string }): ShareCodeView {
  return { ...row, id: Number(row.id), exchange_count: Number(row.exchange_count), scopes: JSON.parse(row.scopes) as string[] };
}
