import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrate, migrator, type OpenedDatabase } from '../../hub/db/database.js';
import { createStore, type Store } from '../../hub/db/index.js';
import { USER_UID } from '../../hub/db/user-uid.js';
import { identifierSlug, userDataNames } from '../../hub/credentials/names.js';
import { escapeDockerName, homeVolumeName } from '../../spawners/docker.js';
import { stateDbDialects } from '../helpers/state-dbs.js';

/**
 * Upgrading a state DB from before uids (migration 003) keeps every account's data where it was: each existing
 * account gets a uid and keeps its name-derived objects through `legacy_name`; accounts made afterwards get none.
 */
const postgresUrl = inject('postgresUrl');

const dialects = stateDbDialects('uid', postgresUrl);

const OLD_USERS = ['alice', 'alice.smith', 'Zoë'];

for (const dialect of dialects) {
  describe.skipIf(dialect.skip)(`migration 004-user-uid on ${dialect.name}`, () => {
    let opened: OpenedDatabase;
    let store: Store;
    let cleanup: () => void;

    beforeAll(async () => {
      ({ opened, cleanup } = await dialect.open());
      const { error } = await migrator(opened.db, opened.dialect).migrateTo('003-credentials');
      expect(error).toBeUndefined();
      for (const name of OLD_USERS) {
        await sql`insert into users (name, admin, created, cookie_id) values (${name}, 0, '2026-01-01T00:00:00.000Z', ${`c-${name}`})`.execute(opened.db);
      }
      expect((await migrate(opened.db, opened.dialect)).applied).toContain('004-user-uid');
      store = createStore(opened.db);
    });

    afterAll(async () => {
      await opened.close();
      cleanup();
    });

    it('gives every existing account a unique uid and records the name its objects were made under', async () => {
      const rows = await Promise.all(OLD_USERS.map(async (n) => (await store.users.byName(n))!));
      for (const row of rows) {
        expect(row.uid).toMatch(USER_UID);
        expect(row.legacy_name).toBe(row.name);
      }
      expect(new Set(rows.map((r) => r.uid)).size).toBe(rows.length);
    });

    it('keeps the names the release before gave their home volume, schema and database', async () => {
      const zoe = (await store.users.byName('Zoë'))!;
      const key = { name: zoe.name, uid: zoe.uid, legacyName: zoe.legacy_name };
      // What the release before uids created for Zoë.
      expect(homeVolumeName('labhub', key)).toBe(`labhub-home-${escapeDockerName('Zoë')}`);
      const slug = identifierSlug('Zoë');
      expect(userDataNames(key)).toEqual({ postgresOwner: `labhub_owner_${slug}`, postgresSchema: `u_${slug}`, mongoDatabase: `user_${slug}` });
    });

    it('a renamed legacy account keeps its data; a new account of an old name does not get it', async () => {
      const alice = (await store.users.byName('alice'))!;
      const renamed = await store.users.update(alice.id, { name: 'alice2' });
      expect(renamed.legacy_name).toBe('alice');
      const successor = await store.users.create('alice');
      expect(successor.legacy_name).toBeNull();
      expect(homeVolumeName('labhub', { uid: successor.uid })).not.toBe(homeVolumeName('labhub', { uid: renamed.uid, legacyName: renamed.legacy_name }));
    });

    it('refuses a second account with the same uid', async () => {
      const [a, b] = await store.users.createMany(['u1', 'u2'], false);
      await expect(sql`update users set uid = ${a!.uid} where id = ${b!.id}`.execute(opened.db)).rejects.toThrow(/unique|UNIQUE/);
    });
  });
}
