import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { api, Browser, HubProcess, xsrfFromHtml } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { createDatabase } from '../helpers/postgres.js';

/**
 * One-time links (issue 16 items 2, 3 and 7, "Links carry no power of their own"): invitation links are bound to
 * the account they were made for and die with its deletion, an admin-flag change or a new password; the setup link
 * dies once an admin exists and never sets an existing account's password; only admins (or holders of
 * admin:users:passwords) make links for others. Against real hubs on both state DB dialects.
 */
const postgresUrl = inject('postgresUrl');
const hasPostgres = requireService('PostgreSQL', postgresUrl !== null);
const DEAD = 'This link is no longer valid; ask an admin for a new one.';

const dialects = [
  { name: 'sqlite', skip: false, env: async (): Promise<Record<string, string>> => ({}) },
  {
    name: 'postgres', skip: !hasPostgres,
    env: async (): Promise<Record<string, string>> => ({ LABHUB_DB_URL: await createDatabase(postgresUrl!, `links_${Date.now()}_${Math.floor(Math.random() * 1e6)}`) }),
  },
];

const ROLES = '[{name: useradmin, scopes: ["admin:users"], users: [helper]}, {name: helpdesk, scopes: ["admin:users", "admin:users:passwords!group=class1"], users: [desk]}]';

/** A person opening a link in a fresh browser and submitting its form. */
async function useLink(hub: HubProcess, url: string, fields: { username?: string; password: string }): Promise<{ page: Response; result: Response; html: string; browser: Browser }> {
  const link = new URL(url);
  const browser = new Browser(hub.url);
  const page = await browser.navigate(link.pathname + link.search);
  const pageHtml = await page.text();
  // A dead link's page has no form; post with the XSRF token of the login page, as an attacker holding the link would.
  const xsrf = page.status === 200 ? xsrfFromHtml(pageHtml) : xsrfFromHtml(await (await browser.navigate('/hub/login')).text());
  const result = await browser.navigate(link.pathname + link.search, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...(fields.username !== undefined && { username: fields.username }), password: fields.password, password2: fields.password, _xsrf: xsrf }).toString(),
  });
  return { page, result, html: await result.text(), browser };
}

async function expectDead(hub: HubProcess, url: string, fields: { username?: string; password: string }): Promise<void> {
  const link = new URL(url);
  const shown = await new Browser(hub.url).navigate(link.pathname + link.search);
  expect(shown.status).toBe(404);
  expect(await shown.text()).toContain(DEAD);
  const { result, html, browser } = await useLink(hub, url, fields);
  expect(result.status).toBe(404);
  expect(html).toContain(DEAD);
  expect(browser.cookie('labhub-session', '/hub/')).toBeUndefined();
}

async function loginWorks(hub: HubProcess, name: string, password: string): Promise<boolean> {
  const browser = new Browser(hub.url);
  await browser.login(name, password);
  return browser.visited.at(-1) === '/hub/home';
}

