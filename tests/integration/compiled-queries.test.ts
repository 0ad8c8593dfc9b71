import { describe, expect, inject, it } from 'vitest';
import { CompiledQueries } from '../../hub/db/compiled-queries.js';
import { stateDbDialects, useMigratedStore } from '../helpers/state-dbs.js';

/**
 * Queries compiled once per shape (hub/db/compiled-queries.ts) must answer exactly what the same query built anew
 * answers, whatever values and list lengths follow the first run, on both dialects.
 */
for (const dialect of stateDbDialects('compiled', inject('postgresUrl'))) {
  describe.skipIf(dialect.skip)(`compiled queries on ${dialect.name}`, () => {
    const state = useMigratedStore(dialect);

    it('binds new values to a shape compiled once', async () => {
      const [ann, bob] = await state.store.users.createMany(['cq-ann', 'cq-bob'], false);
      const queries = new CompiledQueries(state.store.db);
      const byName = (name: string) => queries.rows('byName', [name], (n) => state.store.db.selectFrom('users').select(['id', 'name']).where('name', '=', n));
      expect(await byName('cq-ann')).toEqual([{ id: ann!.id, name: 'cq-ann' }]);
      expect(await byName('cq-bob')).toEqual([{ id: bob!.id, name: 'cq-bob' }]);
      expect(await byName("cq-ann' or '1'='1")).toEqual([]);
    });

    it('keeps the constants of the query and compiles each list length as its own shape', async () => {
      const users = await state.store.users.createMany(['cq-1', 'cq-2', 'cq-3'], false);
      const ids = users.map((u) => u.id);
      const queries = new CompiledQueries(state.store.db);
      const named = (list: number[]) => queries.rows('named', [list, 'cq-2'], (inList, except) => state.store.db.selectFrom('users').select('name')
        .where('id', 'in', inList).where('name', '!=', except).where('admin', '=', 0).orderBy('name'));
      expect((await named(ids)).map((r) => r.name)).toEqual(['cq-1', 'cq-3']);
      expect((await named([ids[0]!])).map((r) => r.name)).toEqual(['cq-1']);
      expect((await named([ids[2]!, ids[1]!])).map((r) => r.name)).toEqual(['cq-3']);
      expect((await named(ids)).map((r) => r.name)).toEqual(['cq-1', 'cq-3']);
    });

    it('refuses a query that does not bind each value exactly once', async () => {
      const queries = new CompiledQueries(state.store.db);
      await expect(queries.rows('unused', ['a', 'b'], (a) => state.store.db.selectFrom('users').select('id').where('name', '=', a)))
        .rejects.toThrow(/bind each of its 2 values exactly once; it bound 1/);
      await expect(queries.rows('twice', ['a'], (a) => state.store.db.selectFrom('users').select('id').where('name', '=', a).where('legacy_name', '=', a)))
        .rejects.toThrow(/exactly once; it bound 2/);
    });

    it('serves the repositories on the request path as before', async () => {
      const [carl] = await state.store.users.createMany(['cq-carl'], false);
      const group = await state.store.groups.create('cq-group');
      await state.store.groups.addMembers(group.id, [carl!.id]);
      expect((await state.store.users.byName('cq-carl'))?.id).toBe(carl!.id);
      expect(await state.store.users.byName('cq-nobody')).toBeUndefined();
      expect(await state.store.users.groupsOf([carl!.id])).toEqual(new Map([[carl!.id, ['cq-group']]]));
      expect(await state.store.roles.rolesOf('user', [carl!.id])).toEqual(new Map([[carl!.id, []]]));
      expect((await state.store.servers.forUsers([carl!.id])).get(carl!.id)).toEqual([]);
      expect(await state.store.authEpoch.current()).toMatch(/^\d+$/);
    });
  });
}
