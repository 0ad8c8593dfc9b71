import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Browser, HubProcess, xsrfFromHtml } from '../helpers/hub.js';

/**
 * Classes through the REST API (group properties) and the admin users page at 10,000 users, on a real hub with the
 * instant spawner.
 */
describe('classes through the REST API', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_CLASSES__SHARED_VOLUMES: '[class-bio101-materials]' } });
  let token = '';

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'ada', '--admin', '--password-stdin'], 'ada-password\n')).status).toBe(0);
    token = (await hub.cli(['token', 'ada'])).stdout.trim();
    expect((await api(hub.url, token, 'POST', '/users', { usernames: ['bea', 'carl'] })).status).toBe(201);
    expect((await api(hub.url, token, 'POST', '/groups/bio101', { users: ['bea'] })).status).toBe(201);
    expect((await api(hub.url, token, 'POST', '/groups/chem201', { users: ['carl'] })).status).toBe(201);
  });

  afterAll(() => hub.cleanup());

  it('stores class properties in the JupyterHub group model and refuses a bad shape with a clear 400', async () => {
    const properties = {
      profiles: [{ slug: 'python', display_name: 'Python', image: 'labhub/notebook-debian:latest', cpu_limit: 1, mem_limit: '2G' }],
      default_profile: 'python', shared_volume: 'class-bio101-materials', colour: 'green',
    };
    const ok = await api(hub.url, token, 'PUT', '/groups/bio101/properties', properties);
    expect(ok.status).toBe(200);
    expect((ok.body as { properties: unknown }).properties).toEqual(properties);

    for (const [bad, message] of [
      [{ profiles: [{ slug: 'python', display_name: 'Python', mem_limit: 'huge' }] }, /profiles\.0\.mem_limit/],
      [{ profiles: [{ slug: 'python', display_name: 'Python' }], default_profile: 'r' }, /default_profile: r is not one of/],
      [{ shared_volume: '/etc' }, /shared_volume/],
    ] as const) {
      const res = await api(hub.url, token, 'PUT', '/groups/chem201/properties', bad);
      expect(res.status).toBe(400);
      expect((res.body as { message: string }).message).toMatch(message);
    }
    expect(((await api(hub.url, token, 'GET', '/groups/chem201')).body as { properties: unknown }).properties).toEqual({});
  });

  it('starts only profiles of the user\'s own classes', async () => {
    expect((await api(hub.url, token, 'POST', '/users/bea/server', { profile: 'bio101/python' })).status).toBe(201);
    expect((await api(hub.url, token, 'DELETE', '/users/bea/server')).status).toBe(204);
    const foreign = await api(hub.url, token, 'POST', '/users/carl/server', { profile: 'bio101/python' });
    expect(foreign.status).toBe(403);
    expect((foreign.body as { message: string }).message).toMatch(/not offered by any of your classes/);
    expect((await api(hub.url, token, 'POST', '/users/carl/server', { profile: 'bio101' })).status).toBe(400);
    expect((await api(hub.url, token, 'POST', '/users/carl/server', { profile: ['x'] })).status).toBe(400);
    // No profile chosen: the class default applies (bea) or the spawner's defaults (carl, whose class has none).
    expect((await api(hub.url, token, 'POST', '/users/carl/server')).status).toBe(201);
    expect((await api(hub.url, token, 'DELETE', '/users/carl/server')).status).toBe(204);
  });

  it('serves any page of the admin users list quickly at 10,000 users', async () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `student${String(i).padStart(5, '0')}`);
    expect((await api(hub.url, token, 'POST', '/users', { usernames: names })).status).toBe(201);
    const browser = new Browser(hub.url);
    await browser.login('ada', 'ada-password');
    const timings: number[] = [];
    for (const query of ['', '?page=150', '?sort=-last_activity&page=80', '?q=student0999', '?sort=-name&page=2']) {
      const started = performance.now();
      const res = await browser.navigate(`/hub/admin/users${query}`);
      timings.push(performance.now() - started);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toMatch(/10003 users|10 users/);
    }
    timings.sort((a, b) => a - b);
    console.log(`admin users page at 10,003 users: median ${timings[2]!.toFixed(1)} ms, max ${timings[4]!.toFixed(1)} ms`);
    expect(timings[2]).toBeLessThan(1000);

    // A form with more fields than the pages accept is a clear 413, not a server error.
    const xsrf = xsrfFromHtml(await (await browser.navigate('/hub/admin/classes/bio101')).text());
    const body = new URLSearchParams([['_xsrf', xsrf], ...names.slice(0, 60).map((n): [string, string] => ['remove', n])]).toString();
    const tooMany = await browser.navigate('/hub/admin/classes/bio101/members', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(tooMany.status).toBe(413);
    expect(await tooMany.text()).toMatch(/too many fields/);
  });
});
