import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../database.js';

/**
 * Credential leases (hub/credentials/). A lease outlives its user and server rows on purpose: it names them by
 * text so that a lease whose user was deleted is still found, and revoked, by the sweeper.
 */
export function credentials(dialect: Dialect): Migration {
  const id = dialect === 'postgres' ? sql`id serial primary key` : sql`id integer primary key autoincrement`;
  return {
    async up(db: Kysely<unknown>) {
      await sql`create table credential_leases (${id}, user_name text not null, server_id integer not null,
        server_name text not null, service text not null, account text not null, revoke_data text not null default '{}',
        status text not null, issued_at text not null, expires_at text not null, revoked_at text,
        revoke_failures integer not null default 0, last_error text)`.execute(db);
      await sql`create index credential_leases_status on credential_leases (status)`.execute(db);
      await sql`create index credential_leases_server on credential_leases (server_id)`.execute(db);
      await sql`create index credential_leases_user on credential_leases (user_name)`.execute(db);
    },
  };
}
