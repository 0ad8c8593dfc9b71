import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { request } from '../helpers/proxy.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn, screenshot } from '../helpers/pages.js';

/**
 * What a browser meets at /user/<name>/… when that server is not routed, with native logins and the local spawner:
 * the session cookie is scoped to /hub/, so the hub sends the browser on to /hub/user/<name>/…, which shows the
 * not-running page (424) with a start button and lands back on the same path once the server is up. Never a
 * redirect loop. Covers a stopped server, one stopped by a culler through the API, a failed start, another user's
 * name, a named server, and a browser that is not logged in; and an admin starting a user's server from the list.
 */
const singleuser = findSingleuser(3);
const ready = requireService('Chromium', chromiumAvailable()) && requireService('jupyterhub-singleuser 3.x', singleuser !== null);

const PASSWORD = 'not-running-pw-1';
// A named server called "broken" exits at once with code 3: a failed start, as a broken image or config would give.
const FAILING_WRAPPER = ['sh', '-c', 'if [ "$JUPYTERHUB_SERVER_NAME" = broken ]; then exit 3; fi; exec "$0" "$@"', singleuser ?? ''];

describe.skipIf(!ready)('a server that is not running, in Chromium', () => {
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__CMD: JSON.stringify(FAILING_WRAPPER), LABHUB_SPAWNER__ALLOW_ROOT: 'true', LABHUB_ALLOW_NAMED_SERVERS: 'true',
    },
  });
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let token = '';

  const addUser = async (name: string, admin = false) => {
    const added = await hub.cli(['users', 'add', name, ...(admin ? ['--admin'] : []), '--password-stdin'], `${PASSWORD}\n`);
    expect(added.status, added.stderr).toBe(0);
  };

  /** Opens `path` and returns the status of the page it ends on, failing on any redirect loop. */
  const open = async (path: string) => {
    const response = await page.goto(`${hub.url}${path}`);
    return response!.status();
  };

  const startFromPage = async (landsOn: RegExp) => {
    await page.getByRole('button', { name: /^Start/ }).click();
    await page.waitForURL(landsOn, { timeout: 60_000 });
    // Jupyter's own page, not ours.
    await expect.poll(() => page.title(), { timeout: 30_000 }).toMatch(/Jupyter|Home/);
  };

  beforeAll(async () => {
    await hub.start();
    await addUser('boss', true);
    await addUser('ana');
    await addUser('bob');
    token = (await hub.cli(['token', 'boss'])).stdout.trim();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    await logIn(page, hub.url, 'ana', PASSWORD);
  });

  afterAll(async () => {
    for (const path of ['/users/ana/server', '/users/ana/servers/lab2', '/users/bob/server']) {
      await api(hub.url, token, 'DELETE', path).catch(() => undefined);
    }
    await browser?.close();
    await hub.cleanup();
  });

  it('sends a logged-in user with a stopped server to the not-running page, and back to the same path after Start', async () => {
    expect(await open('/user/ana/tree?sort=name')).toBe(424);
    expect(new URL(page.url()).pathname).toBe('/hub/user/ana/tree');
    await expect.poll(() => page.locator('#not-running').getAttribute('data-status')).toBe('stopped');
    expect(await page.locator('main').textContent()).toContain('Your server is not running');
    await expectAccessible(page);
    await screenshot(page, 'not-running');
    await startFromPage(/\/user\/ana\/tree\?sort=name$/);
  });

  it('after a culler stops the server, a reload of the open tab comes back to the start page, not a loop', async () => {
    await page.goto(`${hub.url}/user/ana/tree`);
    expect(new URL(page.url()).pathname).toBe('/user/ana/tree');
    // What jupyterhub-idle-culler does: DELETE the server through the REST API.
    expect((await api(hub.url, token, 'DELETE', '/users/ana/server')).status).toBe(204);
    await eventually(async () => (await fetch(`${hub.url}/user/ana/api`, { headers: { accept: 'application/json' } })).status === 424);
    const status = (await page.reload())!.status();
    expect(status).toBe(424);
    expect(new URL(page.url()).pathname).toBe('/hub/user/ana/tree');
    await startFromPage(/\/user\/ana\/tree$/);
  });

  it('shows a failed start as failed, with a start button', async () => {
    // While the default server runs, the proxy sends all of /user/ana/ to it (longest prefix), named paths included.
    expect((await api(hub.url, token, 'DELETE', '/users/ana/server')).status).toBe(204);
    const started = await api(hub.url, token, 'POST', '/users/ana/servers/broken');
    expect(started.status).toBeGreaterThanOrEqual(200);
    await eventually(async () => {
      const model = (await api(hub.url, token, 'GET', '/users/ana')).body as { servers: Record<string, unknown> };
      return model.servers.broken === undefined;
    });
    expect(await open('/user/ana/broken/tree')).toBe(424);
    await expect.poll(() => page.locator('#not-running').getAttribute('data-status')).toBe('failed');
    expect(await page.locator('main').textContent()).toMatch(/Your server broken is not running[\s\S]*last start of this server failed/);
    await expect(page.getByRole('button', { name: /^Start/ }).count()).resolves.toBe(1);
    await expectAccessible(page);
  });

  it('starts and lands in a named server', async () => {
    expect(await open('/user/ana/lab2/tree')).toBe(424);
    // lab2 has never run: the hub cannot tell a server name from a path inside the default server, so it offers the
    // default server, whose page shows the path.
    expect(await page.locator('main').textContent()).toContain('/user/ana/lab2/tree');
    const created = await api(hub.url, token, 'POST', '/users/ana/servers/lab2');
    expect([201, 202]).toContain(created.status);
    await eventually(async () => ((await api(hub.url, token, 'GET', '/users/ana')).body as { servers: Record<string, { ready: boolean }> }).servers.lab2?.ready);
    expect((await api(hub.url, token, 'DELETE', '/users/ana/servers/lab2')).status).toBe(204);
    expect(await open('/user/ana/lab2/tree')).toBe(424);
    expect(await page.locator('main').textContent()).toContain('Your server lab2 is not running');
    await startFromPage(/\/user\/ana\/lab2\/tree$/);
  });

  it('answers another user\'s name, or one that does not exist, with the same 404 and no start button', async () => {
    for (const path of ['/user/bob/tree', '/user/nobody-here/tree']) {
      expect(await open(path)).toBe(404);
      expect(new URL(page.url()).pathname).toBe(`/hub${path}`);
      await expect.poll(() => page.locator('#not-running').getAttribute('data-status')).toBe('no-access');
      expect(await page.getByRole('button', { name: /^Start/ }).count()).toBe(0);
    }
    await expectAccessible(page);
  });

  it('sends a browser that is not logged in to the login page, then to the not-running page', async () => {
    const fresh = await browser.newContext();
    const other = await fresh.newPage();
    try {
      await other.goto(`${hub.url}/user/bob/tree`);
      expect(new URL(other.url()).pathname).toBe('/hub/login');
      await other.getByLabel('Username').fill('bob');
      await other.getByLabel('Password').fill(PASSWORD);
      await other.getByRole('button', { name: 'Sign in' }).click();
      await other.waitForURL(/\/hub\/user\/bob\/tree$/);
      expect(await other.locator('main').textContent()).toContain('Your server is not running');
    } finally {
      await fresh.close();
    }
  });

  it('records the class default profile on a start through the API, and says the local spawner does not apply its limits', async () => {
    const properties = { profiles: [{ slug: 'py', display_name: 'Python', image: 'labhub/notebook-debian:latest', cpu_limit: 1, mem_limit: '1G' }], default_profile: 'py' };
    expect((await api(hub.url, token, 'POST', '/groups/bio', { users: ['ana'] })).status).toBe(201);
    expect((await api(hub.url, token, 'PUT', '/groups/bio/properties', properties)).status).toBe(200);
    try {
      expect([201, 202]).toContain((await api(hub.url, token, 'POST', '/users/ana/server')).status);
      const model = (await api(hub.url, token, 'GET', '/users/ana')).body as { servers: Record<string, { user_options: Record<string, unknown> }> };
      expect(model.servers['']?.user_options).toEqual({ profile: 'bio/py' });
      await page.goto(`${hub.url}/hub/home`);
      expect(await page.locator('.profiles .hint').textContent()).toContain('not applied');
      expect(await page.locator('.profile-specs').count()).toBe(0);
    } finally {
      await api(hub.url, token, 'DELETE', '/users/ana/server');
      await api(hub.url, token, 'DELETE', '/groups/bio');
    }
  });

  it('keeps an admin who starts a user\'s server from the users list on the list, following the start there', async () => {
    const adminContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const admin = await adminContext.newPage();
    try {
      await logIn(admin, hub.url, 'boss', PASSWORD);
      await admin.goto(`${hub.url}/hub/admin/users?q=bob`);
      await admin.getByRole('button', { name: "Start bob's server" }).click();
      await admin.waitForURL(/\/hub\/admin\/users\?q=bob/);
      // The row follows the start and the list reloads when it is ready: an Open link, never a consent page.
      await admin.getByRole('link', { name: "Open bob's server" }).waitFor({ timeout: 60_000 });
      expect(new URL(admin.url()).pathname).toBe('/hub/admin/users');
      expect(await admin.locator('tr', { hasText: 'bob' }).locator('.status').textContent()).toBe('running');
      await expectAccessible(admin);
      // Another user at bob's running server: his server sends her to the hub's login, which refuses with a page.
      const refused = await page.goto(`${hub.url}/user/bob/tree`);
      expect(refused!.status()).toBe(403);
      expect(refused!.headers()['content-type']).toMatch(/^text\/html/);
      expect(await page.locator('main').textContent()).toContain('ana is not allowed to access this server');
      await expectAccessible(page);
    } finally {
      await adminContext.close();
      await api(hub.url, token, 'DELETE', '/users/bob/server');
    }
  });

  it('answers API clients at /user/… with JupyterHub\'s 424 JSON, and refused /hub/api/ paths with JSON too', async () => {
    const res = await fetch(`${hub.url}/user/bob/api/status`, { headers: { authorization: `token ${token}` }, redirect: 'manual' });
    expect(res.status).toBe(424);
    expect(await res.json()).toMatchObject({ status: 424, message: expect.stringContaining('not running') });
    // Refused by the proxy (dot segments, encoded slashes, bad encoding) or by the hub: JSON either way.
    const refused: Array<[string, number]> = [
      ['/hub/api/users/..%2f..%2fetc', 400], ['/hub/api/users/%2e%2e/etc', 400], ['/hub/api/users/%E0%A4%A', 400],
      ['/hub/api/users/a%5c..%5cb', 400], ['/hub/api/no-such-endpoint', 404], ['/hub/api/users/no-such-user-9', 404],
      ['/hub/api/users/%00', 400],
    ];
    for (const [path, status] of refused) {
      const res = await request(hub.url, path, { headers: { authorization: `token ${token}` } });
      expect(res.status, path).toBe(status);
      expect(res.headers['content-type'], path).toMatch(/^application\/json/);
      expect(JSON.parse(res.body), path).toMatchObject({ status, message: expect.any(String) });
    }
    // The hub's error target, as CHP calls it with the refused URL: JSON for an API path, a page for the rest.
    const forApi = await fetch(`${hub.url}/hub/error/503?url=${encodeURIComponent('/hub/api/users')}`);
    expect([forApi.status, forApi.headers.get('content-type')]).toEqual([503, expect.stringMatching(/^application\/json/)]);
    const forPage = await fetch(`${hub.url}/hub/error/503?url=${encodeURIComponent('/user/bob/tree')}`);
    expect([forPage.status, forPage.headers.get('content-type')]).toEqual([503, expect.stringMatching(/^text\/html/)]);
  });
});

