import SQLite from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { requireService } from '../helpers/jupyter.js';
import { createDatabase } from '../helpers/postgres.js';
import { api, Browser, HubProcess, xsrfFromHtml } from '../helpers/hub.js';

/**
 * The audit log on a real hub, on SQLite and on PostgreSQL: every kind of action lands with its actor and target,
 * nothing secret the test typed or was given ever reaches the table, the API filters, pages and refuses, and a
 * record committed with its action survives kill -9.
 */
interface AuditItem {
  id: number;
  time: string;
  action: string;
  actor: { kind: string; name: string | null; uid: string | null };
  target: { kind: string; name: string | null; uid: string | null } | null;
  source: string | null;
  details: Record<string, unknown>;
}

const postgresUrl = inject('postgresUrl');
const ADMIN_PASSWORD = 'admin-pass-Quokka-7781';
const TYPED_PASSWORD = 'wrong-pass-Wombat-5512';
/** A token-shaped string typed into the username field and into a token note. */
const PASTED_SECRET = 'f3a9c2e1d4b5a6978877665544332211aabbccdd';
const BOB_PASSWORD = 'bob-pass-Numbat-9043';
const BOB_NEW_PASSWORD = 'bob-new-pass-Bilby-2210';

for (const dialect of ['sqlite', 'postgres'] as const) {
  const skip = dialect === 'postgres' && !requireService('PostgreSQL', postgresUrl !== null);
  describe.skipIf(skip)(`the audit log on ${dialect}`, () => {
    let hub: HubProcess;
    let dbUrl = '';
    let token = '';
    const secrets: string[] = [ADMIN_PASSWORD, TYPED_PASSWORD, PASTED_SECRET, BOB_PASSWORD, BOB_NEW_PASSWORD];

    const audit = async (query = '', bearer = token) => api(hub.url, bearer, 'GET', `/audit${query}`);
    const items = async (query = '') => {
      const res = await audit(query);
      expect(res.status).toBe(200);
      return res.body as AuditItem[];
    };

    /** Every row of the table, as text, read from the DB itself. */
    async function dump(): Promise<string> {
      if (dialect === 'sqlite') {
        const db = new SQLite(hub.sqlitePath, { readonly: true });
        try {
          return JSON.stringify(db.prepare('select * from audit_events').all());
        } finally {
          db.close();
        }
      }
      const client = new pg.Client({ connectionString: dbUrl });
      await client.connect();
      try {
        return JSON.stringify((await client.query('select * from audit_events')).rows);
      } finally {
        await client.end();
      }
    }

    async function tryUpdate(): Promise<unknown> {
      if (dialect === 'sqlite') {
        const db = new SQLite(hub.sqlitePath);
        try {
          return db.prepare("update audit_events set actor_name = 'mallory'").run();
        } finally {
          db.close();
        }
      }
      const client = new pg.Client({ connectionString: dbUrl });
      await client.connect();
      try {
        return await client.query("update audit_events set actor_name = 'mallory'");
      } finally {
        await client.end();
      }
    }

    beforeAll(async () => {
      const env: Record<string, string> = {
        LABHUB_SPAWNER__KIND: 'instant',
        LABHUB_ROLES: JSON.stringify([{ name: 'teacher', scopes: ['read:audit!group=cls'], users: ['teach'] }]),
      };
      if (dialect === 'postgres') {
        dbUrl = await createDatabase(postgresUrl!, `audit_${Date.now()}`);
        env.LABHUB_DB_URL = dbUrl;
      }
      hub = new HubProcess({ env });
      await hub.start();
      expect((await hub.cli(['users', 'add', 'ada', '--admin', '--password-stdin'], `${ADMIN_PASSWORD}\n`)).status).toBe(0);
      token = (await hub.cli(['token', 'ada'])).stdout.trim();
      secrets.push(token);
    }, 60_000);
    afterAll(() => hub?.cleanup());

    it('records every kind of action with its actor and target', async () => {
      const browser = new Browser(hub.url);
      expect((await browser.login('ghost', TYPED_PASSWORD)).status).toBe(403);
      expect((await browser.login(PASTED_SECRET, TYPED_PASSWORD)).status).toBe(403);
      expect((await browser.login('ada', ADMIN_PASSWORD)).status).toBe(200);

      expect((await api(hub.url, token, 'POST', '/users/bob')).status).toBe(201);
      expect((await api(hub.url, token, 'POST', '/users/carol')).status).toBe(201);
      expect((await api(hub.url, token, 'PATCH', '/users/carol', { admin: true })).status).toBe(200);
      const made = await api(hub.url, token, 'POST', '/users/bob/tokens', { note: `pasted ${PASTED_SECRET}`, expires_in: 3600 });
      expect(made.status).toBe(201);
      const bobToken = made.body as { id: string; token: string };
      secrets.push(bobToken.token);
      expect((await api(hub.url, token, 'DELETE', `/users/bob/tokens/${bobToken.id}`)).status).toBe(204);
      expect((await api(hub.url, token, 'POST', '/groups/cls', { users: ['bob'] })).status).toBe(201);
      expect((await api(hub.url, token, 'PUT', '/groups/cls/properties', { colour: 'green' })).status).toBe(200);
      expect((await api(hub.url, token, 'PUT', '/groups/cls/properties', { colour: 'blue' })).status).toBe(200);
      expect((await api(hub.url, token, 'POST', '/users/bob/server')).status).toBe(201);
      expect((await api(hub.url, token, 'DELETE', '/users/bob/server')).status).toBe(204);

      const invitation = await api(hub.url, token, 'POST', '/users/bob/invitation');
      expect(invitation.status).toBe(201);
      const url = (invitation.body as { url: string }).url;
      const code = new URL(url).searchParams.get('code')!;
      secrets.push(code);
      const bobBrowser = new Browser(hub.url);
      const form = await bobBrowser.navigate(`/hub/invite?code=${code}`);
      const used = await bobBrowser.navigate(`/hub/invite?code=${code}`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _xsrf: xsrfFromHtml(await form.text()), password: BOB_PASSWORD, password2: BOB_PASSWORD }).toString(),
      });
      expect(used.status).toBe(200);
      const passwordPage = await bobBrowser.navigate('/hub/password');
      const changed = await bobBrowser.navigate('/hub/password', {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _xsrf: xsrfFromHtml(await passwordPage.text()), current: BOB_PASSWORD, password: BOB_NEW_PASSWORD, password2: BOB_NEW_PASSWORD }).toString(),
      });
      expect(changed.status).toBe(200);
      const logoutXsrf = xsrfFromHtml(await (await browser.navigate('/hub/home')).text());
      await browser.navigate('/hub/logout', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _xsrf: logoutXsrf }).toString() });
      expect((await api(hub.url, token, 'DELETE', '/users/carol')).status).toBe(204);

      const log = await items();
      const one = (action: string, where: (i: AuditItem) => boolean = () => true) => {
        const found = log.filter((i) => i.action === action && where(i));
        expect(found, `${action} in ${JSON.stringify(log.map((i) => i.action))}`).not.toHaveLength(0);
        return found[0]!;
      };
      const failure = one('login.failure', (i) => i.target?.name === 'ghost');
      expect(failure.actor.kind).toBe('system');
      expect(failure.details).toMatchObject({ authenticator: 'native', reason: 'rejected' });
      expect(failure.source).toBe('127.0.0.1');
      expect(one('login.failure', (i) => i.target?.name !== 'ghost').target!.name).toBe('[redacted]');
      expect(one('login.success', (i) => i.actor.name === 'ada').details).toEqual({ authenticator: 'native' });
      expect(one('logout').actor.name).toBe('ada');
      expect(one('user.create', (i) => i.target?.name === 'bob').actor).toMatchObject({ kind: 'user', name: 'ada' });
      expect(one('user.admin').target!.name).toBe('carol');
      const tokenCreated = one('token.create');
      expect(tokenCreated.target!.name).toBe('bob');
      expect(tokenCreated.details.note).toBe('[redacted]');
      expect(String(one('token.revoke').details.token_id)).toBe(bobToken.id.replace(/^a/, ''));
      expect(one('group.change', (i) => i.details.change === 'create').details.users).toEqual(['bob']);
      expect(one('class.change', (i) => (i.details.new as { colour?: string }).colour === 'blue').details.old).toEqual({ colour: 'green' });
      expect(one('server.start', (i) => i.details.outcome === 'requested').actor.name).toBe('ada');
      expect(one('server.start', (i) => i.details.outcome === 'started').target!.uid).toBeTruthy();
      expect(one('server.stop', (i) => i.details.outcome === 'stopped').actor.name).toBe('ada');
      expect(one('link.create').target!.name).toBe('bob');
      expect(one('link.use').actor.name).toBe('bob');
      expect(one('user.delete').target!.name).toBe('carol');
      expect(one('user.password').actor.name).toBe('bob');

      // A failed sign-in makes no account.
      expect((await api(hub.url, token, 'GET', '/users/ghost')).status).toBe(404);
    });

    it('never holds a token, password or link code', async () => {
      const table = await dump();
      expect(table).toContain('login.success');
      for (const secret of secrets) expect(table).not.toContain(secret);
      const exported = await fetch(`${hub.url}/hub/api/audit?format=jsonl`, { headers: { Authorization: `token ${token}` } });
      const text = await exported.text();
      for (const secret of secrets) expect(text).not.toContain(secret);
    });

    it('is append-only in the DB itself', async () => {
      await expect(Promise.resolve().then(tryUpdate)).rejects.toThrow(/append-only/);
    });

    it('paginates like JupyterHub and filters by user, kind and time', async () => {
      const all = await items();
      const page = await fetch(`${hub.url}/hub/api/audit?limit=2&offset=1`, { headers: { Authorization: `token ${token}`, Accept: 'application/jupyterhub-pagination+json' } });
      const body = await page.json() as { items: AuditItem[]; _pagination: { offset: number; limit: number; total: number; next: { offset: number } | null } };
      expect(body.items.map((i) => i.id)).toEqual(all.slice(1, 3).map((i) => i.id));
      expect(body._pagination).toMatchObject({ offset: 1, limit: 2, total: all.length, next: { offset: 3 } });

      const logins = await items('?kind=login');
      expect(logins.length).toBeGreaterThan(0);
      expect(logins.every((i) => i.action.startsWith('login.'))).toBe(true);
      expect((await items('?kind=login.success')).every((i) => i.action === 'login.success')).toBe(true);
      const bobs = await items('?user=bob');
      expect(bobs.length).toBeGreaterThan(0);
      expect(bobs.every((i) => i.actor.name === 'bob' || i.target?.name === 'bob')).toBe(true);
      const newest = all[0]!.time;
      expect(await items(`?since=${encodeURIComponent(new Date(Date.parse(newest) + 1000).toISOString())}`)).toEqual([]);
      expect((await items(`?until=${encodeURIComponent(newest)}`)).length).toBeLessThan(all.length);

      const jsonl = await fetch(`${hub.url}/hub/api/audit?kind=user`, { headers: { Authorization: `token ${token}`, Accept: 'application/x-ndjson' } });
      expect(jsonl.headers.get('content-type')).toMatch(/application\/x-ndjson/);
      const lines = (await jsonl.text()).trim().split('\n').map((l) => JSON.parse(l) as AuditItem);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.every((l) => l.action.startsWith('user.'))).toBe(true);
    });

    it('answers nonsense queries with a 400 JSON error', async () => {
      for (const query of ['?kind=%25', '?kind=login%25', '?since=yesterday', '?since=2026-01-01', '?limit=x', '?offset=-x', '?format=xml',
        '?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z', `?user=${'x'.repeat(2000)}`]) {
        const res = await audit(query);
        expect(res.status, query).toBe(400);
        expect(res.body).toMatchObject({ status: 400 });
      }
    });

    it('refuses a user without read:audit, and bounds a teacher to their class', async () => {
      const bobToken = (await hub.cli(['token', 'bob'])).stdout.trim();
      const refused = await audit('', bobToken);
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ status: 403 });

      const teachToken = (await hub.cli(['token', 'teach'])).stdout.trim();
      const seen = await audit('', teachToken);
      expect(seen.status).toBe(200);
      const visible = seen.body as AuditItem[];
      expect(visible.some((i) => i.target?.name === 'bob')).toBe(true);
      expect(visible.some((i) => i.target?.kind === 'group' && i.target.name === 'cls')).toBe(true);
      for (const i of visible) {
        const about = [i.actor.kind === 'user' ? i.actor.name : null, i.target?.name];
        expect(about.includes('bob') || about.includes('cls'), JSON.stringify(i)).toBe(true);
      }
      expect(await audit('?user=ada', teachToken).then((r) => (r.body as AuditItem[]).filter((i) => i.target?.name === 'ada'))).toEqual([]);
      expect((await audit('?user=carol', teachToken)).body).toEqual([]);
    });

    it('shows the log on the admin page, filtered, and only to admins', async () => {
      const admin = new Browser(hub.url);
      expect((await admin.login('ada', ADMIN_PASSWORD)).status).toBe(200);
      const page = await admin.navigate('/hub/admin/audit?kind=user');
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('user.create');
      expect(html).not.toContain('login.success');
      expect(html).toContain('href="/hub/admin/audit"');
      expect((await admin.navigate('/hub/admin/audit?since=yesterday')).status).toBe(400);
      expect((await admin.navigate('/hub/admin/audit?kind=%25')).status).toBe(400);
      const bob = new Browser(hub.url);
      expect((await bob.login('bob', BOB_NEW_PASSWORD)).status).toBe(200);
      expect((await bob.navigate('/hub/admin/audit')).status).toBe(403);
    });

    it('keeps the record of an API write when the hub is killed right after it', async () => {
      expect((await api(hub.url, token, 'POST', '/users/dave')).status).toBe(201);
      hub.kill9();
      await hub.start();
      const created = await items('?kind=user.create&user=dave');
      expect(created).toHaveLength(1);
      expect(created[0]!.actor.name).toBe('ada');
    });
  });
}
