import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationProvider, type SqliteDatabase, type SqliteStatement } from 'kysely';
import pg from 'pg';
import { allMigrations } from './migrations/index.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';
export type Db = Kysely<Database>;

export interface OpenedDatabase {
  db: Db;
  dialect: Dialect;
  close(): Promise<void>;
}

/** A DB whose schema is newer than this code: starting would risk corrupting it. */
export class DatabaseTooNewError extends Error {
  override name = 'DatabaseTooNewError';
}

/**
 * Opens the state DB. `sqlitePath` is already resolved against the data dir; a postgres URL is used as is.
 * SQLite runs in WAL mode with foreign keys on and a busy timeout, so the CLI can read while the hub writes.
 */
export function openDatabase(target: { sqlitePath: string } | { postgresUrl: string }): OpenedDatabase {
  if ('sqlitePath' in target) {
    if (target.sqlitePath !== ':memory:') mkdirSync(dirname(target.sqlitePath), { recursive: true });
    const sqlite = new SQLite(target.sqlitePath);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('synchronous = NORMAL');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
    return { db, dialect: 'sqlite', close: () => db.destroy() };
  }
  const pool = new pg.Pool({ connectionString: target.postgresUrl, max: 10 });
  // An idle client that loses its connection must not crash the hub; the next query reconnects.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', close: () => db.destroy() };
}

/** Distinct SQL texts kept prepared: the hub issues a few dozen shapes; the bound only guards against surprises. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely asks the driver to prepare every query anew; better-sqlite3 statements are reusable, and preparing was
 * the largest single cost of an API request in the hub benchmark. Statements are kept by SQL text, oldest dropped.
 */
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => sqlite.close(),
    prepare(sql: string): SqliteStatement {
      let statement = cache.get(sql);
      if (!statement) {
        statement = sqlite.prepare(sql) as unknown as SqliteStatement;
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(sql, statement);
      }
      return statement;
    },
  };
}

/** Exported for tests that build a DB at an older migration (upgrade tests). */
export function migrator(db: Db, dialect: Dialect): Migrator {
  const provider: MigrationProvider = { getMigrations: async () => allMigrations(dialect) };
  return new Migrator({ db, provider, migrationTableName: 'labhub_migrations', migrationLockTableName: 'labhub_migrations_lock' });
}

export interface MigrationReport {
  applied: string[];
  current: string | null;
}

/** Applies pending migrations; refuses a DB that has migrations this code does not know. */
export async function migrate(db: Db, dialect: Dialect): Promise<MigrationReport> {
  const m = migrator(db, dialect);
  const known = new Set(Object.keys(allMigrations(dialect)));
  const existing = await m.getMigrations();
  // getMigrations lists only known names; executed unknown ones are found by reading the table directly.
  const executed = await executedMigrationNames(db);
  const unknown = executed.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new DatabaseTooNewError(
      `the state DB has schema version ${unknown.sort().at(-1)}, newer than this LabHub knows ` +
        `(${[...known].sort().at(-1)}); upgrade LabHub or restore a backup`,
    );
  }
  const { error, results } = await m.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  const all = [...existing.filter((x) => x.executedAt).map((x) => x.name), ...applied].sort();
  return { applied, current: all.at(-1) ?? null };
}

async function executedMigrationNames(db: Db): Promise<string[]> {
  try {
    const rows = await (db as unknown as Kysely<{ labhub_migrations: { name: string } }>)
      .selectFrom('labhub_migrations')
      .select('name')
      .execute();
    return rows.map((r) => r.name);
  } catch {
    return [];
  }
}

/** Pending migrations, for `labhub db upgrade --dry-run` style reports. */
export async function pendingMigrations(db: Db, dialect: Dialect): Promise<string[]> {
  return (await migrator(db, dialect).getMigrations()).filter((x) => !x.executedAt).map((x) => x.name);
}

/** Current time as the ISO 8601 string every timestamp column holds. */
export function nowIso(): string {
  return new Date().toISOString();
}
