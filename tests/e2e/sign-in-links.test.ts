import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn, screenshot } from '../helpers/pages.js';

/**
 * Issue 21 item 2 in Chromium: an admin gives people a way to sign in from the browser. "Add users" with "Make
 * sign-in links" shows one link per new account, once; a user's page makes an invitation (no password yet) or a
 * password reset link; each link works once and lets its user choose a password and sign in. The CLI invites several
 * users at once.
 */
const ready = requireService('Chromium', chromiumAvailable());
const ADMIN_PASSWORD = 'admin-password-1';

describe.skipIf(!ready)('sign-in links from the admin pages', () => {
  const hub = new HubProcess();
  let browser: Browser;
  let admin: Page;

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'root', '--admin', '--password-stdin'], `${ADMIN_PASSWORD}\n`)).status).toBe(0);
    browser = await launchChromium();
    admin = await (await browser.newContext()).newPage();
    await logIn(admin, hub.url, 'root', ADMIN_PASSWORD);
  });

  afterAll(async () => {
    await browser?.close();
    await hub.cleanup();
  });

  /** Opens a link in a fresh browser, sets a password there and answers the page it lands on. */
  async function useLink(url: string, password: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(url);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByLabel('Repeat password').fill(password);
    await page.getByRole('button', { name: 'Set password and sign in' }).click();
    return page;
  }

  it('adds users with one link each, shown once, and each link signs its user in', async () => {
    await admin.goto(`${hub.url}/hub/admin/users`);
    await admin.getByLabel('Usernames').fill('nia, omar');
    await admin.getByLabel('Make sign-in links').check();
    await admin.getByRole('button', { name: 'Add users' }).click();
    await expect.poll(() => admin.getByRole('heading', { name: 'Sign-in links', level: 1 }).isVisible()).toBe(true);
    expect(await admin.getByRole('status').textContent()).toContain('Added 2 users');
    await expectAccessible(admin);
    await screenshot(admin, 'admin-sign-in-links');
    const links = {
      nia: await admin.getByLabel('Sign-in link for nia').inputValue(),
      omar: await admin.getByLabel('Sign-in link for omar').inputValue(),
    };
    expect(links.nia).toMatch(new RegExp(`^${hub.url}/hub/invite\\?code=`));
    expect(links.nia).not.toBe(links.omar);

    const nia = await useLink(links.nia, 'nia-password-1');
    await nia.waitForURL(/\/hub\/home$/);
    expect(await nia.getByText('nia', { exact: true }).first().isVisible()).toBe(true);
    // Used once: the same link is dead now.
    const again = await (await browser.newContext()).newPage();
    const dead = await again.goto(links.nia);
    expect(dead?.status()).toBe(404);
    expect(await again.textContent('body')).toContain('no longer valid');

    // Adding omar again resets nothing and shows no link for him.
    await admin.goto(`${hub.url}/hub/admin/users`);
    await admin.getByLabel('Usernames').fill('omar');
    await admin.getByLabel('Make sign-in links').check();
    await admin.getByRole('button', { name: 'Add users' }).click();
    await expect.poll(async () => admin.textContent('body')).toContain('every name already existed');
    expect(await (await useLink(links.omar, 'omar-password-1')).waitForURL(/\/hub\/home$/).then(() => true)).toBe(true);
  });

  it('makes an invitation for an account without a password and a reset link for one with, and a reset link replaces the password', async () => {
    expect((await hub.cli(['users', 'add', 'pat', '--password-stdin'], 'pat-password-1\n')).status).toBe(0);
    expect((await hub.cli(['users', 'add', 'quin'])).status).toBe(0);

    await admin.goto(`${hub.url}/hub/admin/users/quin`);
    await admin.getByRole('button', { name: 'Make an invitation link' }).click();
    const invitation = await admin.getByLabel('Sign-in link for quin').inputValue();
    expect(await admin.textContent('main')).toContain('Invitation link for quin');

    await admin.goto(`${hub.url}/hub/admin/users/pat`);
    expect(await admin.textContent('main')).toContain('pat has a password');
    const made = admin.waitForResponse((r) => r.url().endsWith('/sign-in-link'));
    await admin.getByRole('button', { name: 'Make a password reset link' }).click();
    expect((await made).headers()['cache-control']).toBe('no-store');
    const reset = await admin.getByLabel('Sign-in link for pat').inputValue();
    await expectAccessible(admin);

    await (await useLink(invitation, 'quin-password-1')).waitForURL(/\/hub\/home$/);
    await (await useLink(reset, 'pat-password-2')).waitForURL(/\/hub\/home$/);
    const old = await (await browser.newContext()).newPage();
    await old.goto(`${hub.url}/hub/login`);
    await old.getByLabel('Username').fill('pat');
    await old.getByLabel('Password').fill('pat-password-1');
    await old.getByRole('button', { name: 'Sign in' }).click();
    expect(await old.getByRole('alert').textContent()).toBeTruthy();
    const fresh = await (await browser.newContext()).newPage();
    await logIn(fresh, hub.url, 'pat', 'pat-password-2');
  });

  it('invites several users from the CLI, one "name<TAB>link" line each', async () => {
    const { status, stdout } = await hub.cli(['users', 'invite', 'ray', 'sol']);
    expect(status).toBe(0);
    const lines = stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(lines.map(([name]) => name)).toEqual(['ray', 'sol']);
    for (const [, url] of lines) expect(url).toMatch(/\/hub\/invite\?code=/);
    await (await useLink(lines[1]![1]!, 'sol-password-1')).waitForURL(/\/hub\/home$/);
  });
});
