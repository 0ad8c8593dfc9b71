import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { api, HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn, screenshot, watchCsp } from '../helpers/pages.js';
import type { IdleState } from '../../hub/servers/idle-culler.js';

/**
 * Idle warnings in Chromium (issue 20 item 4): a user who started a server and left the home page open sees a
 * banner counting down to the cull, presses "Keep it running" (a cookie-authenticated API write with the XSRF
 * token, under the page's CSP), and the server outlives the time it would have been culled at.
 */
const ready = requireService('Chromium', chromiumAvailable());

// The banner is the hub's page, whatever runs the server: an instant server keeps the wait short and posts no
// activity of its own (tests/integration/idle-warnings.test.ts runs the culler against real jupyterhub-singleuser).
const TIMEOUT = 20;
const WARN_BEFORE = 15;
const PASSWORD = 'idle-warnings-pw-1';

describe.skipIf(!ready)('the idle warning banner, in Chromium', () => {
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__KIND: 'instant',
      LABHUB_IDLE_CULLING: `{enabled: true, timeout: ${TIMEOUT}, warn_before: ${WARN_BEFORE}, check_interval: 1}`,
    },
  });
  let browser: Browser;
  let token = '';

  const idle = async () => (await api(hub.url, token, 'GET', '/users/ana/server/idle')).body as IdleState;

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'ana', '--password-stdin'], `${PASSWORD}\n`)).status).toBe(0);
    token = (await hub.cli(['token', 'ana'])).stdout.trim();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await api(hub.url, token, 'DELETE', '/users/ana/server').catch(() => undefined);
    await browser?.close();
    await hub.cleanup();
  });

  it('shows a countdown before the cull, and "Keep it running" keeps the server past it', async () => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    const csp = watchCsp(page);
    await logIn(page, hub.url, 'ana', PASSWORD);
    await page.getByRole('button', { name: 'Start' }).first().click();
    // The progress page sends the browser to the server once it answers; the warning is the home page's.
    await page.waitForURL(/\/user\/ana\//, { timeout: 60_000, waitUntil: 'commit' });
    await page.goto(`${hub.url}/hub/home`);

    const banner = page.locator('.idle-warning');
    await banner.waitFor({ state: 'visible', timeout: (TIMEOUT - WARN_BEFORE + 10) * 1000 });
    await expect.poll(() => banner.locator('.idle-message').textContent()).toMatch(/^Your server will be stopped for inactivity in 0:[01]\d\.$/);
    const countdown = async () => {
      const [m, s] = (await banner.locator('.idle-countdown').textContent())!.split(':').map(Number);
      return m! * 60 + s!;
    };
    const first = await countdown();
    await expect.poll(countdown, { timeout: 10_000 }).toBeLessThan(first);
    await expectAccessible(page);
    await screenshot(page, 'idle-warning');

    const before = await idle();
    expect(before.warning).toBe(true);
    await banner.getByRole('button', { name: 'Keep it running' }).click();
    await banner.waitFor({ state: 'hidden', timeout: 10_000 });
    expect(await banner.locator('.idle-failed').isVisible()).toBe(false);
    const after = await idle();
    expect(Date.parse(after.cull_at!)).toBeGreaterThan(Date.parse(before.cull_at!));

    // Past the time it would have been culled at, with the culler checking every second, the server still runs.
    const wait = Date.parse(before.cull_at!) + 5000 - Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    const model = (await api(hub.url, token, 'GET', '/users/ana')).body as { server: string | null };
    expect(model.server).toBe('/user/ana/');
    expect(csp).toEqual([]);
  }, 180_000);
});
