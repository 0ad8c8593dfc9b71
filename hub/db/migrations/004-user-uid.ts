import { sql, type Kysely, type Migration } from 'kysely';
import { newUserUid } from '../user-uid.js';

/**
 * An immutable id per account (`users.uid`) that names every per-user object from now on, and `legacy_name` for the
 * accounts that exist at upgrade time: their objects (home volume, PVC, database schema) were named from the
 * username, so they keep those names, derived from the name they had here, for as long as the account lives.
 * Accounts created after the upgrade have no legacy name and nothing of theirs can match a legacy name.
 */
export function userUid(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`alter table users add column uid text not null default ''`.execute(db);
      await sql`alter table users add column legacy_name text`.execute(db);
      const rows = await sql<{ id: number; name: string }>`select id, name from users`.execute(db);
      for (const row of rows.rows) {
        await sql`update users set uid = ${newUserUid()}, legacy_name = ${row.name} where id = ${row.id}`.execute(db);
      }
      await sql`create unique index users_uid on users (uid)`.execute(db);
    },
  };
}
