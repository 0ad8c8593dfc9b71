import { sql, type Kysely, type Migration } from 'kysely';

/**
 * One-time links carry no power of their own: an invitation is bound to one account row (`user_id`, deleted with
 * it) and to a digest of that account's state when it was made (`account_state`), and neither kind of link says
 * whether it makes an admin any more: that comes from the account, or, for the setup link, from there being none.
 * Invitations made before this migration named their account only by username; they are dropped.
 */
export function oneTimeLinks(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`delete from invitations where username is not null`.execute(db);
      await sql`alter table invitations add column user_id integer references users(id) on delete cascade`.execute(db);
      await sql`alter table invitations add column account_state text`.execute(db);
      await sql`alter table invitations drop column username`.execute(db);
      await sql`alter table invitations drop column admin`.execute(db);
      await sql`create index invitations_user on invitations (user_id)`.execute(db);
    },
  };
}
