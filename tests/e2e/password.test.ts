import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn } from '../helpers/pages.js';

/**
 * A native account changes its own password in Chromium: the current one is required, the new one is checked, the
 * other browser sessions end while this one goes on, the old password no longer logs in, and an invitation link
 * made for the account before the change no longer works.
 */
const ready = requireService('Chromium', chromiumAvailable());
const OLD = 'old-password-123';
const NEW = 'new-password-456';

describe.skipIf(!ready)('changing your own password', () => {
  const hub = new HubProcess();
  let browser: Browser;

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'pia', '--password-stdin'], `${OLD}\n`)).status).toBe(0);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await hub.cleanup();
  });

  it('needs the current password, ends the other sessions and old links, and keeps this one', async () => {
    const other = await (await browser.newContext()).newPage();
    await logIn(other, hub.url, 'pia', OLD);
    const link = (await hub.cli(['users', 'invite', 'pia'])).stdout.trim();
    expect((await fetch(link)).status).toBe(200);

    const page = await (await browser.newContext()).newPage();
    await logIn(page, hub.url, 'pia', OLD);
    await page.getByRole('link', { name: 'Password' }).click();
    await page.waitForURL(/\/hub\/password$/);
    await expectAccessible(page);

    await page.getByLabel('Current password').fill('not-the-password');
    await page.getByLabel('New password', { exact: true }).fill(NEW);
    await page.getByLabel('Repeat the new password').fill(NEW);
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('current password is not right');

    await page.getByLabel('Current password').fill(OLD);
    await page.getByLabel('New password', { exact: true }).fill(NEW);
    await page.getByLabel('Repeat the new password').fill(`${NEW}x`);
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.getByRole('alert').textContent()).toContain('differ');

    await page.getByLabel('Current password').fill(OLD);
    await page.getByLabel('New password', { exact: true }).fill(NEW);
    await page.getByLabel('Repeat the new password').fill(NEW);
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.getByRole('status').textContent()).toContain('password is changed');

    // This browser is still logged in; the other one is not.
    await page.goto(`${hub.url}/hub/home`);
    expect(new URL(page.url()).pathname).toBe('/hub/home');
    await other.goto(`${hub.url}/hub/home`);
    expect(new URL(other.url()).pathname).toBe('/hub/login');

    const fresh = await (await browser.newContext()).newPage();
    await fresh.goto(`${hub.url}/hub/login`);
    await fresh.getByLabel('Username').fill('pia');
    await fresh.getByLabel('Password').fill(OLD);
    await fresh.getByRole('button', { name: 'Sign in' }).click();
    expect(new URL(fresh.url()).pathname).toBe('/hub/login');
    await logIn(fresh, hub.url, 'pia', NEW);

    expect((await fetch(link)).status).toBe(404);
  });
});
