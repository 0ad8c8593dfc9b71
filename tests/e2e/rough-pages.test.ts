import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { api, HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn, watchCsp } from '../helpers/pages.js';

/**
 * The rough edges a lab admin met in Chromium in the first hour (issue 21, item 5): the logo Jupyter shows and the
 * favicon, banners that would print any text put in a link, the token table at 1280 px, the admin list sorted by
 * last activity, and a start that fails (which step, and what a student is told).
 */
const ready = requireService('Chromium', chromiumAvailable());

describe.skipIf(!ready)('rough pages, smoothed, in Chromium', () => {
  // The server command does not exist: every start fails once the spawner runs it, with an OS-level reason.
  const missingCommand = '/nonexistent/jupyterhub-singleuser';
  const technicalReason = /command not found/;
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__CMD: JSON.stringify([missingCommand]), LABHUB_SPAWNER__ALLOW_ROOT: 'true', LABHUB_SPAWNER__RUN_AS_SYSTEM_USERS: 'false',
      LABHUB_AUTHENTICATOR__KIND: 'dummy', LABHUB_AUTHENTICATOR__PASSWORD: 'test-password',
    },
  });
  let browser: Browser;
  let admin: Page;
  let adminCsp: string[];
  let adminToken = '';

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'ada', '--admin'])).status).toBe(0);
    adminToken = (await hub.cli(['token', 'ada'])).stdout.trim();
    browser = await launchChromium();
    admin = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    adminCsp = watchCsp(admin);
    await logIn(admin, hub.url, 'ada', 'test-password');
  });

  afterAll(async () => {
    await browser?.close();
    await hub.cleanup();
  });

  /** Whether the browser could decode the image at `path` (a broken image has no natural width). */
  const imageLoads = (page: Page, path: string) => page.evaluate(async (src) => {
    const { Image } = globalThis as unknown as { Image: new () => { src: string; naturalWidth: number; decode(): Promise<void> } };
    const img = new Image();
    img.src = src;
    return img.decode().then(() => img.naturalWidth > 0, () => false);
  }, path);

  it('serves the logo Jupyter shows at /hub/logo and a favicon at /favicon.ico', async () => {
    for (const [path, type] of [['/hub/logo', 'image/svg+xml'], ['/favicon.ico', 'image/x-icon'], ['/hub/favicon.ico', 'image/x-icon']]) {
      const res = await fetch(`${hub.url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toContain(type);
    }
    await admin.goto(`${hub.url}/hub/home`);
    expect(await imageLoads(admin, '/hub/logo')).toBe(true);
    expect(await imageLoads(admin, '/favicon.ico')).toBe(true);
    expect(await admin.locator('link[rel="icon"]').getAttribute('href')).toBe('/hub/favicon.ico');
    expect(adminCsp).toEqual([]);
  });

  it('does not print text from the address in its banners, and still reports what an action did', async () => {
    const planted = 'Your account is locked, call 555-0100';
    for (const path of [
      `/hub/admin/users?done=${encodeURIComponent(planted)}`, `/hub/admin/users?error=${encodeURIComponent(planted)}`,
      `/hub/home?error=${encodeURIComponent(planted)}`, `/hub/admin/classes?done=${encodeURIComponent(planted)}`,
    ]) {
      await admin.goto(`${hub.url}${path}`);
      expect(await admin.locator('main').textContent(), path).not.toContain(planted);
      expect(await admin.locator('.banner').count(), path).toBe(0);
    }
    await admin.goto(`${hub.url}/hub/admin/users`);
    await admin.getByLabel('Usernames').fill('flash-one, flash-two');
    await admin.getByRole('button', { name: 'Add users' }).click();
    await admin.waitForURL(/done=/);
    expect(await admin.getByRole('status').first().textContent()).toMatch(/Added 2 users/);
    // The outcome belongs to that redirect: the same address with another id shows nothing.
    await admin.goto(admin.url().replace(/done=[0-9a-f]+/, 'done=0123456789ab'));
    expect(await admin.locator('.banner').count()).toBe(0);
  });

  it('keeps the Revoke button of a token with a long note and many scopes inside the card at 1280 px', async () => {
    const scopes = Array.from({ length: 12 }, (_, i) => `read:servers!server=a-rather-long-user-name-${i}/a-rather-long-server-name`);
    const created = await api(hub.url, adminToken, 'POST', '/users/ada/tokens', { note: `nightly-${'x'.repeat(120)}`, scopes });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await admin.goto(`${hub.url}/hub/token`);
    const revoke = admin.getByRole('row', { name: /nightly-/ }).getByRole('button', { name: /Revoke/ });
    const button = (await revoke.boundingBox())!;
    const card = (await admin.locator('section.card', { has: revoke }).boundingBox())!;
    expect(button.x + button.width).toBeLessThanOrEqual(card.x + card.width);
    expect(button.x + button.width).toBeLessThanOrEqual(1280);
    const wrap = admin.locator('.table-wrap', { has: revoke });
    expect(await wrap.evaluate((el) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
    await expectAccessible(admin);
  });

  it('lists users who were never active last when sorted by last activity, and says which way it sorts', async () => {
    expect((await api(hub.url, adminToken, 'POST', '/users', { usernames: ['srt-never', 'srt-early', 'srt-late'] })).status).toBe(201);
    await api(hub.url, adminToken, 'POST', '/users/srt-early/activity', { last_activity: new Date(Date.now() - 3600_000).toISOString() });
    await api(hub.url, adminToken, 'POST', '/users/srt-late/activity', { last_activity: new Date().toISOString() });
    await admin.goto(`${hub.url}/hub/admin/users?q=srt-`);
    await admin.getByRole('link', { name: 'Last activity' }).click();
    await admin.waitForURL(/sort=last_activity/);
    expect(await admin.locator('tbody tr th, tbody tr td:first-child').allTextContents().then((t) => t.map((s) => s.trim().split(/\s/)[0])))
      .toEqual(['srt-late', 'srt-early', 'srt-never']);
    expect(await admin.getByRole('columnheader', { name: /Last activity/ }).getAttribute('aria-sort')).toBe('descending');
  });

  it('marks the step a start failed at, tells a student in plain words, and keeps the reason for admins', async () => {
    expect((await hub.cli(['users', 'add', 'stu'])).status).toBe(0);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const student = await context.newPage();
    const csp = watchCsp(student);
    await logIn(student, hub.url, 'stu', 'test-password');
    await student.getByRole('button', { name: 'Start' }).click();
    await student.waitForURL(/\/hub\/spawn-pending\/stu$/);
    const banner = student.locator('#progress-failed');
    await banner.waitFor({ state: 'visible', timeout: 30_000 });
    expect(await banner.textContent()).toMatch(/Something went wrong while starting the server/);
    expect(await student.locator('main').textContent()).not.toMatch(technicalReason);
    const failedStep = student.locator('#progress-steps li.failed');
    expect(await failedStep.count()).toBe(1);
    expect(await failedStep.textContent()).toMatch(/\(failed\)/);
    expect(await failedStep.getAttribute('aria-current')).toBe('step');
    await expectAccessible(student);

    // Opened after the failure, the page still marks the step; the home page stays plain as well.
    await student.reload();
    await banner.waitFor({ state: 'visible' });
    expect(await student.locator('#progress-steps li.failed').textContent()).toBe(await failedStep.textContent());
    await student.goto(`${hub.url}/hub/home`);
    expect(await student.locator('main').textContent()).not.toMatch(technicalReason);
    expect(await student.locator('main').textContent()).toMatch(/The last start failed/);
    expect(csp).toEqual([]);
    await context.close();

    await admin.goto(`${hub.url}/hub/spawn-pending/stu`);
    await admin.locator('#progress-failed').waitFor({ state: 'visible' });
    expect(await admin.locator('#progress-failed').textContent()).toMatch(technicalReason);
    expect(await admin.locator('#progress-steps li.failed').count()).toBe(1);
  });
});
