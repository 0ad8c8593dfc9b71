import SQLite from 'better-sqlite3';
import type { AccountOwner } from '../../hub/credentials/names.js';
import { newUserUid } from '../../hub/db/user-uid.js';

const uids = new Map<string, string>();

/** A spawner test's account: one uid per name for the whole run, as the hub's users table gives, from the product's generator. */
export function accountKey(name: string): { uid: string } {
  if (!uids.has(name)) uids.set(name, newUserUid());
  return { uid: uids.get(name)! };
}

/** The account as a test hub's state DB holds it (hub.sqlitePath): what per-user names derive from. */
export function accountOf(hub: { sqlitePath: string }, name: string): AccountOwner {
  const sqlite = new SQLite(hub.sqlitePath, { readonly: true });
  const row = sqlite.prepare('select name, uid, legacy_name from users where name = ?').get(name) as { name: string; uid: string; legacy_name: string | null };
  sqlite.close();
  return { name: row.name, uid: row.uid, legacyName: row.legacy_name };
}
