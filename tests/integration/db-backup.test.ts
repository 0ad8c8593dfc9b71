import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, HubProcess, runLabhub } from '../helpers/hub.js';

/** `labhub db backup`: a consistent copy of the SQLite state DB taken while the hub runs and writes. */
describe('labhub db backup with the hub running', () => {
  const hub = new HubProcess();
  const dir = mkdtempSync(join(tmpdir(), 'labhub-backup-'));
  let token = '';

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'root', '--admin'])).status).toBe(0);
    token = (await hub.cli(['token', 'root'])).stdout.trim();
  });
  afterAll(async () => {
    await hub.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies what the running hub just wrote (still in its WAL), readable only by its owner', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `u${i}`);
    expect((await api(hub.url, token, 'POST', '/users', { usernames: names })).status).toBe(201);
    const target = join(dir, 'state.sqlite');
    const done = await hub.cli(['db', 'backup', target]);
    expect(done.status, done.stderr).toBe(0);
    expect(done.stdout).toContain('cookie_secret');
    expect(statSync(target).mode & 0o777).toBe(0o600);
    const copy = new SQLite(target, { readonly: true });
    try {
      const rows = copy.prepare('select name from users order by name').all() as Array<{ name: string }>;
      expect(rows.map((r) => r.name)).toEqual(['root', ...names].sort());
      expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      copy.close();
    }
  });

  it('never overwrites a file, and sends PostgreSQL users to pg_dump', async () => {
    const target = join(dir, 'again.sqlite');
    expect((await hub.cli(['db', 'backup', target])).status).toBe(0);
    const second = await hub.cli(['db', 'backup', target]);
    expect(second.status).toBe(1);
    expect(second.stderr).toContain('exists');
    const missing = await hub.cli(['db', 'backup']);
    expect(missing.status).toBe(2);
    const postgres = await runLabhub(['db', 'backup', join(dir, 'pg.sqlite')], { ...hub.env, LABHUB_DB_URL: 'postgresql://labhub@127.0.0.1:1/labhub' });
    expect(postgres.status).toBe(1);
    expect(postgres.stderr).toContain('pg_dump');
  });
});
