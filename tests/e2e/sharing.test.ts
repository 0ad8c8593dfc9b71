import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startConfiguredHub } from '../helpers/auth-hub.js';
import { api, eventually, type HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn, screenshot, watchCsp } from '../helpers/pages.js';

/**
 * Sharing in the pages, in Chromium, against the real jupyterhub-singleuser: the owner shares her running server
 * with a user and through a link, sees who has access and revokes; the recipients find it on their home page or
 * accept the link, and open it through the hub's OAuth consent; an admin sees and revokes shares.
 */
const singleuser = findSingleuser(3);
const ready = requireService('Chromium', chromiumAvailable()) && requireService('jupyterhub-singleuser 3.x', singleuser !== null);

describe.skipIf(!ready)('sharing a server in the pages', () => {
  let hub: HubProcess;
  let admin = '';
  let browser: Browser;
  const pages: Record<string, Page> = {};
  const csp: string[] = [];

  const pageOf = async (name: string) => {
    const page = await (await browser.newContext()).newPage();
    csp.push(...watchCsp(page));
    await logIn(page, hub.url, name, `${name}-password-1`);
    pages[name] = page;
    return page;
  };
  /** Clicks through the hub's consent page, which a server that is not one's own always shows first. */
  const consentAndLand = async (page: Page) => {
    await page.waitForURL(/\/hub\/api\/oauth2\/authorize/);
    await expect(page.getByRole('heading', { name: 'Open alice/?' }).isVisible()).resolves.toBe(true);
    await page.getByRole('button', { name: 'Authorize' }).click();
    await page.waitForURL(/\/user\/alice\/(tree|lab)/, { timeout: 30_000 });
  };

  beforeAll(async () => {
    ({ hub, adminToken: admin } = await startConfiguredHub({
      authenticator: { kind: 'dummy' },
      spawner: { kind: 'local', cmd: [singleuser], allow_root: true, poll_interval: 2 },
      // Sharing by name needs the names; revoking a share someone made by accepting a link must not.
      roles: [{ name: 'sharers', scopes: ['shares!user', 'read:users:name!user=bob'], users: ['alice'] }],
    }));
    for (const name of ['bob', 'carol']) expect((await api(hub.url, admin, 'POST', `/users/${name}`)).status).toBe(201);
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api(hub.url, admin, 'DELETE', '/users/alice/server').catch(() => undefined);
    await hub?.cleanup();
  });

  it('the owner shares her running server with a user from her home page', async () => {
    const alice = await pageOf('alice');
    expect((await api(hub.url, admin, 'POST', '/users/alice/server')).status).toBeLessThan(300);
    await eventually(async () => ((await api(hub.url, admin, 'GET', '/users/alice')).body as { server: string | null }).server, 60_000);
    await alice.goto(`${hub.url}/hub/home`);
    await alice.getByRole('link', { name: 'Share' }).click();
    await alice.waitForURL(/\/hub\/sharing\/alice\/$/);
    await expect(alice.getByText('Nobody else can use this server.').isVisible()).resolves.toBe(true);
    await alice.getByLabel('Share with').fill('bob');
    await alice.getByRole('button', { name: 'Share', exact: true }).click();
    await expect(alice.getByRole('status').textContent()).resolves.toContain('Shared with bob.');
    await expect(alice.locator('table.shares').textContent()).resolves.toContain('bob');
    await expectAccessible(alice);
    await screenshot(alice, 'sharing');
  });

  it('the recipient finds it on his home page and opens it through the consent page', async () => {
    const bob = await pageOf('bob');
    const shared = bob.locator('section', { hasText: 'Shared with you' });
    await expect(shared.textContent()).resolves.toContain("alice's default server");
    await shared.getByRole('link', { name: 'Open' }).click();
    await consentAndLand(bob);
    expect(bob.url()).toContain('/user/alice/');
  });

  it('a link made on the sharing page lets someone else in after accepting it', async () => {
    const alice = pages.alice!;
    await alice.getByRole('button', { name: 'Make link' }).click();
    const link = (await alice.locator('#new-link').textContent())!.trim();
    expect(link).toMatch(/\/hub\/accept-share\?code=[A-Za-z0-9_-]{40,}$/);
    const carol = await pageOf('carol');
    await carol.goto(link);
    await expect(carol.getByRole('heading', { name: "Use alice's default server?" }).isVisible()).resolves.toBe(true);
    await expectAccessible(carol);
    await carol.getByRole('button', { name: 'Accept and open' }).click();
    await consentAndLand(carol);
    await alice.goto(`${hub.url}/hub/sharing/alice/`);
    await expect(alice.locator('ul.links').textContent()).resolves.toContain('used 1 time');
    await expect(alice.locator('table.shares').textContent()).resolves.toContain('carol');
  });

  it('the owner revokes a share, even one made by a link for someone she cannot name: the recipient\'s open tab loses it at once, and it leaves her home page', async () => {
    const alice = pages.alice!;
    // Carol's tab is still in alice's server, with a kernel's websocket open, as a notebook keeps one.
    const carolsTab = pages.carol!;
    expect(carolsTab.url()).toContain('/user/alice/');
    await carolsTab.evaluate(async () => {
      type Socket = { onopen: unknown; onerror: unknown; onclose: unknown };
      const tab = globalThis as unknown as {
        document: { cookie: string }; location: { origin: string }; kernelClosed: Promise<boolean>; WebSocket: new (url: string) => Socket;
      };
      const xsrf = decodeURIComponent(/(?:^|; )_xsrf=([^;]*)/.exec(tab.document.cookie)?.[1] ?? '');
      const created = await fetch('/user/alice/api/kernels', { method: 'POST', headers: { 'X-XSRFToken': xsrf }, body: '{}' });
      const { id } = (await created.json()) as { id: string };
      const ws = new tab.WebSocket(`${tab.location.origin.replace(/^http/, 'ws')}/user/alice/api/kernels/${id}/channels`);
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
      tab.kernelClosed = new Promise((resolve) => { ws.onclose = () => resolve(true); });
    });
    await alice.getByRole('button', { name: 'Stop sharing with carol' }).click();
    await expect(alice.getByRole('status').textContent()).resolves.toContain('can no longer use this server');
    await expect(alice.locator('table.shares').textContent()).resolves.not.toContain('carol');
    await expect(carolsTab.evaluate(() => (globalThis as unknown as { kernelClosed: Promise<boolean> }).kernelClosed)).resolves.toBe(true);
    await expect(carolsTab.evaluate(async () => (await fetch('/user/alice/api/status')).status)).resolves.toBe(403);
    const refused = await carolsTab.reload();
    expect(carolsTab.url()).toMatch(/\/hub\/api\/oauth2\/authorize/);
    expect(refused?.status()).toBe(403);
    const carol = await pageOf('carol');
    await expect(carol.locator('body').textContent()).resolves.not.toContain('Shared with you');
  });

  it('an admin sees a user\'s shares from the admin pages and revokes them', async () => {
    const root = await (await browser.newContext()).newPage();
    await logIn(root, hub.url, 'root-admin', 'root-admin-password-1');
    await root.goto(`${hub.url}/hub/admin/users/alice`);
    await root.getByRole('link', { name: 'Shares (1)' }).click();
    await root.waitForURL(/\/hub\/sharing\/alice\/$/);
    await expect(root.getByRole('heading', { name: "Share alice's default server" }).isVisible()).resolves.toBe(true);
    await root.getByRole('button', { name: 'Stop sharing with bob' }).click();
    await expect(root.getByText('Nobody else can use this server.').isVisible()).resolves.toBe(true);
    expect(((await api(hub.url, admin, 'GET', '/shares/alice')).body as { items: unknown[] }).items).toEqual([]);
    expect(csp).toEqual([]);
  });
});
