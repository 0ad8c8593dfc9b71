import { describe, expect, inject, it } from 'vitest';
import type { TokenRow, UserRow } from '../../hub/db/schema.js';
import { stateDbDialects, useMigratedStore } from '../helpers/state-dbs.js';
import { itIf } from '../helpers/only-for.js';

/**
 * The auth epoch (migration 006) against every write path of hub/db that changes what a token may do, on both
 * dialects: the hub's token cache is only as correct as this list. Writes that change nothing a token may do
 * (activity, passwords, group properties, new rows nobody holds yet) must leave it alone, or the cache is useless.
 */
for (const dialect of stateDbDialects('epoch', inject('postgresUrl'))) {
  describe.skipIf(dialect.skip)(`auth epoch on ${dialect.name}`, () => {
    const state = useMigratedStore(dialect);
    let serial = 0;

    /** Whether `write` moved the epoch. */
    async function bumps(write: () => Promise<unknown>): Promise<boolean> {
      const before = await state.store.authEpoch.current();
      await write();
      return (await state.store.authEpoch.current()) !== before;
    }

    const user = (admin = false): Promise<UserRow> => state.store.users.create(`u${++serial}`, { admin });
    const token = (owner: { userId: number } | { serviceId: number }, extra: { sessionId?: string; oauthClientId?: string; expiresAt?: string } = {}): Promise<TokenRow> =>
      state.store.tokens.create({ hashed: `sha256:${++serial}`, prefix: 'abcd', owner, scopes: ['read:users'], note: '', expiresAt: extra.expiresAt ?? null, ...extra });

    it('starts as a number', async () => {
      expect(await state.store.authEpoch.current()).toMatch(/^\d+$/);
    });

    it('moves with every revocation of tokens', async () => {
      const u = await user();
      const t = await token({ userId: u.id });
      expect(await bumps(() => state.store.tokens.delete(t.id))).toBe(true);
      await token({ userId: u.id }, { oauthClientId: 'client-a' });
      expect(await bumps(() => state.store.tokens.deleteForUserAndClient(u.id, 'client-a'))).toBe(true);
      await token({ userId: u.id }, { oauthClientId: 'client-b' });
      expect(await bumps(() => state.store.tokens.deleteForClient('client-b'))).toBe(true);
      await token({ userId: u.id }, { sessionId: 'session-a' });
      expect(await bumps(() => state.store.tokens.deleteForSession('session-a'))).toBe(true);
      await token({ userId: u.id }, { expiresAt: new Date(Date.now() - 1000).toISOString() });
      expect(await bumps(() => state.store.tokens.deleteExpired())).toBe(true);
      const service = await state.store.services.upsert({ name: `svc${++serial}`, admin: false, url: null });
      await token({ serviceId: service.id });
      expect(await bumps(() => state.store.tokens.deleteForService(service.id))).toBe(true);
    });

    it('moves when a user is deleted, renamed, made admin or demoted', async () => {
      const u = await user(true);
      expect(await bumps(() => state.store.users.update(u.id, { admin: false }))).toBe(true);
      expect(await bumps(() => state.store.users.update(u.id, { admin: true }))).toBe(true);
      expect(await bumps(() => state.store.users.update(u.id, { name: `renamed${++serial}` }))).toBe(true);
      expect(await bumps(() => state.store.users.delete(u.id))).toBe(true);
    });

    it('moves when group membership changes or a group goes', async () => {
      const [a, b] = [await user(), await user()];
      const group = await state.store.groups.create(`g${++serial}`);
      expect(await bumps(() => state.store.groups.addMembers(group.id, [a.id, b.id]))).toBe(true);
      expect(await bumps(() => state.store.groups.removeMembers(group.id, [a.id]))).toBe(true);
      expect(await bumps(() => state.store.groups.setUserGroups(a.id, [group.id]))).toBe(true);
      expect(await bumps(() => state.store.groups.setUserGroups(a.id, []))).toBe(true);
      expect(await bumps(() => state.store.groups.delete(group.id))).toBe(true);
    });

    it('moves when roles, their scopes or their members change, and when a service changes or goes', async () => {
      const u = await user();
      const role = { name: `r${++serial}`, description: '', scopes: ['read:users'] };
      expect(await bumps(() => state.store.roles.replaceAll([{ ...role, members: [{ kind: 'user', id: u.id }] }]))).toBe(true);
      expect(await bumps(() => state.store.roles.replaceAll([{ ...role, members: [] }]))).toBe(true);
      expect(await bumps(() => state.store.roles.replaceAll([{ ...role, scopes: ['admin:users'], members: [] }]))).toBe(true);
      const name = `svc${++serial}`;
      await state.store.services.upsert({ name, admin: false, url: null });
      expect(await bumps(() => state.store.services.upsert({ name, admin: true, url: null }))).toBe(true);
      expect(await bumps(() => state.store.services.deleteExcept([]))).toBe(true);
    });

    it('stays put for activity and other writes that change nothing a token may do', async () => {
      const u = await user();
      const t = await token({ userId: u.id });
      const group = await state.store.groups.create(`g${++serial}`);
      expect(await bumps(async () => {
        await state.store.tokens.touch(t.id, new Date().toISOString());
        await state.store.users.touch(u.id, new Date().toISOString());
        await state.store.users.update(u.id, { passwordHash: 'x', authState: null });
        await state.store.groups.setProperties(group.id, { a: 1 });
        await user();
        await token({ userId: u.id });
      })).toBe(false);
    });

    itIf(dialect.name === 'postgres')('two transactions changing the same rows in opposite order wait, not deadlock', async () => {
      const [a, b] = [await user(), await user()];
      const before = Number(await state.store.authEpoch.current());
      let secondStarted!: Promise<unknown>;
      const first = state.store.transaction(async (tx) => {
        await tx.users.update(a.id, { admin: true });
        // The second transaction now changes b then a; this one changes b after it has started.
        secondStarted = state.store.transaction(async (tx2) => {
          await tx2.users.update(b.id, { admin: true });
          await tx2.users.update(a.id, { admin: false });
        });
        await new Promise((r) => setTimeout(r, 200));
        await tx.users.update(b.id, { admin: false });
      });
      await first;
      await secondStarted;
      expect(Number(await state.store.authEpoch.current())).toBeGreaterThanOrEqual(before + 4);
      expect(Boolean((await state.store.users.byId(a.id))!.admin)).toBe(false);
    });

    it('moves inside a transaction only when it commits', async () => {
      const u = await user();
      const before = await state.store.authEpoch.current();
      await expect(state.store.transaction(async (tx) => {
        await tx.users.delete(u.id);
        throw new Error('rolled back');
      })).rejects.toThrow('rolled back');
      expect(await state.store.authEpoch.current()).toBe(before);
      expect(await state.store.users.byId(u.id)).toBeDefined();
    });
  });
}
