import { sql, type Kysely, type Migration } from 'kysely';

/** JupyterHub 6.0's `user_info`: how a person is shown (name, initials, avatar), as their identity provider says. */
export function userInfo(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`alter table users add column user_info text`.execute(db);
    },
  };
}
