import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';
import { createClassInBrowser, expectAccessible, logIn, screenshot, watchCsp } from '../helpers/pages.js';

/**
 * The web UI in Debian's Chromium against a real hub with real jupyterhub-singleuser servers: the admin pages
 * (users, classes with profiles, active servers), the token page with the REST API, a student's home page with
 * the class's profiles, live progress, a notebook cell run in Jupyter, the error pages; axe-core on every page.
 */
const singleuser = findSingleuser(3);
const ready = requireService('Chromium', chromiumAvailable()) && requireService('jupyterhub-singleuser 3.x', singleuser !== null);

describe.skipIf(!ready)('the web UI in Chromium', () => {
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__CMD: JSON.stringify([singleuser]), LABHUB_SPAWNER__ALLOW_ROOT: 'true',
      LABHUB_AUTHENTICATOR__KIND: 'dummy', LABHUB_AUTHENTICATOR__PASSWORD: 'test-password',
      LABHUB_CLASSES__SHARED_VOLUMES: '[class-bio101-materials]',
    },
  });
  let browser: Browser;
  let adminContext: BrowserContext;
  let admin: Page;
  let adminCsp: string[];

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'ada', '--admin'])).status).toBe(0);
    browser = await launchChromium();
    adminContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    admin = await adminContext.newPage();
    admin.on('dialog', (d) => void d.accept());
    adminCsp = watchCsp(admin);
    await logIn(admin, hub.url, 'ada', 'test-password');
  });

  afterAll(async () => {
    await browser?.close();
    await hub.cleanup();
  });

  it('creates a token on the token page, uses it with the REST API, and revokes it', async () => {
    await admin.getByRole('link', { name: 'Tokens' }).click();
    await admin.waitForURL(/\/hub\/token$/);
    await expectAccessible(admin);
    await admin.getByLabel('Note').fill('notebook script');
    await admin.getByLabel('Expires after').selectOption({ label: '7 days' });
    await admin.getByLabel('Scopes').fill('read:users:name');
    await admin.getByRole('button', { name: 'Create token' }).click();
    const token = await admin.getByLabel(/^Token/).inputValue();
    expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);

    const me = await api(hub.url, token, 'GET', '/user');
    expect(me.status).toBe(200);
    expect((me.body as { name: string }).name).toBe('ada');
    expect((await api(hub.url, token, 'GET', '/users/ada/tokens')).status).toBe(403);

    // Shown once: a reload lists it by its note with its last use, without the value.
    await admin.goto(`${hub.url}/hub/token`);
    expect(await admin.content()).not.toContain(token);
    const row = admin.getByRole('row', { name: /notebook script/ });
    await expect.poll(() => row.textContent()).toMatch(/read:users:name/);
    expect(await row.locator('td').nth(3).textContent()).not.toMatch(/Never/);
    await screenshot(admin, 'tokens');

    await row.getByRole('button', { name: /Revoke/ }).click();
    await admin.waitForURL(/\/hub\/token$/);
    expect(await admin.getByRole('row', { name: /notebook script/ }).count()).toBe(0);
    expect((await api(hub.url, token, 'GET', '/user')).status).toBe(403);
  });

  it('creates a class with a profile, adds users to it in bulk, and finds them again', async () => {
    await createClassInBrowser(admin, hub.url, {
      name: 'bio101', slug: 'python', displayName: 'Python (DataLab)', description: 'pandas, MQTT and database clients',
      image: 'labhub/notebook-debian:latest', cpu: '1', memory: '2G',
    });
    // A bad value is refused with a message that names it.
    await admin.getByLabel('Short name').fill('big');
    await admin.getByLabel('Memory limit').fill('lots');
    await admin.getByRole('button', { name: 'Save profile' }).click();
    await expect.poll(() => admin.getByRole('alert').textContent()).toMatch(/mem_limit/);
    await admin.getByLabel('Shared volume', { exact: true }).fill('class-bio101-materials');
    await admin.getByRole('button', { name: 'Save settings' }).click();
    await admin.waitForURL(/done=/);

    await admin.getByRole('link', { name: 'Users', exact: true }).click();
    await admin.getByLabel('Usernames').fill('bea, carl\ndora');
    await admin.getByLabel('Put them in class').selectOption('bio101');
    await admin.getByRole('button', { name: 'Add users' }).click();
    await expect.poll(() => admin.getByRole('status').first().textContent()).toMatch(/Added 3 users to bio101/);

    const group = await api(hub.url, (await hub.cli(['token', 'ada'])).stdout.trim(), 'GET', '/groups/bio101');
    expect((group.body as { users: string[]; properties: Record<string, unknown> }).users).toEqual(['bea', 'carl', 'dora']);
    expect((group.body as { properties: Record<string, unknown> }).properties).toEqual({
      profiles: [{ slug: 'python', display_name: 'Python (DataLab)', description: 'pandas, MQTT and database clients', image: 'labhub/notebook-debian:latest', cpu_limit: 1, mem_limit: '2G' }],
      default_profile: 'python', shared_volume: 'class-bio101-materials',
    });

    await admin.getByLabel('Search by name').fill('car');
    await admin.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => admin.locator('tbody tr').count()).toBe(1);
    expect(await admin.locator('tbody tr').textContent()).toMatch(/carl[\s\S]*bio101/);
    await admin.goto(`${hub.url}/hub/admin/users`);
    await expectAccessible(admin);
    await screenshot(admin, 'admin-users');
    await admin.goto(`${hub.url}/hub/admin/classes/bio101`);
    await expectAccessible(admin);
    await screenshot(admin, 'admin-class');
    await admin.goto(`${hub.url}/hub/admin/classes`);
    await expectAccessible(admin);
    await screenshot(admin, 'admin-classes');

    // Editing a user: remove dora from the class, then delete her.
    await admin.goto(`${hub.url}/hub/admin/users/dora`);
    await expectAccessible(admin);
    await admin.getByLabel('bio101').uncheck();
    await admin.getByRole('button', { name: 'Save' }).click();
    await admin.waitForURL(/done=/);
    expect(await admin.getByLabel('bio101').isChecked()).toBe(false);
    await screenshot(admin, 'admin-user');
    await admin.getByRole('button', { name: 'Delete dora' }).click();
    await admin.waitForURL(/\/hub\/admin\/users\?done=/);
    expect(await admin.getByRole('link', { name: 'dora' }).count()).toBe(0);
    expect(adminCsp).toEqual([]);
  });

  it('lets a class member start the class profile, follow progress, and run a cell in Jupyter', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const csp = watchCsp(page);
    await logIn(page, hub.url, 'bea', 'test-password');
    const profile = page.getByRole('radio', { name: /Python \(DataLab\)/ });
    expect(await profile.isChecked()).toBe(true);
    // The local spawner cannot apply the profile's image and limits, and the page says so instead of listing them.
    expect(await page.locator('.profiles .hint').textContent()).toMatch(/limits and shared volume are not applied/);
    expect(await page.locator('.profile-specs').count()).toBe(0);
    await expectAccessible(page);
    await screenshot(page, 'home');

    // Keyboard only: tab to the Start button and press Enter.
    const start = page.getByRole('button', { name: 'Start' });
    for (let i = 0; i < 30 && !(await start.evaluate((el) => (el as unknown as { matches(s: string): boolean }).matches(':focus'))); i++) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/hub\/spawn-pending\/bea$/);
    await expectAccessible(page);
    await screenshot(page, 'spawn-pending');
    await page.waitForURL(/\/user\/bea\/(tree|lab)/, { timeout: 60_000 });
    expect(await page.locator('#progress-bar').count()).toBe(0);

    // A notebook made through Jupyter's contents API, opened in the classic UI, a cell run, its output read.
    const created = await page.evaluate(async () => {
      const { cookie } = (globalThis as unknown as { document: { cookie: string } }).document;
      const xsrf = /(?:^|; )_xsrf=([^;]*)/.exec(cookie)?.[1] ?? '';
      const res = await fetch('/user/bea/api/contents/hello.ipynb', {
        method: 'PUT', headers: { 'X-XSRFToken': decodeURIComponent(xsrf), 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'notebook' }),
      });
      return res.status;
    });
    expect(created).toBe(201);
    await page.goto(`${hub.url}/user/bea/notebooks/hello.ipynb`);
    await page.locator('#kernel_indicator_icon.kernel_idle_icon').waitFor({ timeout: 60_000 });
    await page.locator('.CodeMirror').first().click();
    await page.keyboard.type('print(6 * 7)');
    await page.keyboard.press('Shift+Enter');
    await expect.poll(() => page.locator('.output_subarea').first().textContent(), { timeout: 30_000 }).toMatch(/42/);
    expect(csp).toEqual([]);

    const res = await api(hub.url, (await hub.cli(['token', 'ada'])).stdout.trim(), 'GET', '/users/bea');
    expect((res.body as { servers: Record<string, { user_options: unknown }> }).servers['']?.user_options).toEqual({ profile: 'bio101/python' });
    await context.close();
  });

  it('shows active servers to the admin, who stops one', async () => {
    await admin.goto(`${hub.url}/hub/admin/servers`);
    const row = admin.getByRole('row', { name: /bea/ });
    expect(await row.textContent()).toMatch(/running[\s\S]*bio101\/python/);
    await expectAccessible(admin);
    await screenshot(admin, 'admin-servers');
    await row.getByRole('button', { name: /Stop/ }).click();
    await admin.waitForURL(/\/hub\/admin\/servers$/);
    await eventually(async () => !(await admin.getByRole('row', { name: /bea/ }).count()) || admin.reload().then(() => false), 20_000);

    await admin.getByRole('link', { name: 'Credential leases' }).click();
    await admin.waitForURL(/\/hub\/admin\/leases$/);
    expect(await admin.locator('main').textContent()).toMatch(/No credential lease is active/);
    await expectAccessible(admin);
    await screenshot(admin, 'admin-leases');

    await admin.getByRole('link', { name: 'Audit log' }).click();
    await admin.waitForURL(/\/hub\/admin\/audit$/);
    expect(await admin.getByRole('row', { name: /server\.stop/ }).first().textContent()).toMatch(/ada[\s\S]*bea/);
    await admin.getByLabel('Kind').selectOption('server');
    await admin.getByRole('button', { name: 'Filter' }).click();
    await admin.waitForURL(/kind=server/);
    expect(await admin.getByRole('row', { name: /login\./ }).count()).toBe(0);
    await expectAccessible(admin);
    await screenshot(admin, 'admin-audit');
  });

  it('refuses a profile outside the user\'s classes, and shows error pages in the same look', async () => {
    const token = (await hub.cli(['token', 'carl'])).stdout.trim();
    const bad = await api(hub.url, token, 'POST', '/users/carl/server', { profile: 'chem201/python' });
    expect(bad.status).toBe(403);
    expect((bad.body as { message: string }).message).toMatch(/not offered/);
    expect((await api(hub.url, token, 'POST', '/users/carl/server', { profile: 42 })).status).toBe(400);

    const missing = await admin.goto(`${hub.url}/hub/no-such-page`);
    expect(missing?.status()).toBe(404);
    await expectAccessible(admin);
    await screenshot(admin, 'error-404');
    const proxyError = await admin.goto(`${hub.url}/hub/error/503`);
    expect(proxyError?.status()).toBe(503);
    expect(await admin.locator('h1').textContent()).toMatch(/503/);
    await expectAccessible(admin);
    await screenshot(admin, 'error-503');
    const denied = await admin.goto(`${hub.url}/hub/admin/users/nobody`);
    expect(denied?.status()).toBe(404);
    expect(denied?.headers()['content-security-policy']).toMatch(/frame-ancestors 'none'/);
  });

  it('keeps non-admins out of the admin pages and refuses forms without the XSRF token', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await logIn(page, hub.url, 'carl', 'test-password');
    expect(await page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    const res = await page.goto(`${hub.url}/hub/admin/users`);
    expect(res?.status()).toBe(403);
    await expectAccessible(page);
    await screenshot(page, 'error-403');
    const forged = await page.request.post(`${hub.url}/hub/token`, { form: { note: 'forged' }, maxRedirects: 0 });
    expect(forged.status()).toBe(403);
    await context.close();
  });
});
