import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { api, eventually, HubProcess, REPO } from '../helpers/hub.js';
import { chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';
import { logIn, screenshot } from '../helpers/pages.js';
import type { IdleState } from '../../hub/servers/idle-culler.js';

/**
 * The idle warning inside JupyterLab 4 (issue 20 item 4: "the user's open pages"): a real jupyterhub-singleuser 5 with
 * JupyterLab, given LabHub's server extension and JupyterLab extension exactly as the notebook images install them
 * (images/python), shows the countdown over the lab, and its "Keep it running" resets the hub's idle clock through
 * the server's own token.
 */
const singleuser = findSingleuser(5);
const ready = requireService('Chromium', chromiumAvailable()) && requireService('jupyterhub-singleuser 5.x with JupyterLab', singleuser !== null);

const TIMEOUT = 40;
const WARN_BEFORE = 32;
const PASSWORD = 'idle-lab-pw-1';
const PYTHON = join(REPO, 'images/python');

describe.skipIf(!ready)('the idle warning inside JupyterLab, in Chromium', () => {
  const hub = new HubProcess({
    env: {
      LABHUB_AUTHENTICATOR__KIND: 'dummy',
      LABHUB_SPAWNER: JSON.stringify({
        kind: 'local', cmd: [singleuser ?? ''], allow_root: true,
        environment: { PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: PYTHON, JUPYTER_PATH: join(PYTHON, 'share/jupyter'), JUPYTER_CONFIG_PATH: join(PYTHON, 'etc/jupyter') },
      }),
      LABHUB_IDLE_CULLING: `{enabled: true, timeout: ${TIMEOUT}, warn_before: ${WARN_BEFORE}, check_interval: 1}`,
    },
  });
  let browser: Browser;
  let token = '';
  const idle = async () => (await api(hub.url, token, 'GET', '/users/ida/server/idle')).body as IdleState;

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'ida', '--password-stdin'], `${PASSWORD}\n`)).status).toBe(0);
    token = (await hub.cli(['token', 'ida'])).stdout.trim();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await api(hub.url, token, 'DELETE', '/users/ida/server').catch(() => undefined);
    await browser?.close();
    await hub.cleanup();
  });

  it('counts down over JupyterLab, "Keep it running" resets the hub\'s idle clock, and a stop is told', async () => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await logIn(page, hub.url, 'ida', PASSWORD);
    expect([201, 202]).toContain((await api(hub.url, token, 'POST', '/users/ida/server')).status);
    await eventually(async () => (await idle()).seconds_left !== null, 60_000, 250);
    await page.goto(`${hub.url}/user/ida/lab`);
    await page.waitForURL(/\/user\/ida\/lab/, { timeout: 60_000 });

    const banner = page.locator('.labhub-idle-warning');
    await banner.waitFor({ state: 'visible', timeout: (TIMEOUT - WARN_BEFORE + 20) * 1000 });
    await expect.poll(() => banner.locator('.labhub-idle-message').textContent()).toMatch(/^This server will be stopped for inactivity in 0:[0-3]\d\.$/);
    await screenshot(page, 'idle-warning-lab');
    // JupyterLab polling its own API while the banner asks must not have counted as activity.
    const before = await idle();
    expect(before.warning).toBe(true);

    await banner.getByRole('button', { name: 'Keep it running' }).click();
    await banner.waitFor({ state: 'hidden', timeout: 10_000 });
    const after = await idle();
    expect(Date.parse(after.last_activity!)).toBeGreaterThan(Date.parse(before.last_activity!));
    expect(after.warning).toBe(false);
    expect(after.seconds_left).toBeGreaterThan(WARN_BEFORE);

    // Warned again, the server stops meanwhile (here by the API): the banner says so instead of counting on.
    await banner.waitFor({ state: 'visible', timeout: (TIMEOUT - WARN_BEFORE + 20) * 1000 });
    expect([202, 204]).toContain((await api(hub.url, token, 'DELETE', '/users/ida/server')).status);
    await expect.poll(() => banner.locator('.labhub-idle-message').textContent(), { timeout: 20_000 }).toMatch(/has stopped/);
    expect(await banner.getByRole('button', { name: 'Keep it running' }).isVisible()).toBe(false);
  });

  it('answers only people the server lets in: the hub\'s idle state is not readable without signing in there', async () => {
    const res = await fetch(`${hub.url}/user/ida/labhub/idle`, { redirect: 'manual' });
    expect([302, 403]).toContain(res.status);
    const post = await fetch(`${hub.url}/user/ida/labhub/idle`, { method: 'POST', redirect: 'manual' });
    expect([302, 403]).toContain(post.status);
  });
});
