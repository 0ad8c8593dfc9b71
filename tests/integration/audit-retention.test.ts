import { describe, expect, inject, it } from 'vitest';
import { AuditRetention } from '../../hub/audit/retention.js';
import { createLogger } from '../../hub/log.js';
import { stateDbDialects, useMigratedStore } from '../helpers/state-dbs.js';

/** Retention pruning of the audit log (the only way a record leaves it) and the append-only rule, on both dialects. */
for (const dialect of stateDbDialects('audit_retention', inject('postgresUrl'))) {
  describe.skipIf(dialect.skip)(`audit retention on ${dialect.name}`, () => {
    const state = useMigratedStore(dialect);
    const log = createLogger('test', { level: 'silent' });
    const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
    const insert = (time: string, action: string) => state.store.audit.insert({
      time, action, actorKind: 'system', actorName: null, actorUid: null, targetKind: null, targetName: null, targetUid: null, source: null, details: '{}',
    });
    const actions = async () => (await state.store.audit.list({ offset: 0, limit: 100 })).rows.map((r) => r.action).sort();

    it('removes records past the retention period and keeps the rest; 0 keeps everything', async () => {
      await insert(daysAgo(400), 'logout');
      await insert(daysAgo(20), 'login.failure');
      await insert(daysAgo(1), 'login.success');
      const forever = new AuditRetention(state.store, 0, log);
      await forever.start();
      forever.close();
      expect(await actions()).toEqual(['login.failure', 'login.success', 'logout']);
      const year = new AuditRetention(state.store, 365, log);
      await year.start();
      year.close();
      expect(await actions()).toEqual(['login.failure', 'login.success']);
      expect(await new AuditRetention(state.store, 7, log).prune()).toBe(1);
      expect(await actions()).toEqual(['login.success']);
    });

    it('refuses to rewrite a record', async () => {
      await expect(state.store.db.updateTable('audit_events').set({ actor_name: 'mallory' }).execute()).rejects.toThrow(/append-only/);
      expect((await state.store.audit.list({ offset: 0, limit: 10 })).rows.every((r) => r.actor_name === null)).toBe(true);
    });
  });
}
