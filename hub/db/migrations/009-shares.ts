import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../database.js';
import { bumpAuthEpochOn } from './006-auth-epoch.js';

/**
 * Sharing (JupyterHub 5.0): a share lets a user, or a group's members, use another user's server; a share code is
 * a link that makes such a share for whoever accepts it. Both name the server by its owner's id and the server's
 * name, never by the owner's name: a renamed owner keeps their shares, and a new account that takes the old name
 * gets none of them. Scopes are kept bare (`access:servers`); the filter to the server is added when read.
 * A share changes what a token may do, so it moves the auth epoch like a role does.
 */
export function shares(dialect: Dialect): Migration {
  const id = dialect === 'postgres' ? sql`id bigserial primary key` : sql`id integer primary key autoincrement`;
  return {
    async up(db: Kysely<unknown>) {
      await sql`create table shares (${id},
        owner_id integer not null references users(id) on delete cascade, server_name text not null,
        user_id integer references users(id) on delete cascade, group_id integer references groups(id) on delete cascade,
        scopes text not null, created text not null,
        check ((user_id is null) <> (group_id is null)))`.execute(db);
      await sql`create unique index shares_user on shares (owner_id, server_name, user_id) where user_id is not null`.execute(db);
      await sql`create unique index shares_group on shares (owner_id, server_name, group_id) where group_id is not null`.execute(db);
      await sql`create index shares_by_user on shares (user_id)`.execute(db);
      await sql`create index shares_by_group on shares (group_id)`.execute(db);
      await sql`create table share_codes (${id},
        owner_id integer not null references users(id) on delete cascade, server_name text not null,
        code_hash text not null unique, scopes text not null, created text not null, expires_at text,
        last_exchanged_at text, exchange_count integer not null default 0)`.execute(db);
      await sql`create index share_codes_owner on share_codes (owner_id, server_name)`.execute(db);
      await bumpAuthEpochOn(db, dialect, 'shares', ['insert', 'delete', 'update of scopes, owner_id, server_name, user_id, group_id']);
    },
  };
}
