import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatabaseTooNewError, migrate, openDatabase, type OpenedDatabase } from '../../hub/db/database.js';
import { createStore, type Store } from '../../hub/db/index.js';
import { allMigrations } from '../../hub/db/migrations/index.js';
import { requireService } from '../helpers/jupyter.js';
import { createDatabase } from '../helpers/postgres.js';
import { api, HubProcess } from '../helpers/hub.js';

/**
 * The same suite against both dialects of the state DB: SQLite (the embedded default) and PostgreSQL
 * (a throwaway cluster started by the global setup).
 */
const postgresUrl = inject('postgresUrl');
const hasPostgres = requireService('PostgreSQL', postgresUrl !== null);

const dialects: Array<{ name: string; open: () => Promise<{ opened: OpenedDatabase; cleanup: () => void }>; skip: boolean }> = [
  {
    name: 'sqlite',
    skip: false,
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'labhub-db-'));
      return { opened: openDatabase({ sqlitePath: join(dir, 'state.sqlite') }), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    skip: !hasPostgres,
    open: async () => {
      const url = await createDatabase(postgresUrl!, `state_${Date.now()}_${Math.floor(Math.random() * 1e6)}`);
      return { opened: openDatabase({ postgresUrl: url }), cleanup: () => undefined };
    },
  },
];

for (const dialect of dialects) {
  describe.skipIf(dialect.skip)(`state DB on ${dialect.name}`, () => {
    let opened: OpenedDatabase;
    let store: Store;
    let cleanup: () => void;

    beforeAll(async () => {
      ({ opened, cleanup } = await dialect.open());
      const report = await migrate(opened.db, opened.dialect);
      // Every migration this code knows, in order, starting with the first schema.
      expect(report.applied).toEqual(Object.keys(allMigrations(opened.dialect)));
      expect(report.applied[0]).toBe('001-initial');
      store = createStore(opened.db);
    });

    afterAll(async () => {
      await opened.close();
      cleanup();
    });

    it('migrations are idempotent', async () => {
      expect((await migrate(opened.db, opened.dialect)).applied).toEqual([]);
    });

    it('creates, finds, renames and deletes users; names are unique', async () => {
      const carol = await store.users.create('carol', { admin: true });
      expect(carol).toMatchObject({ name: 'carol', admin: 1, last_activity: null });
      await expect(store.users.create('carol')).rejects.toThrow();
      const renamed = await store.users.update(carol.id, { name: 'caroline' });
      expect(renamed.name).toBe('caroline');
      expect(await store.users.byName('carol')).toBeUndefined();
      await store.users.delete(carol.id);
      expect(await store.users.byId(carol.id)).toBeUndefined();
    });

    it('bulk-creates only new names, in one transaction', async () => {
      const first = await store.users.createMany(['u1', 'u2', 'u3'], false);
      expect(first.map((u) => u.name)).toEqual(['u1', 'u2', 'u3']);
      const second = await store.users.createMany(['u3', 'u4'], false);
      expect(second.map((u) => u.name)).toEqual(['u4']);
    });

    it('lists with pagination, sort, name filter, scope filters and state filters', async () => {
      const all = await store.users.list({ offset: 0, limit: 2, sort: 'name', descending: true });
      expect(all.total).toBe(4);
      expect(all.rows.map((u) => u.name)).toEqual(['u4', 'u3']);
      expect((await store.users.list({ offset: 0, limit: 50, sort: 'id', descending: false, nameFilter: 'U2' })).rows.map((u) => u.name)).toEqual(['u2']);
      // LIKE wildcards in the filter are literal.
      expect((await store.users.list({ offset: 0, limit: 50, sort: 'id', descending: false, nameFilter: '%' })).total).toBe(0);
      const group = await store.groups.create('class-a');
      await store.groups.addMembers(group.id, [(await store.users.byName('u1'))!.id]);
      const filtered = await store.users.list({ offset: 0, limit: 50, sort: 'name', descending: false, names: ['u3'], groups: ['class-a'] });
      expect(filtered.rows.map((u) => u.name)).toEqual(['u1', 'u3']);
      const none = await store.users.list({ offset: 0, limit: 50, sort: 'name', descending: false, names: [], groups: [] });
      expect(none.total).toBe(0);

      const u2 = (await store.users.byName('u2'))!;
      const row = await store.servers.beginStart(u2.id, '', {}, 'instant');
      await store.servers.markRunning(row!.id, 'http://127.0.0.1:1', {});
      const names = async (state: 'active' | 'ready' | 'inactive') =>
        (await store.users.list({ offset: 0, limit: 50, sort: 'name', descending: false, state })).rows.map((u) => u.name);
      expect(await names('ready')).toEqual(['u2']);
      expect(await names('active')).toEqual(['u2']);
      expect(await names('inactive')).toEqual(['u1', 'u3', 'u4']);
    });

    it('lets only one of two concurrent starts of a server win', async () => {
      const u3 = (await store.users.byName('u3'))!;
      const results = await Promise.all([store.servers.beginStart(u3.id, '', {}, 'x'), store.servers.beginStart(u3.id, '', {}, 'x')]);
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      const row = results.find((r) => r !== null)!;
      await store.servers.markStopped(row.id, 'Spawn failed: test');
      expect((await store.servers.byId(row.id))).toMatchObject({ status: 'stopped', last_error: 'Spawn failed: test', url: null });
    });

    it('moves activity forward only', async () => {
      const u4 = (await store.users.byName('u4'))!;
      await store.users.touch(u4.id, '2026-01-02T00:00:00.000Z');
      await store.users.touch(u4.id, '2026-01-01T00:00:00.000Z');
      expect((await store.users.byId(u4.id))!.last_activity).toBe('2026-01-02T00:00:00.000Z');
    });

    it('keeps tokens by prefix, hides expired ones, deletes them by session and client', async () => {
      const u1 = (await store.users.byName('u1'))!;
      const live = await store.tokens.create({ hashed: 'sha256:a', prefix: 'abcd', owner: { userId: u1.id }, scopes: ['inherit'], note: 'n', expiresAt: null, sessionId: 's1' });
      await store.tokens.create({ hashed: 'sha256:b', prefix: 'abcd', owner: { userId: u1.id }, scopes: [], note: 'old', expiresAt: '2000-01-01T00:00:00.000Z' });
      expect((await store.tokens.candidates('abcd')).map((t) => t.id)).toEqual([live.id]);
      await store.tokens.deleteExpired();
      await store.tokens.deleteForSession('s1');
      expect(await store.tokens.listForUser(u1.id)).toEqual([]);
    });

    it('uses OAuth codes once', async () => {
      const u1 = (await store.users.byName('u1'))!;
      await store.oauth.upsertClient({ identifier: 'c1', description: 'd', secret_hash: 'h', redirect_uri: '/cb', allowed_scopes: '[]' });
      await store.oauth.createCode({ code_hash: 'code1', client_id: 'c1', user_id: u1.id, scopes: '[]', session_id: null, redirect_uri: '/cb', expires_at: '2999-01-01T00:00:00.000Z', code_challenge: null });
      expect(await store.oauth.consumeCode('code1')).toMatchObject({ client_id: 'c1' });
      expect(await store.oauth.consumeCode('code1')).toBeUndefined();
    });

    it('cascades a user deletion to their servers, tokens, sessions and group memberships', async () => {
      const u1 = (await store.users.byName('u1'))!;
      await store.sessions.create({ id: 'sess', secret_hash: 'x', user_id: u1.id, cookie_id: u1.cookie_id, created: '2026-01-01T00:00:00.000Z', expires_at: '2999-01-01T00:00:00.000Z' });
      await store.users.delete(u1.id);
      expect(await store.sessions.byId('sess')).toBeUndefined();
      expect((await store.groups.membersOf([(await store.groups.byName('class-a'))!.id])).get((await store.groups.byName('class-a'))!.id)).toEqual([]);
    });

    it('refuses a DB with a schema newer than the code', async () => {
      await sql`insert into labhub_migrations (name, timestamp) values ('999-future', '2099-01-01T00:00:00.000Z')`.execute(opened.db);
      await expect(migrate(opened.db, opened.dialect)).rejects.toBeInstanceOf(DatabaseTooNewError);
      await expect(migrate(opened.db, opened.dialect)).rejects.toThrow(/newer than this LabHub knows/);
      await sql`delete from labhub_migrations where name = '999-future'`.execute(opened.db);
    });
  });
}

