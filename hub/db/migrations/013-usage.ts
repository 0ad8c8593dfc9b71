import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from '../database.js';

/**
 * Usage accounting and quotas (docs/usage.md). `server_usage` holds one row per server run, from ready to stopped,
 * with what the spawner reserved and what it measured; sums over a window are computed from these rows, never kept.
 * Rows name the account and the class by id, so a renamed user keeps their history and a new account or class
 * that takes an old name starts from nothing. `quotas` are set by admins only, per user or per class.
 */
export function usage(dialect: Dialect): Migration {
  const id = dialect === 'postgres' ? sql`id bigserial primary key` : sql`id integer primary key autoincrement`;
  return {
    async up(db: Kysely<unknown>) {
      await sql`create table server_usage (${id},
        user_id integer not null references users(id) on delete cascade,
        server_id integer not null, server_name text not null,
        class_id integer references groups(id) on delete set null, profile text, spawner text not null,
        cpu_request double precision, mem_request double precision, gpu_request integer not null default 0,
        started_at text not null, stopped_at text,
        cpu_seconds double precision, mem_bytes double precision, mem_peak double precision, mem_byte_seconds double precision not null default 0, sampled_at text,
        quota_warned_at text)`.execute(db);
      await sql`create index server_usage_user on server_usage (user_id, started_at)`.execute(db);
      await sql`create index server_usage_class on server_usage (class_id, started_at)`.execute(db);
      await sql`create index server_usage_open on server_usage (server_id) where stopped_at is null`.execute(db);
      await sql`create table quotas (${id},
        user_id integer references users(id) on delete cascade, group_id integer references groups(id) on delete cascade,
        window_hours double precision not null, server_hours double precision, cpu_hours double precision, memory_gib_hours double precision, gpu_hours double precision, max_servers integer,
        updated text not null,
        check ((user_id is null) <> (group_id is null)))`.execute(db);
      await sql`create unique index quotas_user on quotas (user_id) where user_id is not null`.execute(db);
      await sql`create unique index quotas_group on quotas (group_id) where group_id is not null`.execute(db);
      await sql`create table home_storage (user_id integer primary key references users(id) on delete cascade,
        bytes double precision not null, measured_at text not null)`.execute(db);
    },
  };
}