for (const dialect of dialects) {
  describe.skipIf(dialect.skip)(`invitation links on ${dialect.name}`, () => {
    let hub: HubProcess;
    let admin = '';
    let helper = '';
    let desk = '';
    const invite = async (token: string, name: string) => api(hub.url, token, 'POST', `/users/${name}/invitation`);
    const linkFor = async (name: string) => {
      const made = await invite(admin, name);
      expect(made.status).toBe(201);
      return (made.body as { url: string }).url;
    };
    const user = async (name: string) => api(hub.url, admin, 'GET', `/users/${name}`);

    beforeAll(async () => {
      hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_ROLES: ROLES, ...(await dialect.env()) } });
      await hub.start();
      expect((await hub.cli(['users', 'add', 'root', '--admin'])).status).toBe(0);
      admin = (await hub.cli(['token', 'root'])).stdout.trim();
      helper = (await hub.cli(['token', 'helper'])).stdout.trim();
      desk = (await hub.cli(['token', 'desk'])).stdout.trim();
      expect(helper).not.toBe('');
      expect(desk).not.toBe('');
    });
    afterAll(async () => {
      await hub.cleanup();
    });

    it('a link made for an admin who is then deleted re-creates nobody', async () => {
      expect((await api(hub.url, admin, 'POST', '/users/eve', { admin: true })).status).toBe(201);
      const url = await linkFor('eve');
      expect((await api(hub.url, admin, 'DELETE', '/users/eve')).status).toBe(204);
      await expectDead(hub, url, { password: 'eve-takes-over-1' });
      expect((await user('eve')).status).toBe(404);
      // A new account of the same name is another account: the old link is not its link either.
      expect((await api(hub.url, admin, 'POST', '/users/eve')).status).toBe(201);
      await expectDead(hub, url, { password: 'eve-takes-over-2' });
      expect(await loginWorks(hub, 'eve', 'eve-takes-over-2')).toBe(false);
    });

    it('a link made while the account was an admin dies when admin is taken away', async () => {
      expect((await api(hub.url, admin, 'POST', '/users/fay', { admin: true })).status).toBe(201);
      const url = await linkFor('fay');
      expect((await api(hub.url, admin, 'PATCH', '/users/fay', { admin: false })).status).toBe(200);
      await expectDead(hub, url, { password: 'fay-password-1' });
      expect((await user('fay')).body).toMatchObject({ admin: false });
      // Giving admin back does not revive it.
      expect((await api(hub.url, admin, 'PATCH', '/users/fay', { admin: true })).status).toBe(200);
      await expectDead(hub, url, { password: 'fay-password-1' });
    });

    it('a live link sets only the password: admin rights stay the account\'s', async () => {
      expect((await api(hub.url, admin, 'POST', '/users/gus')).status).toBe(201);
      const url = await linkFor('gus');
      const { page, result, browser } = await useLink(hub, url, { password: 'gus-password-1' });
      expect(page.status).toBe(200);
      expect(result.status).toBe(200);
      expect(browser.visited.at(-1)).toBe('/hub/home');
      expect((await user('gus')).body).toMatchObject({ admin: false });
      expect(await loginWorks(hub, 'gus', 'gus-password-1')).toBe(true);
      await expectDead(hub, url, { password: 'gus-password-2' });
    });

    it('setting the password (through one link) revokes the account\'s other links', async () => {
      expect((await api(hub.url, admin, 'POST', '/users/hal')).status).toBe(201);
      const first = await linkFor('hal');
      const second = await linkFor('hal');
      expect((await useLink(hub, first, { password: 'hal-password-1' })).result.status).toBe(200);
      await expectDead(hub, second, { password: 'hal-password-2' });
      expect(await loginWorks(hub, 'hal', 'hal-password-1')).toBe(true);
    });

    it('a renamed account keeps its link (bound to the account, not the name); the name\'s new owner gets nothing', async () => {
      expect((await api(hub.url, admin, 'POST', '/users/ivy')).status).toBe(201);
      const url = await linkFor('ivy');
      expect((await api(hub.url, admin, 'PATCH', '/users/ivy', { name: 'ivy2' })).status).toBe(200);
      expect((await api(hub.url, admin, 'POST', '/users/ivy')).status).toBe(201);
      const { html } = await useLink(hub, url, { password: 'ivy2-password' });
      expect(html).toContain('ivy2');
      expect(await loginWorks(hub, 'ivy2', 'ivy2-password')).toBe(true);
      expect(await loginWorks(hub, 'ivy', 'ivy2-password')).toBe(false);
    });

    it('admin:users alone cannot make a link that sets another user\'s password', async () => {
      expect((await api(hub.url, admin, 'POST', '/users/jo')).status).toBe(201);
      const refused = await invite(helper, 'jo');
      expect(refused.status).toBe(403);
      expect((refused.body as { message: string }).message).toMatch(/Only admins, or holders of the admin:users:passwords scope/);
      // helper can still do what admin:users is for.
      expect((await api(hub.url, helper, 'PATCH', '/users/jo', { name: 'joe' })).status).toBe(200);
    });

    it('admin:users:passwords works within its filter and never for an admin', async () => {
      for (const name of ['kim', 'lou']) expect((await api(hub.url, admin, 'POST', `/users/${name}`)).status).toBe(201);
      expect((await api(hub.url, admin, 'POST', '/groups/class1', { users: ['kim'] })).status).toBe(201);
      expect((await invite(desk, 'kim')).status).toBe(201);
      expect((await invite(desk, 'lou')).status).toBe(403);
      expect((await api(hub.url, admin, 'POST', '/users/max', { admin: true })).status).toBe(201);
      expect((await api(hub.url, admin, 'POST', '/groups/class1/users', { users: ['max'] })).status).toBe(200);
      const adminTarget = await invite(desk, 'max');
      expect(adminTarget.status).toBe(403);
      expect((adminTarget.body as { message: string }).message).toBe('Only admins can invite an admin');
    });

    it('two concurrent uses of one link: exactly one sets the password', async () => {
      expect((await api(hub.url, admin, 'POST', '/users/ned')).status).toBe(201);
      const url = await linkFor('ned');
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => useLink(hub, url, { password: `ned-password-${i}` })));
      const won = results.filter((r) => r.result.status === 200);
      expect(won).toHaveLength(1);
      for (const r of results.filter((x) => x !== won[0])) expect(r.result.status).toBe(404);
      const winner = results.indexOf(won[0]!);
      expect(await loginWorks(hub, 'ned', `ned-password-${winner}`)).toBe(true);
    });
  });
}

describe('the first-admin setup link', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant' } });
  let setupLink = '';

  beforeAll(async () => {
    await hub.start();
    setupLink = (await hub.setupLink())!;
    expect(setupLink, hub.output.slice(-2000)).toBeTruthy();
  });
  afterAll(async () => {
    await hub.cleanup();
  });

  it('never sets the password of an existing account, even before any admin exists', async () => {
    expect((await hub.cli(['users', 'add', 'plain', '--password-stdin'], 'plain-password-1\n')).status).toBe(0);
    const { result, html } = await useLink(hub, setupLink, { username: 'plain', password: 'taken-over-1' });
    expect(result.status).toBe(400);
    expect(html).toContain('already exists');
    expect(await loginWorks(hub, 'plain', 'plain-password-1')).toBe(true);
    expect(await loginWorks(hub, 'plain', 'taken-over-1')).toBe(false);
  });

  it('dies as soon as an admin exists: submitting an admin\'s name changes nothing', async () => {
    expect((await hub.cli(['users', 'add', 'boss', '--admin', '--password-stdin'], 'boss-password-1\n')).status).toBe(0);
    await expectDead(hub, setupLink, { username: 'boss', password: 'taken-over-2' });
    await expectDead(hub, setupLink, { username: 'newcomer', password: 'taken-over-3' });
    expect(await loginWorks(hub, 'boss', 'boss-password-1')).toBe(true);
    expect(await loginWorks(hub, 'boss', 'taken-over-2')).toBe(false);
    expect((await hub.cli(['users', 'list'])).stdout).toBe('boss\tadmin\nplain\n');
  });
});
