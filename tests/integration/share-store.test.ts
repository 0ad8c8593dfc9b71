import { describe, expect, inject, it } from 'vitest';
import { sharedScopes } from '../../hub/sharing/scopes.js';
import { stateDbDialects, useMigratedStore } from '../helpers/state-dbs.js';

/** The share tables (migration 009) on both dialects: one share per holder and server, grants merge, deletes cascade. */
for (const dialect of stateDbDialects('shares', inject('postgresUrl'))) {
  describe.skipIf(dialect.skip)(`shares on ${dialect.name}`, () => {
    const state = useMigratedStore(dialect);

    it('merges grants into one share per holder and server, and gives a group\'s members its scopes', async () => {
      const { store } = state;
      const [owner, bob, carol] = [await store.users.create('owner1'), await store.users.create('bob1'), await store.users.create('carol1')];
      const group = await store.groups.create('lab1');
      await store.groups.addMembers(group.id, [carol.id]);
      const before = await store.authEpoch.current();
      await store.shares.grant(owner.id, '', { userId: bob.id }, ['access:servers']);
      expect(await store.authEpoch.current()).not.toBe(before);
      await store.shares.grant(owner.id, '', { userId: bob.id }, ['access:servers']);
      await store.shares.grant(owner.id, 'nb', { groupId: group.id }, ['access:servers']);
      expect((await store.shares.list({ ownerId: owner.id })).total).toBe(2);
      expect(sharedScopes(await store.shares.heldBy(bob.id))).toEqual(['access:servers!server=owner1/']);
      expect(sharedScopes(await store.shares.heldBy(carol.id))).toEqual(['access:servers!server=owner1/nb']);
      await expect(store.db.insertInto('shares').values({ owner_id: owner.id, server_name: '', user_id: bob.id, group_id: group.id, scopes: '[]', created: 'x' }).execute()).rejects.toThrow();
    });

    it('revokes partly or wholly, and forgets shares with the accounts and groups they name', async () => {
      const { store } = state;
      const [owner, bob] = [await store.users.create('owner2'), await store.users.create('bob2')];
      const group = await store.groups.create('lab2');
      const share = await store.shares.grant(owner.id, '', { userId: bob.id }, ['access:servers']);
      expect(await store.shares.revoke(share, ['read:servers'])).toMatchObject({ scopes: ['access:servers'] });
      expect(await store.shares.revoke(share, null)).toBeNull();
      expect(await store.shares.heldBy(bob.id)).toEqual([]);
      await store.shares.grant(owner.id, '', { userId: bob.id }, ['access:servers']);
      await store.shares.grant(owner.id, '', { groupId: group.id }, ['access:servers']);
      await store.users.delete(bob.id);
      await store.groups.delete(group.id);
      expect((await store.shares.list({ ownerId: owner.id })).total).toBe(0);
      await store.shares.grant(owner.id, '', { userId: (await store.users.create('bob3')).id }, ['access:servers']);
      await store.users.delete(owner.id);
      expect((await store.shares.list({})).rows.filter((s) => s.owner_name === 'owner2')).toEqual([]);
    });

    it('finds live share codes only, by hash or id, and counts their use', async () => {
      const { store } = state;
      const owner = await store.users.create('owner4');
      const live = await store.shares.createCode({ ownerId: owner.id, serverName: '', codeHash: 'h-live', scopes: ['access:servers'], expiresAt: new Date(Date.now() + 60_000).toISOString() });
      await store.shares.createCode({ ownerId: owner.id, serverName: '', codeHash: 'h-dead', scopes: ['access:servers'], expiresAt: new Date(Date.now() - 1000).toISOString() });
      expect(await store.shares.code({ codeHash: 'h-dead' })).toBeUndefined();
      expect((await store.shares.code({ codeHash: 'h-live' }))?.id).toBe(live.id);
      await store.shares.codeExchanged(live.id);
      expect(await store.shares.code({ id: live.id })).toMatchObject({ exchange_count: 1, last_exchanged_at: expect.any(String) });
      expect((await store.shares.codes(owner.id, '', 0, 10)).total).toBe(1);
    });
  });
}
