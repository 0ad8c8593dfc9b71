import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../database.js';

/** The first schema. Dialect differences are limited to the auto-increment primary key. */
export function initial(dialect: Dialect): Migration {
  const id = dialect === 'postgres' ? sql`id serial primary key` : sql`id integer primary key autoincrement`;
  return {
    async up(db: Kysely<unknown>) {
      const ddl = [
        sql`create table users (${id}, name text not null unique, admin integer not null default 0,
          created text not null, last_activity text, cookie_id text not null, password_hash text, auth_state text)`,
        sql`create table groups (${id}, name text not null unique, properties text not null default '{}')`,
        sql`create table user_groups (user_id integer not null references users(id) on delete cascade,
          group_id integer not null references groups(id) on delete cascade, primary key (user_id, group_id))`,
        sql`create index user_groups_group on user_groups (group_id)`,
        sql`create table roles (${id}, name text not null unique, description text not null default '',
          scopes text not null default '[]')`,
        sql`create table role_members (role_id integer not null references roles(id) on delete cascade,
          kind text not null, member_id integer not null, primary key (role_id, kind, member_id))`,
        sql`create index role_members_member on role_members (kind, member_id)`,
        sql`create table services (${id}, name text not null unique, admin integer not null default 0,
          url text, from_config integer not null default 0, created text not null)`,
        sql`create table api_tokens (${id}, hashed text not null unique, prefix text not null,
          user_id integer references users(id) on delete cascade,
          service_id integer references services(id) on delete cascade,
          scopes text not null default '[]', note text not null default '', created text not null, expires_at text,
          last_activity text, session_id text, oauth_client_id text)`,
        sql`create index api_tokens_prefix on api_tokens (prefix)`,
        sql`create index api_tokens_user on api_tokens (user_id)`,
        sql`create index api_tokens_session on api_tokens (session_id)`,
        sql`create table oauth_clients (identifier text primary key, description text not null default '',
          secret_hash text not null, redirect_uri text not null, allowed_scopes text not null default '[]',
          created text not null)`,
        sql`create table oauth_codes (${id}, code_hash text not null unique, client_id text not null
          references oauth_clients(identifier) on delete cascade,
          user_id integer not null references users(id) on delete cascade,
          scopes text not null default '[]', session_id text, redirect_uri text not null, expires_at text not null)`,
        sql`create table sessions (id text primary key, secret_hash text not null, user_id integer not null
          references users(id) on delete cascade, cookie_id text not null, created text not null,
          expires_at text not null)`,
        sql`create index sessions_user on sessions (user_id)`,
        sql`create table servers (${id}, user_id integer not null references users(id) on delete cascade,
          name text not null default '', status text not null default 'stopped', url text, spawner_kind text,
          spawner_state text not null default '{}', user_options text not null default '{}', started text,
          last_activity text, token_id integer, last_error text, unique (user_id, name))`,
        sql`create index servers_status on servers (status)`,
        sql`create table invitations (${id}, code_hash text not null unique, username text,
          admin integer not null default 0, created text not null, expires_at text not null)`,
      ];
      for (const statement of ddl) await statement.execute(db);
    },
  };
}