describe.skipIf(!ready || process.getuid?.() !== 0)('a start the hub cannot serve as it is set up', () => {
  // Root hub, local spawner, servers never as root, and no system account for the user.
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__CMD: JSON.stringify([singleuser]) } });
  let token = '';

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'boss', '--admin'])).status).toBe(0);
    token = (await hub.cli(['token', 'boss'])).stdout.trim();
    expect((await api(hub.url, token, 'POST', '/users', { usernames: ['no-such-account-7'] })).status).toBe(201);
  });

  afterAll(() => hub.cleanup());

  it('is refused at once with a 500 that tells the admin the fix, and leaves no server behind', async () => {
    const res = await api(hub.url, token, 'POST', '/users/no-such-account-7/server');
    expect(res.status).toBe(500);
    const message = (res.body as { message: string }).message;
    expect(message).toContain('no system account named no-such-account-7');
    expect(message).toMatch(/useradd --create-home no-such-account-7/);
    expect(message).toMatch(/spawner\.kind: docker/);
    const model = (await api(hub.url, token, 'GET', '/users/no-such-account-7')).body as { servers: Record<string, unknown>; pending: unknown };
    expect(model.servers).toEqual({});
    expect(model.pending).toBeNull();
    expect(hub.output).toMatch(/a user without one cannot start a server/);
  });
});
