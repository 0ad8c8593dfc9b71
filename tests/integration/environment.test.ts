/**
 * The test environment is real: the services LabHub's integration tests use answer. Under CI a missing one fails
 * (requireService throws); elsewhere its checks are skipped with a warning. scripts/setup-test-env.sh installs all.
 */
import { describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { findSingleuser, requireService, singleuserVersion } from '../helpers/jupyter.js';
import { createDatabase, dropDatabase } from '../helpers/postgres.js';

const postgresUrl = inject('postgresUrl');
const hasPostgres = requireService('PostgreSQL (global setup)', postgresUrl !== null);
const jh3 = findSingleuser(3);
const hasJh3 = requireService('jupyterhub-singleuser 3.x (/usr/bin, Debian jupyterhub)', jh3 !== null);
const jh5 = findSingleuser(5);
const hasJh5 = requireService('jupyterhub-singleuser 5.x (/opt/labhub/venv-jh5)', jh5 !== null);

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('PostgreSQL', () => {
  it.skipIf(!hasPostgres)('the global cluster answers select version()', async () => {
    const rows = await query<{ version: string }>(postgresUrl!, 'select version()');
    expect(rows[0]?.version).toMatch(/^PostgreSQL 15\./);
    expect(postgresUrl).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/labhub_test$/);
  });

  it.skipIf(!hasPostgres)('createDatabase gives a fresh empty database', async () => {
    const url = await createDatabase(postgresUrl!, 'env_test_fresh');
    try {
      expect(new URL(url).pathname).toBe('/env_test_fresh');
      await query(url, 'create table t (id int)');
      const again = await createDatabase(postgresUrl!, 'env_test_fresh');
      const tables = await query<{ n: string }>(
        again,
        "select count(*) as n from information_schema.tables where table_schema = 'public'",
      );
      expect(Number(tables[0]?.n)).toBe(0);
    } finally {
      await dropDatabase(postgresUrl!, 'env_test_fresh');
    }
  });
});

describe('jupyterhub-singleuser', () => {
  it.skipIf(!hasJh3)('3.x (Debian) answers --version', () => {
    expect(jh3).toBe('/usr/bin/jupyterhub-singleuser');
    expect(singleuserVersion(jh3!)).toMatch(/^3\.\d+\.\d+/);
  });

  it.skipIf(!hasJh5)('5.x (venv) answers --version', () => {
    expect(jh5).toMatch(/\/bin\/jupyterhub-singleuser$/);
    expect(singleuserVersion(jh5!)).toMatch(/^5\.\d+\.\d+/);
  });
});
