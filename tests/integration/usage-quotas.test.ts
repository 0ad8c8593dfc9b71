import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { createDatabase } from '../helpers/postgres.js';

/**
 * Usage accounting and quotas on a real hub process (instant servers: the hub's own lifecycle, accounting and
 * sweeps are what is under test; tests/integration/docker-hub.test.ts measures real containers). A teacher reads
 * only their class's usage and can neither read nor change quotas; users read only their own usage; a start past a
 * quota is refused naming it and when it frees up; a running server past its quota is warned, then stopped.
 */
type Answer = { status: number; body: unknown; headers: Headers };
const messageOf = (res: Answer) => (res.body as { message?: string }).message ?? '';

interface UsageModel {
  user: string;
  totals: { server_hours: number; memory_gib_hours: number; cpu_hours: number };
  by_class: Array<{ class: string | null; totals: { server_hours: number } }>;
  daily: Array<{ date: string; server_hours: number }>;
  running: Array<{ server: string; class: string | null; requested: Record<string, unknown>; quota_warning: { quota: string; stop_at: string } | null }>;
  quotas: Array<{ subject: { kind: string; name: string }; exceeded: unknown[]; frees_at: string | null }>;
}

const postgresUrl = inject('postgresUrl');

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe.skipIf(dialect === 'postgres' && !requireService('PostgreSQL', postgresUrl !== null))(`usage accounting and quotas on ${dialect}`, () => {
    let hub: HubProcess;
    let admin = '';
    const tokens: Record<string, string> = {};
    const as = (user: string, method: string, path: string, body?: unknown) => api(hub.url, tokens[user]!, method, path, body);
    const usage = async (user: string, of = user) => {
      const res = await as(user, 'GET', `/users/${of}/usage`);
      expect(res.status).toBe(200);
      return res.body as UsageModel;
    };
    const auditOf = async (action: string, target: string) =>
      ((await api(hub.url, admin, 'GET', `/audit?kind=${action}`)).body as Array<{ action: string; target: { name: string }; details: Record<string, unknown> }>)
        .filter((r) => r.action === action && r.target.name === target);

    beforeAll(async () => {
      hub = new HubProcess({
        env: {
          LABHUB_SPAWNER__KIND: 'instant',
          LABHUB_ALLOW_NAMED_SERVERS: 'true',
          LABHUB_USAGE__SAMPLE_INTERVAL: '1',
          LABHUB_USAGE__QUOTA_GRACE: '3',
          // A teacher of cls: reads its usage, and holds a filtered admin:quotas that must not let them raise a quota.
          LABHUB_ROLES: JSON.stringify([{ name: 'teacher', scopes: ['read:usage!group=cls', 'admin:quotas!group=cls'], users: ['teach'] }]),
          ...(dialect === 'postgres' && { LABHUB_DB_URL: await createDatabase(postgresUrl!, `usage_${Date.now()}`) }),
        },
      });
      await hub.start();
      expect((await hub.cli(['users', 'add', 'ada', '--admin', '--password-stdin'], 'ada-pass-Quokka-7781\n')).status).toBe(0);
      admin = (await hub.cli(['token', 'ada'])).stdout.trim();
      // teach exists already: the role in config made the account.
      for (const name of ['bob', 'carol', 'eve']) expect((await api(hub.url, admin, 'POST', `/users/${name}`)).status).toBe(201);
      for (const name of ['bob', 'carol', 'eve', 'teach']) {
        tokens[name] = ((await api(hub.url, admin, 'POST', `/users/${name}/tokens`, { note: 'test' })).body as { token: string }).token;
      }
      expect((await api(hub.url, admin, 'POST', '/groups/cls', { users: ['bob', 'carol'] })).status).toBe(201);
      expect((await api(hub.url, admin, 'PUT', '/groups/cls/properties', {
        profiles: [{ slug: 'small', display_name: 'Small', cpu_limit: 1, mem_limit: '1G' }],
      })).status).toBe(200);
    }, 60_000);
    afterAll(() => hub?.cleanup());

    it('accounts a run from ready to stopped, under the class whose profile it used', async () => {
      expect((await as('bob', 'POST', '/users/bob/server', { profile: 'cls/small' })).status).toBe(201);
      const running = await usage('bob');
      expect(running.running).toHaveLength(1);
      expect(running.running[0]).toMatchObject({ server: '', class: 'cls' });
      await new Promise((r) => setTimeout(r, 1500));
      expect((await as('bob', 'DELETE', '/users/bob/server')).status).toBe(204);
      const after = await usage('bob');
      expect(after.running).toHaveLength(0);
      expect(after.totals.server_hours).toBeGreaterThan(1.4 / 3600);
      expect(after.totals.server_hours).toBeLessThan(60 / 3600);
      expect(after.by_class.find((c) => c.class === 'cls')!.totals.server_hours).toBeCloseTo(after.totals.server_hours, 6);
      expect(after.daily.at(-1)!.server_hours).toBeGreaterThan(0);
      expect(after.daily).toHaveLength(30);
      const cls = await as('teach', 'GET', '/groups/cls/usage?days=7');
      expect(cls.status).toBe(200);
      const body = cls.body as { totals: { server_hours: number }; members: Array<{ name: string; totals: { server_hours: number } }> };
      expect(body.members.map((m) => m.name)).toEqual(['bob', 'carol']);
      expect(body.totals.server_hours).toBeCloseTo(after.totals.server_hours, 6);
    });

    it('lets each user read only their own usage, and a teacher only their class members\'', async () => {
      expect((await as('bob', 'GET', '/users/carol/usage')).status).toBe(404);
      expect((await as('eve', 'GET', '/users/bob/usage')).status).toBe(404);
      expect((await as('eve', 'GET', '/groups/cls/usage')).status).toBe(404);
      const own = await as('eve', 'GET', '/usage');
      expect(own.status).toBe(200);
      expect((own.body as Array<{ name: string }>).every((u) => u.name === 'eve')).toBe(true);
      expect((await api(hub.url, tokens.eve!.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')), 'GET', '/usage')).status).toBe(403);
      expect((await as('teach', 'GET', '/users/bob/usage')).status).toBe(200);
      expect((await as('teach', 'GET', '/users/eve/usage')).status).toBe(404);
      const listed = await as('teach', 'GET', '/usage');
      expect(listed.status).toBe(200);
      expect((listed.body as Array<{ name: string }>).map((u) => u.name)).toEqual(['bob']);
      const all = await api(hub.url, admin, 'GET', '/usage');
      expect((all.body as Array<{ name: string }>).map((u) => u.name)).toContain('bob');
    });

    it('lets only an unfiltered admin:quotas read or change quotas', async () => {
      expect((await as('teach', 'PUT', '/quotas/groups/cls', { window_hours: 24, server_hours: 1000 })).status).toBe(403);
      expect((await as('teach', 'PUT', '/quotas/users/teach', { window_hours: 24, server_hours: 1000 })).status).toBe(403);
      expect((await as('teach', 'GET', '/quotas')).status).toBe(403);
      expect((await as('bob', 'DELETE', '/quotas/users/bob')).status).toBe(403);
      expect((await api(hub.url, admin, 'GET', '/quotas')).body).toEqual([]);
    });

    it('refuses bad quota and usage input with 4xx, leaving nothing written', async () => {
      const bad: unknown[] = [{}, { window_hours: 0, server_hours: 1 }, { window_hours: 24 }, { window_hours: 24, server_hours: 'x' },
        { window_hours: 24, server_hours: -1 }, { window_hours: 24, max_servers: 1.5 }, { window_hours: 24, server_hours: 1, extra: 1 }, [], 'x', null];
      for (const body of bad) {
        const res = await api(hub.url, admin, 'PUT', '/quotas/users/bob', body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(messageOf(res)).not.toBe('');
      }
      expect((await api(hub.url, admin, 'PUT', '/quotas/users/nobody', { window_hours: 1, server_hours: 1 })).status).toBe(404);
      expect((await api(hub.url, admin, 'PUT', '/quotas/groups/nogroup', { window_hours: 1, server_hours: 1 })).status).toBe(404);
      expect((await api(hub.url, admin, 'DELETE', '/quotas/users/bob')).status).toBe(404);
      for (const q of ['days=0', 'days=367', 'days=abc', 'days=-1', 'days=1e3']) expect((await as('bob', 'GET', `/users/bob/usage?${q}`)).status, q).toBe(400);
      expect((await api(hub.url, admin, 'GET', '/quotas')).body).toEqual([]);
    });

    it('refuses a start past a concurrency quota, also when two starts race', async () => {
      const set = await api(hub.url, admin, 'PUT', '/quotas/users/carol', { window_hours: 24, max_servers: 1 });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ subject: { kind: 'user', name: 'carol' }, max_servers: 1, window_hours: 24 });
      const raced = await Promise.all(['a', 'b', 'c'].map((s) => as('carol', 'POST', `/users/carol/servers/${s}`)));
      expect(raced.filter((r) => r.status === 201)).toHaveLength(1);
      for (const refused of raced.filter((r) => r.status !== 201)) {
        expect(refused.status).toBe(429);
        expect(messageOf(refused)).toMatch(/your quota allows at most 1 server at once \(\d running\)\. Stop one of your servers first\.$/);
        expect(refused.headers.get('retry-after')).toBeNull();
      }
      const started = ['a', 'b', 'c'][raced.findIndex((r) => r.status === 201)]!;
      // A refused start leaves no server behind.
      const servers = ((await as('carol', 'GET', '/users/carol')).body as { servers: Record<string, unknown> }).servers;
      expect(Object.keys(servers)).toEqual([started]);
      expect((await as('carol', 'DELETE', `/users/carol/servers/${started}`)).status).toBe(204);
      const setAudit = await auditOf('quota.set', 'carol');
      expect(setAudit[0]!.details).toMatchObject({ old: null, new: { max_servers: 1, window_hours: 24 } });
    });

    it('holds a class quota to servers started with that class\'s profiles', async () => {
      expect((await api(hub.url, admin, 'PUT', '/quotas/groups/cls', { window_hours: 24, server_hours: 0.0001 })).status).toBe(200);
      const refused = await as('bob', 'POST', '/users/bob/server', { profile: 'cls/small' });
      expect(refused.status).toBe(429);
      expect(messageOf(refused)).toMatch(/class cls's quota allows 0\.0001 server-hours per day \(\d/);
      expect(messageOf(refused)).toMatch(/It frees up at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      // A server started with another class's profile does not count against it.
      expect((await api(hub.url, admin, 'POST', '/groups/other', { users: ['bob'] })).status).toBe(201);
      expect((await api(hub.url, admin, 'PUT', '/groups/other/properties', { profiles: [{ slug: 'big', display_name: 'Big' }] })).status).toBe(200);
      expect((await as('bob', 'POST', '/users/bob/server', { profile: 'other/big' })).status).toBe(201);
      expect((await as('bob', 'DELETE', '/users/bob/server')).status).toBe(204);
      expect((await api(hub.url, admin, 'DELETE', '/quotas/groups/cls')).status).toBe(204);
      expect((await auditOf('quota.delete', 'cls'))).toHaveLength(1);
    });

    it('warns a running server that reaches its quota, then stops it after the grace period', async () => {
      expect((await as('eve', 'POST', '/users/eve/server')).status).toBe(201);
      expect((await api(hub.url, admin, 'PUT', '/quotas/users/eve', { window_hours: 1, server_hours: 1 / 3600 })).status).toBe(200);
      const warned = await eventually(async () => (await usage('eve')).running[0]?.quota_warning ?? null, 15_000);
      expect(warned.quota).toMatch(/^your quota: 0\.00028 server-hours per hour \(\d/);
      expect((await auditOf('quota.warning', 'eve'))[0]!.details).toMatchObject({ server: '' });
      await eventually(async () => (await usage('eve')).running.length === 0 || null, 20_000);
      const stops = await auditOf('server.stop', 'eve');
      expect(stops.some((r) => r.details.reason === 'quota' && r.details.outcome === 'stopped')).toBe(true);
      const again = await as('eve', 'POST', '/users/eve/server');
      expect(again.status).toBe(429);
      expect(messageOf(again)).toMatch(/^Quota reached: your quota allows/);
      const model = await usage('eve');
      expect(model.quotas[0]!.exceeded).not.toHaveLength(0);
      expect(Date.parse(model.quotas[0]!.frees_at!)).toBeGreaterThan(Date.now());
      // Raised, the quota lets the user start again.
      expect((await api(hub.url, admin, 'PUT', '/quotas/users/eve', { window_hours: 1, server_hours: 5 })).status).toBe(200);
      expect((await as('eve', 'POST', '/users/eve/server')).status).toBe(201);
      expect((await as('eve', 'DELETE', '/users/eve/server')).status).toBe(204);
    }, 60_000);
  });
}
