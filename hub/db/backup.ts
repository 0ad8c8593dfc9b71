import { chmodSync, existsSync } from 'node:fs';
import SQLite from 'better-sqlite3';

/**
 * A consistent copy of a SQLite state DB while the hub runs: SQLite's online backup reads every page through its
 * own locks, WAL included, where copying the file would miss what is still in `-wal` or catch a write half done.
 * The copy holds password and token hashes and sessions, so it gets the DB's own mode (owner only).
 */
export async function backupSqlite(source: string, target: string): Promise<void> {
  if (existsSync(target)) throw new Error(`${target} exists; choose a new file name`);
  const db = new SQLite(source, { readonly: true, fileMustExist: true });
  try {
    await db.backup(target);
  } finally {
    db.close();
  }
  chmodSync(target, 0o600);
}
