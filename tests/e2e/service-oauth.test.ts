import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startConfiguredHub } from '../helpers/auth-hub.js';
import type { HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn, watchCsp } from '../helpers/pages.js';
import { freePort } from '../helpers/ports.js';
import { WhoamiService, whoamiAvailable } from '../helpers/whoami-service.js';

/**
 * A JupyterHub service built on the `jupyterhub` package's HubOAuth, in Chromium (issue 21 item 12): the user opens
 * it from the home page's Services list, signs in through LabHub's pages, consents, and the service knows who she is.
 */
const ready = requireService('Chromium', chromiumAvailable()) && requireService('jupyterhub package (scripts/setup-test-env.sh)', whoamiAvailable());

describe.skipIf(!ready)('a HubOAuth service in the browser', () => {
  let hub: HubProcess;
  let service: WhoamiService;
  let browser: Browser;

  beforeAll(async () => {
    const whoami = { name: 'whoami', url: `http://127.0.0.1:${await freePort()}`, api_token: randomBytes(24).toString('hex') };
    ({ hub } = await startConfiguredHub({
      authenticator: { kind: 'dummy' },
      spawner: { kind: 'instant' },
      services: [whoami],
      roles: [{ name: 'whoami-users', scopes: ['access:services!service=whoami'], users: ['alice'] }],
    }));
    service = new WhoamiService(hub.url, whoami);
    await service.start();
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    service?.stop();
    await hub?.cleanup();
  });

  it('signs the user in to the service through the hub\'s pages and consent page', async () => {
    const page = await (await browser.newContext()).newPage();
    const csp = watchCsp(page);
    await logIn(page, hub.url, 'alice', 'alice-password-1');
    await page.getByRole('link', { name: 'whoami' }).click();
    await page.waitForURL(/\/hub\/api\/oauth2\/authorize/);
    await expect(page.getByRole('heading', { name: 'Sign in to whoami?' }).isVisible()).resolves.toBe(true);
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Authorize' }).click();
    await page.waitForURL(new RegExp(`${service.prefix}$`));
    const seen = JSON.parse(await page.locator('body').innerText()) as { via: string; user: { name: string; scopes: string[] } };
    expect(seen).toMatchObject({ via: 'oauth', user: { name: 'alice', scopes: expect.arrayContaining(['access:services!service=whoami']) } });
    // The service's own cookie now identifies her: a second visit goes straight in.
    await page.goto(`${hub.url}${service.prefix}`);
    expect(page.url()).toBe(`${hub.url}${service.prefix}`);
    expect(csp).toEqual([]);
  });

  it('refuses a user the hub has not given the service, in the page she sees', async () => {
    const page = await (await browser.newContext()).newPage();
    await logIn(page, hub.url, 'bob', 'bob-password-1');
    await expect(page.getByRole('link', { name: 'whoami' }).count()).resolves.toBe(0);
    const res = await page.goto(`${hub.url}${service.prefix}`);
    expect(res?.status()).toBe(403);
    await expect(page.locator('body').innerText()).resolves.toContain('not allowed to access the service whoami');
  });
});
