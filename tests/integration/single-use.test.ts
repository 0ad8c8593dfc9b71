import { Migrator, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createInvitation, createSetupLink, redeemLink } from '../../hub/auth/one-time-links.js';
import { BY_HUB } from '../../hub/audit/record.js';
import { secretDigest } from '../../hub/auth/tokens.js';
import { migrate, type OpenedDatabase } from '../../hub/db/database.js';
import { createStore, type Store } from '../../hub/db/index.js';
import { allMigrations } from '../../hub/db/migrations/index.js';
import { stateDbDialects } from '../helpers/state-dbs.js';

/**
 * Single-use secrets under concurrency (issue 16, likely item): OAuth codes and one-time links are taken in one
 * statement, so of many simultaneous uses exactly one succeeds, on SQLite and on PostgreSQL (where a read then a
 * delete, even inside a transaction, let several through).
 */
const postgresUrl = inject('postgresUrl');
const CONCURRENT = 20;

const dialects = stateDbDialects('single_use', postgresUrl);

for (const dialect of dialects) {
  describe.skipIf(dialect.skip)(`single-use secrets on ${dialect.name}`, () => {
    let opened: OpenedDatabase;
    let store: Store;
    let cleanup: () => void;

    beforeAll(async () => {
      ({ opened, cleanup } = await dialect.open());
      await migrate(opened.db, opened.dialect);
      store = createStore(opened.db);
    });
    afterAll(async () => {
      await opened.close();
      cleanup();
    });

    it('the upgrade drops links that named their account only by username and keeps the setup link', async () => {
      const { opened: old, cleanup: done } = await dialect.open();
      try {
        const before = Object.fromEntries(Object.entries(allMigrations(old.dialect)).filter(([name]) => name < '005'));
        const migrator = new Migrator({ db: old.db, provider: { getMigrations: async () => before }, migrationTableName: 'labhub_migrations', migrationLockTableName: 'labhub_migrations_lock' });
        expect((await migrator.migrateToLatest()).error).toBeUndefined();
        await sql`insert into invitations (code_hash, username, admin, created, expires_at) values
          ('named', 'eve', 1, '2026-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z'),
          ('setup', null, 1, '2026-01-01T00:00:00.000Z', '2999-01-01T00:00:00.000Z')`.execute(old.db);
        expect((await migrate(old.db, old.dialect)).applied).toContain('005-one-time-links');
        expect(await old.db.selectFrom('invitations').select(['code_hash', 'user_id', 'account_state']).execute())
          .toEqual([{ code_hash: 'setup', user_id: null, account_state: null }]);
      } finally {
        await old.close();
        done();
      }
    });

    it(`an OAuth code used ${CONCURRENT} times at once is exchanged exactly once`, async () => {
      const user = await store.users.create('oauth-user');
      await store.oauth.upsertClient({ identifier: 'client-1', description: '', secret_hash: 'x', redirect_uri: '/cb', allowed_scopes: '[]' });
      for (let round = 0; round < 5; round++) {
        const hash = secretDigest(`code-${round}`);
        await store.oauth.createCode({ code_hash: hash, client_id: 'client-1', user_id: user.id, scopes: '[]', session_id: null, redirect_uri: '/cb', expires_at: '2999-01-01T00:00:00.000Z', code_challenge: null });
        const taken = await Promise.all(Array.from({ length: CONCURRENT }, () => store.oauth.consumeCode(hash)));
        expect(taken.filter(Boolean)).toHaveLength(1);
      }
    });

    it(`a link taken ${CONCURRENT} times at once is taken exactly once`, async () => {
      const user = await store.users.create('link-user');
      for (let round = 0; round < 5; round++) {
        const code = await createInvitation(store, (await store.users.byId(user.id))!, BY_HUB);
        const taken = await Promise.all(Array.from({ length: CONCURRENT }, () => store.invitations.consume(secretDigest(code))));
        expect(taken.filter(Boolean)).toHaveLength(1);
      }
    });

    it(`the setup link redeemed ${CONCURRENT} times at once, under different names, makes one admin`, async () => {
      const code = await createSetupLink(store);
      const results = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => redeemLink(store, code, `first-${i}`, 'scrypt$hash', null)));
      expect(results.filter((r) => typeof r === 'object')).toHaveLength(1);
      expect(results.filter((r) => r === 'dead')).toHaveLength(CONCURRENT - 1);
      expect(await store.users.countAdmins()).toBe(1);
    });

    it('an invitation is deleted with its account, and revoked by a new password or an admin-flag change', async () => {
      const count = async (userId: number) => (await opened.db.selectFrom('invitations').select('id').where('user_id', '=', userId).execute()).length;
      const user = await store.users.create('revoked-user');
      await createInvitation(store, user, BY_HUB);
      await store.users.update(user.id, { admin: false });
      expect(await count(user.id)).toBe(1);
      await store.users.update(user.id, { admin: true });
      expect(await count(user.id)).toBe(0);
      await createInvitation(store, (await store.users.byId(user.id))!, BY_HUB);
      await store.users.update(user.id, { passwordHash: 'scrypt$other' });
      expect(await count(user.id)).toBe(0);
      await createInvitation(store, (await store.users.byId(user.id))!, BY_HUB);
      await store.users.delete(user.id);
      expect(await count(user.id)).toBe(0);
    });
  });
}
