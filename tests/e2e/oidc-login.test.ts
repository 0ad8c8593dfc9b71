import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { startConfiguredHub } from '../helpers/auth-hub.js';
import { requireService } from '../helpers/jupyter.js';
import type { HubProcess } from '../helpers/hub.js';
import { CLIENT_ID, CLIENT_SECRET, TestProvider } from '../helpers/oidc-provider.js';
import { freePort } from '../helpers/ports.js';

/**
 * Signing in with an OpenID Connect provider in a real browser: the hub's button, the provider's login and consent
 * pages, back to the hub under its Content-Security-Policy; then logging out of both.
 */
describe.skipIf(!requireService('Chromium', chromiumAvailable()))('OpenID Connect sign-in in Chromium', () => {
  let provider: TestProvider;
  let hub: HubProcess;
  let browser: Browser;

  beforeAll(async () => {
    provider = new TestProvider(await freePort(), { 'sub-rosa': { preferred_username: 'rosa', groups: ['physics'] } });
    ({ hub } = await startConfiguredHub(() => ({
      authenticator: { kind: 'oidc' },
      spawner: { kind: 'instant' },
      auth: {
        oidc: { issuer: provider.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, allow_insecure_http: true, login_service: 'Lab ID', scopes: ['openid', 'profile', 'groups'] },
        allowed_groups: ['physics'],
      },
    })));
    await provider.start(hub.url);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.cleanup();
    await provider?.stop();
  });

  it('signs in through the provider, reaches home, and signs out of the hub and the provider', async () => {
    const page = await browser.newPage();
    const cspViolations: string[] = [];
    page.on('console', (msg) => {
      if (/Content.Security.Policy|Refused to/i.test(msg.text()) && page.url().startsWith(hub.url)) cspViolations.push(msg.text());
    });
    await page.goto(`${hub.url}/`);
    expect(new URL(page.url()).pathname).toBe('/hub/login');
    await page.getByRole('link', { name: 'Sign in with Lab ID' }).click();
    await page.waitForURL((u) => u.origin === provider.issuer);
    await page.locator('input[name=login]').fill('sub-rosa');
    await page.locator('input[name=password]').fill('whatever');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${hub.url}/hub/home`);
    expect(await page.content()).toContain('rosa');
    expect(cspViolations).toEqual([]);

    await page.getByRole('button', { name: 'Log out' }).click();
    // The provider's sign-out page imports a web font that cannot load here: wait for the page, not its "load".
    await page.waitForURL((u) => u.origin === provider.issuer, { waitUntil: 'commit' });
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL(`${hub.url}/hub/login`, { waitUntil: 'commit' });
    await page.goto(`${hub.url}/hub/home`);
    expect(new URL(page.url()).pathname).toBe('/hub/login');
  });
});