describe.skipIf(!hasPostgres)('the hub on PostgreSQL', () => {
  let hub: HubProcess;
  let token = '';

  beforeAll(async () => {
    const url = await createDatabase(postgresUrl!, `hub_${Date.now()}`);
    hub = new HubProcess({ env: { LABHUB_DB_URL: url, LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy' } });
    await hub.start();
    expect((await hub.cli(['users', 'add', 'admin', '--admin'])).status).toBe(0);
    token = (await hub.cli(['token', 'admin'])).stdout.trim();
  });

  afterAll(async () => hub.cleanup());

  it('serves the API, starts and stops servers, and reconciles after kill -9', async () => {
    expect((await api(hub.url, token, 'POST', '/users', { usernames: ['pg1', 'pg2'] })).status).toBe(201);
    expect((await api(hub.url, token, 'POST', '/users/pg1/server')).status).toBe(201);
    expect((await api(hub.url, token, 'DELETE', '/users/pg1/server')).status).toBe(204);
    expect((await api(hub.url, token, 'POST', '/users/pg2/server')).status).toBe(201);
    // The instant spawner's servers live in the hub process: kill -9 takes them along, and the restarted hub
    // must notice and clean up instead of listing a dead server.
    hub.kill9();
    await hub.start();
    const user = await api(hub.url, token, 'GET', '/users/pg2');
    expect(user.status).toBe(200);
    expect((user.body as { servers: Record<string, unknown> }).servers).toEqual({});
    expect((await api(hub.url, token, 'POST', '/users/pg2/server')).status).toBe(201);
    const users = await api(hub.url, token, 'GET', '/users?state=ready');
    expect((users.body as Array<{ name: string }>).map((u) => u.name)).toEqual(['pg2']);
  });
});
