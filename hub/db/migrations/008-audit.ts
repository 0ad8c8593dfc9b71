import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../database.js';

/**
 * The audit log (hub/audit/). Append-only: a trigger refuses every UPDATE in both dialects, so not even a bug in
 * the hub can rewrite history; rows leave only by retention pruning (a DELETE of rows older than the cut-off).
 * Actors and targets are kept by kind, name and uid as text, not by foreign key: a record outlives the user it names.
 */
export function audit(dialect: Dialect): Migration {
  const id = dialect === 'postgres' ? sql`id bigserial primary key` : sql`id integer primary key autoincrement`;
  return {
    async up(db: Kysely<unknown>) {
      await sql`create table audit_events (${id}, time text not null, action text not null,
        actor_kind text not null, actor_name text, actor_uid text,
        target_kind text, target_name text, target_uid text,
        source text, details text not null default '{}')`.execute(db);
      await sql`create index audit_events_time on audit_events (time)`.execute(db);
      await sql`create index audit_events_action on audit_events (action)`.execute(db);
      await sql`create index audit_events_actor on audit_events (actor_name)`.execute(db);
      await sql`create index audit_events_target on audit_events (target_name)`.execute(db);
      if (dialect === 'postgres') {
        await sql`create function labhub_audit_append_only() returns trigger language plpgsql as $$
          begin raise exception 'audit_events is append-only'; end $$`.execute(db);
        await sql`create trigger audit_events_no_update before update on audit_events
          for each row execute function labhub_audit_append_only()`.execute(db);
      } else {
        await sql`create trigger audit_events_no_update before update on audit_events
          begin select raise(abort, 'audit_events is append-only'); end`.execute(db);
      }
    },
  };
}
