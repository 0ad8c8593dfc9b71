import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../hub/config/load.js';
import { homeDirName } from '../../spawners/local.js';
import { api, Browser, HubProcess, REPO, xsrfFromHtml } from '../helpers/hub.js';
import { renderedText } from '../helpers/pages.js';

/**
 * Deleting a user from the admin page, with and without "also remove data", on a real hub whose local spawner keeps
 * a home directory per account under its data directory.
 */
const TINY = resolve(REPO, 'tests/fixtures/tiny-singleuser.py');

describe('deleting a user from the admin page', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__CMD: JSON.stringify(['python3', TINY]), LABHUB_SPAWNER__ALLOW_ROOT: 'true', LABHUB_SPAWNER__RUN_AS_SYSTEM_USERS: 'false' } });
  let browser: Browser;
  let token = '';

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'ada', '--admin', '--password-stdin'], 'ada-password\n')).status).toBe(0);
    token = (await hub.cli(['token', 'ada'])).stdout.trim();
    browser = new Browser(hub.url);
    expect((await browser.login('ada', 'ada-password')).status).toBe(200);
  });
  afterAll(() => hub.cleanup());

  /** Creates the user, starts and stops a server (so a home exists) and answers that home's path. */
  async function userWithHome(name: string): Promise<string> {
    expect((await api(hub.url, token, 'POST', `/users/${name}`)).status).toBe(201);
    expect((await api(hub.url, token, 'POST', `/users/${name}/server`)).status).toBe(201);
    expect((await api(hub.url, token, 'DELETE', `/users/${name}/server`)).status).toBe(204);
    const sqlite = new SQLite(hub.sqlitePath, { readonly: true });
    const row = sqlite.prepare('select uid, legacy_name from users where name = ?').get(name) as { uid: string; legacy_name: string | null };
    sqlite.close();
    const home = join(loadConfig({ env: hub.env }).data_dir, 'users', homeDirName({ uid: row.uid, legacyName: row.legacy_name }));
    expect(existsSync(home)).toBe(true);
    return home;
  }

  async function deleteInPage(name: string, purge: boolean): Promise<string> {
    const xsrf = xsrfFromHtml(await (await browser.navigate(`/hub/admin/users/${name}`)).text());
    const fields: Array<[string, string]> = [['_xsrf', xsrf], ...(purge ? [['purge', 'on'] as [string, string]] : [])];
    const body = new URLSearchParams(fields).toString();
    const res = await browser.navigate(`/hub/admin/users/${name}/delete`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(res.status).toBe(200);
    // The page it lands on says what was done, in its status banner.
    const banner = /<p class="ok banner" role="status">([^<]*)<\/p>/.exec(await res.text())?.[1] ?? '';
    return renderedText(banner);
  }

  it('offers to remove the data, and by default keeps it, out of reach of a new account of the same name', async () => {
    const home = await userWithHome('dee');
    expect(await (await browser.navigate('/hub/admin/users/dee')).text()).toContain('name="purge"');
    expect(await deleteInPage('dee', false)).toMatch(/^Deleted dee\. Their data was kept/);
    expect(existsSync(home)).toBe(true);
    const successor = await userWithHome('dee');
    expect(successor).not.toBe(home);
  });

  it('with "also remove data" removes the home and says so', async () => {
    const home = await userWithHome('eli');
    const done = await deleteInPage('eli', true);
    expect(done).toContain('Deleted eli.');
    expect(done).toContain(`Removed: directory ${home}`);
    expect(existsSync(home)).toBe(false);
    expect((await api(hub.url, token, 'GET', '/users/eli')).status).toBe(404);
  });
});
