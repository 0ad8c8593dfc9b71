import type { Db } from './database.js';
import type { AuditEventRow } from './schema.js';

export interface AuditInsert {
  time: string;
  action: string;
  actorKind: string;
  actorName: string | null;
  actorUid: string | null;
  targetKind: string | null;
  targetName: string | null;
  targetUid: string | null;
  source: string | null;
  details: string;
}

export interface AuditQuery {
  /** Records where this user is the actor or the target. */
  user?: string;
  /** Only records whose actor or target is one of these users, or whose target is one of these groups. */
  within?: { users: string[]; groups: string[] };
  /** Action prefix of lowercase words and dots (the caller validates): `login` matches `login.success`. */
  kindPrefix?: string;
  since?: string;
  until?: string;
  offset: number;
  limit: number;
}

/** The append-only audit log (migration 008). Callers go through hub/audit/record.ts, which scrubs. */
export class AuditRepository {
  constructor(private readonly db: Db) {}

  async insert(e: AuditInsert): Promise<void> {
    await this.db.insertInto('audit_events').values({
      time: e.time, action: e.action, actor_kind: e.actorKind, actor_name: e.actorName, actor_uid: e.actorUid,
      target_kind: e.targetKind, target_name: e.targetName, target_uid: e.targetUid, source: e.source, details: e.details,
    }).execute();
  }

  /** Newest first. */
  async list(q: AuditQuery): Promise<{ rows: AuditEventRow[]; total: number }> {
    let base = this.db.selectFrom('audit_events');
    if (q.user !== undefined) {
      const user = q.user;
      base = base.where((eb) => eb.or([eb('actor_name', '=', user), eb.and([eb('target_kind', '=', 'user'), eb('target_name', '=', user)])]));
    }
    if (q.within) {
      const { users, groups } = q.within;
      if (!users.length && !groups.length) return { rows: [], total: 0 };
      base = base.where((eb) => eb.or([
        ...(users.length ? [eb.and([eb('actor_kind', '=', 'user'), eb('actor_name', 'in', users)]),
          eb.and([eb('target_kind', '=', 'user'), eb('target_name', 'in', users)])] : []),
        ...(groups.length ? [eb.and([eb('target_kind', '=', 'group'), eb('target_name', 'in', groups)])] : []),
      ]));
    }
    if (q.kindPrefix !== undefined) {
      const prefix = q.kindPrefix;
      base = base.where((eb) => eb.or([eb('action', '=', prefix), eb('action', 'like', `${prefix}.%`)]));
    }
    if (q.since !== undefined) base = base.where('time', '>=', q.since);
    if (q.until !== undefined) base = base.where('time', '<', q.until);
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy('id', 'desc').offset(q.offset).limit(q.limit).execute(),
      base.select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { rows: rows.map((r) => ({ ...r, id: Number(r.id) })), total: Number(count.n) };
  }

  /** Retention: removes records older than `before`; the only way a record ever leaves the table. */
  async pruneBefore(before: string): Promise<number> {
    const result = await this.db.deleteFrom('audit_events').where('time', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
