import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { api, HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn, screenshot, watchCsp } from '../helpers/pages.js';

/**
 * The usage page and the quota form in Chromium (issue 20 items 2 and 3): a student sees their own usage with a plot
 * and nothing of anyone else's; a teacher sees their class per member and no quota form; an admin sets a quota in
 * the form (a bad value is refused with a message), and the student's home page then says when it frees up.
 */
const ready = requireService('Chromium', chromiumAvailable());
const PASSWORD = 'usage-page-pw-7731';

describe.skipIf(!ready)('the usage page, in Chromium', () => {
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__KIND: 'instant', LABHUB_USAGE__SAMPLE_INTERVAL: '1',
      LABHUB_ROLES: JSON.stringify([{ name: 'teacher', scopes: ['read:usage!group=cls'], groups: ['teachers'] }]),
    },
  });
  let browser: Browser;
  let admin = '';

  async function pageAs(name: string): Promise<{ page: Page; csp: string[] }> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    const csp = watchCsp(page);
    await logIn(page, hub.url, name, PASSWORD);
    return { page, csp };
  }

  beforeAll(async () => {
    await hub.start();
    for (const [name, admin] of [['ada', true], ['bob', false], ['carol', false], ['teach', false]] as const) {
      expect((await hub.cli(['users', 'add', name, ...(admin ? ['--admin'] : []), '--password-stdin'], `${PASSWORD}\n`)).status).toBe(0);
    }
    admin = (await hub.cli(['token', 'ada'])).stdout.trim();
    expect((await api(hub.url, admin, 'POST', '/groups/cls', { users: ['bob', 'carol'] })).status).toBe(201);
    expect((await api(hub.url, admin, 'POST', '/groups/teachers/users', { users: ['teach'] })).status).toBe(200);
    expect((await api(hub.url, admin, 'PUT', '/groups/cls/properties', { profiles: [{ slug: 'small', display_name: 'Small', mem_limit: '1G' }] })).status).toBe(200);
    expect((await api(hub.url, admin, 'POST', '/users/bob/server', { profile: 'cls/small' })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await api(hub.url, admin, 'DELETE', '/users/bob/server')).status).toBe(204);
    expect((await api(hub.url, admin, 'POST', '/users/carol/server', { profile: 'cls/small' })).status).toBe(201);
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await hub.cleanup();
  });

  it('shows a student their own usage with a plot, and nobody else\'s', async () => {
    const { page, csp } = await pageAs('bob');
    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    await page.waitForURL(/\/hub\/usage$/);
    await expect.poll(() => page.getByRole('heading', { name: 'Your usage' }).isVisible()).toBe(true);
    expect(await page.locator('.usage-plot').first().locator('rect').count()).toBe(30);
    expect(await page.getByRole('cell', { name: 'Default server' }).isVisible()).toBe(true);
    for (const hidden of ['Everyone', 'Quotas', 'Class cls', 'Classes']) expect(await page.getByRole('heading', { name: hidden, exact: true }).count()).toBe(0);
    expect(await page.content()).not.toContain('carol');
    await page.getByRole('link', { name: 'Last 7 days' }).click();
    expect(await page.locator('.usage-plot rect').count()).toBe(7);
    await expectAccessible(page);
    await screenshot(page, 'usage');
    expect(csp).toEqual([]);
  });

  it('shows a teacher their class per member, without the quota form', async () => {
    const { page, csp } = await pageAs('teach');
    await page.goto(`${hub.url}/hub/usage`);
    const cls = page.locator('section', { has: page.getByRole('heading', { name: 'Class cls' }) });
    await expect.poll(() => cls.isVisible()).toBe(true);
    const members = await cls.locator('tbody tr td:first-child').allTextContents();
    expect(members.map((m) => m.trim())).toEqual(['bob', 'carol']);
    expect(await page.getByRole('heading', { name: 'Everyone' }).count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Quotas' }).count()).toBe(0);
    await expectAccessible(page);
    await screenshot(page, 'usage-teacher');
    expect(csp).toEqual([]);
  });

  it('lets an admin set and remove quotas in a form, refusing bad values with a message', async () => {
    const { page, csp } = await pageAs('ada');
    await page.goto(`${hub.url}/hub/usage`);
    const form = page.locator('form', { has: page.getByRole('button', { name: 'Save quota' }) });
    await form.getByLabel('Name').fill('bob');
    // A window past a year passes the browser's checks and is refused by the hub.
    await form.getByLabel('Window (hours)').fill('9000');
    await form.getByLabel('Server-hours').fill('1');
    await form.getByRole('button', { name: 'Save quota' }).click();
    await expect.poll(() => page.locator('.banner.error, p.error.banner').textContent()).toMatch(/window_hours/);
    await form.getByLabel('Name').fill('bob');
    await form.getByLabel('Window (hours)').fill('24');
    await form.getByLabel('Server-hours').fill('0.0001');
    await form.getByRole('button', { name: 'Save quota' }).click();
    await expect.poll(() => page.locator('.banner.ok').textContent()).toBe('Saved the quota of bob');
    const quotas = page.locator('section', { has: page.getByRole('heading', { name: 'Quotas' }) });
    expect(await quotas.getByRole('cell', { name: /^bob/ }).isVisible()).toBe(true);
    await page.getByLabel('Class', { exact: true }).selectOption('cls');
    await page.getByRole('button', { name: 'Show' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Class cls' }).isVisible()).toBe(true);
    expect(await page.getByRole('heading', { name: 'Everyone' }).isVisible()).toBe(true);
    await expectAccessible(page);
    await screenshot(page, 'usage-admin');

    // bob's home page says the quota is used up and until when; a start is refused naming it.
    const student = await pageAs('bob');
    await expect.poll(() => student.page.locator('#usage-heading + p, section:has(#usage-heading) p').first().textContent()).toMatch(/Your quota is used up until/);
    const refused = await api(hub.url, admin, 'POST', '/users/bob/server');
    expect(refused.status).toBe(429);
    // The page's Start goes through the same check and shows its message.
    await student.page.getByRole('button', { name: 'Start' }).first().click();
    await expect.poll(() => student.page.locator('p.error.banner').textContent()).toMatch(/^Quota reached: your quota allows 0\.0001 server-hours per day \(.*\)\. It frees up at /);

    await quotas.getByRole('button', { name: 'Remove' }).click();
    await expect.poll(() => page.locator('.banner.ok').textContent()).toBe('Removed the quota of bob');
    expect(csp).toEqual([]);
    expect(student.csp).toEqual([]);
  }, 60_000);
});
