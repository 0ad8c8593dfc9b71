import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { migrate, openDatabase, type OpenedDatabase } from '../../hub/db/database.js';
import { createStore, type Store } from '../../hub/db/index.js';
import { requireService } from './jupyter.js';
import { createDatabase } from './postgres.js';

export interface StateDbDialect {
  name: 'sqlite' | 'postgres';
  /** True when PostgreSQL is missing outside CI (under CI requireService fails the run instead). */
  skip: boolean;
  open(): Promise<{ opened: OpenedDatabase; cleanup: () => void }>;
}

/** A fresh state DB on each dialect: SQLite in a temp dir, and a new database on the run's PostgreSQL cluster. */
export function stateDbDialects(prefix: string, postgresUrl: string | null): StateDbDialect[] {
  return [
    {
      name: 'sqlite',
      skip: false,
      open: async () => {
        const dir = mkdtempSync(join(tmpdir(), `labhub-${prefix}-`));
        return { opened: openDatabase({ sqlitePath: join(dir, 'state.sqlite') }), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
      },
    },
    {
      name: 'postgres',
      skip: !requireService('PostgreSQL', postgresUrl !== null),
      open: async () => {
        const url = await createDatabase(postgresUrl!, `${prefix}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`);
        return { opened: openDatabase({ postgresUrl: url }), cleanup: () => undefined };
      },
    },
  ];
}

/** Opens and migrates a DB of that dialect for the enclosing describe block; the store is there from beforeAll on. */
export function useMigratedStore(dialect: StateDbDialect): { readonly store: Store } {
  let opened: OpenedDatabase;
  let cleanup: () => void;
  const holder = {} as { store: Store };
  beforeAll(async () => {
    ({ opened, cleanup } = await dialect.open());
    await migrate(opened.db, opened.dialect);
    holder.store = createStore(opened.db);
  });
  afterAll(async () => {
    await opened.close();
    cleanup();
  });
  return holder;
}
