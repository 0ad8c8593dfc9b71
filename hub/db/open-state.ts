import { chmodSync, mkdirSync } from 'node:fs';
import { dataPath } from '../config/load.js';
import type { LabHubConfig } from '../config/schema.js';
import { migrate, openDatabase, type OpenedDatabase } from './database.js';

/** The SQLite file a config names (relative paths are under data_dir), or null for PostgreSQL. */
export function sqlitePathOf(config: LabHubConfig): string | null {
  return config.db_url.startsWith('sqlite:') ? dataPath(config, config.db_url.slice('sqlite:'.length)) : null;
}

/** Opens the state DB named by the config and brings its schema up to date. */
export async function openStateDatabase(config: LabHubConfig): Promise<OpenedDatabase> {
  // The data dir holds password and token hashes, sessions and secrets: only the hub's user may read it.
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  const sqlitePath = sqlitePathOf(config);
  const opened = sqlitePath ? openDatabase({ sqlitePath }) : openDatabase({ postgresUrl: config.db_url });
  if (sqlitePath && sqlitePath !== ':memory:') chmodSync(sqlitePath, 0o600);
  try {
    await migrate(opened.db, opened.dialect);
  } catch (err) {
    await opened.close();
    throw err;
  }
  return opened;
}
