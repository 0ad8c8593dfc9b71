import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Which identity at an identity provider (issuer + subject) a hub user is. Usernames come from a claim the
 * provider may let people change or reuse; the subject is the provider's stable id, so a second person arriving
 * with the same username claim is refused instead of taking over the account.
 */
export function auth(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`create table user_identities (issuer text not null, subject text not null,
        user_id integer not null references users(id) on delete cascade, primary key (issuer, subject))`.execute(db);
      await sql`create index user_identities_user on user_identities (user_id, issuer)`.execute(db);
    },
    async down(db: Kysely<unknown>) {
      await sql`drop table user_identities`.execute(db);
    },
  };
}
