import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn } from '../helpers/pages.js';

/**
 * JupyterHub 6.0's page features (issue 17 item 3) in Chromium: a start can be cancelled from its progress page,
 * and the admin list shows when each running server started and with which profile.
 */
const ready = requireService('Chromium', chromiumAvailable());

describe.skipIf(!ready)('cancelling a start, and the admin list\'s start and profile columns', () => {
  // A server that never answers: its start stays pending until cancelled.
  const slow = new HubProcess({ env: { LABHUB_SPAWNER__CMD: JSON.stringify(['python3', '-c', 'import time; time.sleep(600)']), LABHUB_SPAWNER__ALLOW_ROOT: 'true', LABHUB_SPAWNER__RUN_AS_SYSTEM_USERS: 'false' } });
  const instant = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant' } });
  let browser: Browser;

  beforeAll(async () => {
    await Promise.all([slow.start(), instant.start()]);
    for (const hub of [slow, instant]) {
      expect((await hub.cli(['users', 'add', 'ida', '--admin', '--password-stdin'], 'ida-password-1\n')).status).toBe(0);
    }
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all([slow.cleanup(), instant.cleanup()]);
  });

  it('a pending start is cancelled from its progress page and the server is stopped', async () => {
    const page = await (await browser.newContext()).newPage();
    await logIn(page, slow.url, 'ida', 'ida-password-1');
    await page.getByRole('button', { name: 'Start' }).first().click();
    await page.waitForURL(/\/hub\/spawn-pending\/ida$/);
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Cancel the start' }).click();
    await page.waitForURL(/\/hub\/home$/);
    const token = (await slow.cli(['token', 'ida'])).stdout.trim();
    const model = (await api(slow.url, token, 'GET', '/users/ida')).body as { servers: Record<string, unknown> };
    expect(model.servers['']).toBeUndefined();
  });

  it('the admin user list shows a running server\'s start time, and a dash for a stopped one', async () => {
    const token = (await instant.cli(['token', 'ida'])).stdout.trim();
    expect((await api(instant.url, token, 'POST', '/users', { usernames: ['jo', 'kim'] })).status).toBe(201);
    expect((await api(instant.url, token, 'POST', '/users/jo/server')).status).toBeLessThan(300);
    await eventually(async () => ((await api(instant.url, token, 'GET', '/users/jo')).body as { server: string | null }).server);
    const page = await (await browser.newContext()).newPage();
    await logIn(page, instant.url, 'ida', 'ida-password-1');
    await page.goto(`${instant.url}/hub/admin/users`);
    const headers = await page.locator('table.users thead th').allTextContents();
    const column = (name: string) => headers.findIndex((h) => h.trim().startsWith(name));
    const cell = (user: string, name: string) => page.locator('table.users tbody tr', { hasText: user }).locator('td').nth(column(name)).textContent();
    expect(column('Started')).toBeGreaterThan(0);
    expect(column('Profile')).toBeGreaterThan(0);
    expect((await cell('jo', 'Started'))?.trim()).not.toBe('—');
    expect((await cell('kim', 'Started'))?.trim()).toBe('—');
    await expectAccessible(page);
  });
});
