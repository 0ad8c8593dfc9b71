import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../database.js';

/**
 * Every change that alters what a token may do, in the DB itself: a trigger bumps the one-row `auth_epoch` counter
 * in the same transaction as the change, whoever makes it (this hub, another hub on the same PostgreSQL, the CLI).
 * Hubs keep resolved tokens in memory only while the counter stays where it was when they read it (identity.ts).
 * Activity columns are left out on purpose: writing last_activity must not empty every hub's cache.
 *
 * SQLite has row triggers only, and one writer at a time. PostgreSQL bumps in a statement trigger that runs before
 * the statement touches any row: a transaction then always locks the counter row before the rows it changes, so
 * two concurrent transactions cannot each hold what the other waits for. The price is a bump for a statement that
 * changes no row (a sweep of expired tokens that finds none), which only costs one reload per token in use.
 */
const WATCHED: Array<{ table: string; events: string[] }> = [
  { table: 'api_tokens', events: ['delete', 'update of hashed, prefix, user_id, service_id, scopes, expires_at'] },
  { table: 'users', events: ['delete', 'update of name, admin'] },
  { table: 'services', events: ['delete', 'update of name, admin'] },
  { table: 'groups', events: ['delete', 'update of name'] },
  { table: 'user_groups', events: ['insert', 'delete', 'update'] },
  { table: 'roles', events: ['insert', 'delete', 'update of name, scopes'] },
  { table: 'role_members', events: ['insert', 'delete', 'update'] },
];

export function authEpoch(dialect: Dialect): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`create table auth_epoch (id integer primary key, epoch bigint not null)`.execute(db);
      await sql`insert into auth_epoch (id, epoch) values (1, 0)`.execute(db);
      if (dialect === 'postgres') {
        await sql`create function labhub_bump_auth_epoch() returns trigger language plpgsql as $$
          begin update auth_epoch set epoch = epoch + 1 where id = 1; return null; end $$`.execute(db);
      }
      for (const { table, events } of WATCHED) await bumpAuthEpochOn(db, dialect, table, events);
    },
  };
}

/** Triggers that bump the auth epoch on these events of `table` (later migrations watch their new tables too). */
export async function bumpAuthEpochOn(db: Kysely<unknown>, dialect: Dialect, table: string, events: string[]): Promise<void> {
  for (const event of events) {
    const name = sql.raw(`${table}_auth_epoch_${event.split(' ')[0]}`);
    await (dialect === 'postgres'
      ? sql`create trigger ${name} ${sql.raw(`before ${event} on ${table} for each statement`)} execute function labhub_bump_auth_epoch()`
      : sql`create trigger ${name} ${sql.raw(`after ${event} on ${table} for each row`)}
          begin update auth_epoch set epoch = epoch + 1 where id = 1; end`).execute(db);
  }
}
