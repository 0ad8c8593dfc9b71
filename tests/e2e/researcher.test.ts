import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';

/**
 * A researcher's first session in a real browser: the login page, Start, the live progress page (its script,
 * under the hub's Content-Security-Policy), and landing in their own Jupyter server; then logging out.
 */
const singleuser = findSingleuser(3);
const ready = requireService('Chromium', chromiumAvailable()) && requireService('jupyterhub-singleuser 3.x', singleuser !== null);

describe.skipIf(!ready)('a researcher in Chromium', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__CMD: JSON.stringify([singleuser]), LABHUB_SPAWNER__ALLOW_ROOT: 'true' } });
  let browser: Browser;

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'rosa', '--password-stdin'], 'rosa-password\n')).status).toBe(0);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await hub.cleanup();
  });

  it('logs in, starts a server, watches progress, lands in Jupyter, and logs out', async () => {
    const page = await browser.newPage();
    const cspViolations: string[] = [];
    page.on('console', (msg) => {
      if (/Content.Security.Policy|Refused to/i.test(msg.text())) cspViolations.push(msg.text());
    });
    await page.goto(`${hub.url}/`);
    expect(new URL(page.url()).pathname).toBe('/hub/login');
    await page.getByLabel('Username').fill('rosa');
    await page.getByLabel('Password').fill('rosa-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/hub\/home$/);
    await page.getByRole('button', { name: 'Start' }).click();
    await page.waitForURL(/\/hub\/spawn-pending\/rosa$|\/user\/rosa\//);
    // The progress page follows the event stream and moves on by itself once the server is ready.
    await page.waitForURL(/\/user\/rosa\/(tree|lab)/, { timeout: 60_000 });
    await page.waitForLoadState('domcontentloaded');
    expect(await page.title()).toMatch(/Jupyter|Home|Notebook/i);
    expect(cspViolations).toEqual([]);

    await page.goto(`${hub.url}/hub/home`);
    expect(await page.locator('.status-running').textContent()).toMatch(/running/i);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/hub\/login$/);
    await page.goto(`${hub.url}/hub/home`);
    expect(new URL(page.url()).pathname).toBe('/hub/login');
  });
});
