import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startConfiguredHub } from '../helpers/auth-hub.js';
import { api, eventually, type HubProcess } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { requireService } from '../helpers/jupyter.js';
import { expectAccessible, logIn, screenshot, watchCsp } from '../helpers/pages.js';

/**
 * JupyterHub 6.0's spawn links: `/hub/spawn[/<user>[/<server>]]?opt-<key>=<value>` carries spawn options. LabHub
 * shows them on a page and starts on a click (a POST with XSRF), so a link alone never starts anything.
 */
const ready = requireService('Chromium', chromiumAvailable());

describe.skipIf(!ready)('spawn links with opt- options', () => {
  let hub: HubProcess;
  let admin = '';
  let browser: Browser;
  let lea: Page;
  const csp: string[] = [];
  const serverOf = async (name: string) => ((await api(hub.url, admin, 'GET', `/users/${name}`)).body as {
    servers: Record<string, { ready: boolean; user_options: Record<string, unknown> }>;
  }).servers[''];

  beforeAll(async () => {
    ({ hub, adminToken: admin } = await startConfiguredHub({ authenticator: { kind: 'dummy' }, spawner: { kind: 'instant' } }));
    for (const name of ['lea', 'max']) expect((await api(hub.url, admin, 'POST', `/users/${name}`)).status).toBe(201);
    const created = await api(hub.url, admin, 'POST', '/groups/bio101', { users: ['lea'] });
    expect(created.status).toBe(201);
    const properties = { profiles: [{ slug: 'python', display_name: 'Python' }, { slug: 'r', display_name: 'R', description: 'R with tidyverse' }], default_profile: 'python' };
    expect((await api(hub.url, admin, 'PUT', '/groups/bio101/properties', properties)).status).toBe(200);
    browser = await launchChromium();
    lea = await (await browser.newContext()).newPage();
    csp.push(...watchCsp(lea));
    await logIn(lea, hub.url, 'lea', 'lea-password-1');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await hub?.cleanup();
  });

  it('shows the options of a link and starts nothing until the user presses Start', async () => {
    await lea.goto(`${hub.url}/hub/spawn?opt-profile=bio101%2Fr&opt-week=3&next=${encodeURIComponent('/user/lea/tree/week3')}`);
    await expect(lea.getByRole('heading', { name: 'Start default server?' }).isVisible()).resolves.toBe(true);
    const options = await lea.locator('dl.options').textContent();
    expect(options).toContain('R');
    expect(options).toContain('bio101');
    expect(options).toMatch(/week\s*3/);
    await expectAccessible(lea);
    await screenshot(lea, 'spawn-link');
    expect(await serverOf('lea')).toBeUndefined();

    await lea.getByRole('button', { name: 'Start' }).click();
    // The progress page sends the browser on to `next` once the server is ready.
    await lea.waitForURL(/\/user\/lea\/tree\/week3$/, { timeout: 30_000 });
    expect((await serverOf('lea'))?.ready).toBe(true);
    expect((await serverOf('lea'))!.user_options).toEqual({ profile: 'bio101/r', week: '3' });
    // Once it runs, the same link goes straight to the server (and to `next` inside it), as JupyterHub's does.
    const again = await lea.goto(`${hub.url}/hub/spawn?opt-profile=bio101%2Fr&next=${encodeURIComponent('/user/lea/tree/week3')}`);
    expect(new URL(lea.url()).pathname).toBe('/user/lea/tree/week3');
    expect(again?.status()).toBe(200);
    expect((await api(hub.url, admin, 'DELETE', '/users/lea/server')).status).toBeLessThan(300);
  });

  it('says so when a link names a profile the user is not offered, and offers no Start', async () => {
    await eventually(async () => (await serverOf('lea')) === undefined, 30_000);
    await lea.goto(`${hub.url}/hub/spawn?opt-profile=chem201%2Fgpu`);
    await expect(lea.getByRole('alert').textContent()).resolves.toContain('chem201/gpu');
    expect(await lea.getByRole('button', { name: 'Start' }).count()).toBe(0);
    await expectAccessible(lea);
  });

  it('refuses malformed options, and links to someone else\'s server without the power to start it', async () => {
    for (const query of ['opt-bad%20name=1', 'opt-a=1&opt-a=2', `opt-long=${'x'.repeat(1001)}`]) {
      const res = await lea.goto(`${hub.url}/hub/spawn?${query}`);
      expect(res?.status(), query).toBe(400);
    }
    const res = await lea.goto(`${hub.url}/hub/spawn/max?opt-profile=bio101%2Fpython`);
    expect([403, 404]).toContain(res?.status());
    expect(await serverOf('max')).toBeUndefined();
    // No options: the home page, where the forms are.
    await lea.goto(`${hub.url}/hub/spawn`);
    expect(new URL(lea.url()).pathname).toBe('/hub/home');
    expect(csp).toEqual([]);
  });
});
