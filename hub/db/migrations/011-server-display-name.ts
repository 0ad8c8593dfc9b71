import { sql, type Kysely, type Migration } from 'kysely';

/** JupyterHub 6.0: a server's human-readable name, free of the rules its URL name follows. */
export function serverDisplayName(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`alter table servers add column display_name text`.execute(db);
    },
  };
}
