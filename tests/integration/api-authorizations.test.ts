/**
 * JupyterHub's deprecated owner lookups, `GET /authorizations/token/{token}` and
 * `GET /authorizations/cookie/{cookie_name}/{cookie_value}`, against a real hub: who may ask, what the answer shows
 * (JupyterHub 5.5.1's apihandlers/auth.py), that a lookup counts as activity, and that the looked-up secret stays
 * out of the hub's output.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../hub/auth/sessions.js';
import { Browser, HubProcess } from '../helpers/hub.js';
import { apiCall, validateComponent, validateResponse } from '../helpers/openapi.js';

const SERVICE_TOKEN = 'legacy-lookup-service-token-0123';

describe('deprecated /authorizations lookups', () => {
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy',
      LABHUB_SERVICES: `[{name: reporter, api_token: ${SERVICE_TOKEN}, url: 'http://127.0.0.1:9'}]`,
    },
  });
  let admin = '';
  let eli = '';
  let dora = '';
  const get = (path: string, token: string | undefined) => apiCall(hub.url, 'GET', path, { token });
  const userOf = async (name: string) => (await get(`/users/${name}`, admin)).body as { last_activity: string | null };

  beforeAll(async () => {
    await hub.start();
    for (const [name, extra] of [['admin', ['--admin']], ['dora', []], ['eli', []]] as const) {
      const added = await hub.cli(['users', 'add', name, ...extra]);
      expect(added.status, added.stderr).toBe(0);
    }
    admin = (await hub.cli(['token', 'admin'])).stdout.trim();
    eli = (await hub.cli(['token', 'eli'])).stdout.trim();
    const made = await apiCall(hub.url, 'POST', '/users/dora/tokens', { token: admin, body: { note: 'looked up' } });
    expect(made.status).toBe(201);
    dora = (made.body as { token: string }).token;
  });

  afterAll(() => hub.cleanup());

  describe('GET /authorizations/token/{token}', () => {
    it('shows another user\'s token owner with the requester\'s scopes plus the owner\'s identify scopes', async () => {
      const res = await get(`/authorizations/token/${dora}`, eli);
      expect(res.status).toBe(200);
      expect(validateResponse('get', '/authorizations/token/{token}', 200, res.body)).toEqual([]);
      expect(validateComponent('User', res.body)).toEqual([]);
      // read:users:name and read:users:groups on dora: exactly these keys, nothing of her servers or activity.
      expect(res.body).toEqual({ kind: 'user', name: 'dora', admin: false, groups: [] });
    });

    it('shows an admin the whole model, with the activity the lookup just recorded', async () => {
      const before = new Date(Date.now() - 1000).toISOString();
      const res = await get(`/authorizations/token/${dora}`, admin);
      expect(res.status).toBe(200);
      expect(validateComponent('User', res.body)).toEqual([]);
      const model = res.body as { name: string; last_activity: string; servers: unknown; roles: string[] };
      expect(model).toMatchObject({ kind: 'user', name: 'dora', roles: ['user'], servers: {} });
      expect(model.last_activity >= before).toBe(true);
      expect((await userOf('dora')).last_activity! >= before).toBe(true);
      const tokens = (await get('/users/dora/tokens', admin)).body as { api_tokens: Array<{ note: string; last_activity: string | null }> };
      expect(tokens.api_tokens.find((t) => t.note === 'looked up')!.last_activity! >= before).toBe(true);
    });

    it('shows a service token\'s owner as a service model', async () => {
      const res = await get(`/authorizations/token/${SERVICE_TOKEN}`, eli);
      expect(res.status).toBe(200);
      expect(validateComponent('Service', res.body)).toEqual([]);
      expect(res.body).toEqual({ kind: 'service', name: 'reporter', admin: false });
    });

    it('answers 404 JSON for an unknown or expired token, and never repeats it', async () => {
      const unknown = `${dora.slice(0, 8)}${'x'.repeat(dora.length - 8)}`;
      const missing = await get(`/authorizations/token/${unknown}`, admin);
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ status: 404, message: expect.any(String) });
      expect(missing.text).not.toContain(unknown);

      const made = await apiCall(hub.url, 'POST', '/users/dora/tokens', { token: admin, body: { expires_in: 1 } });
      expect(made.status).toBe(201);
      const shortLived = (made.body as { token: string }).token;
      expect((await get(`/authorizations/token/${shortLived}`, admin)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 2100));
      const expired = await get(`/authorizations/token/${shortLived}`, admin);
      expect(expired.status).toBe(404);
      expect(expired.body).toMatchObject({ status: 404 });
    });

    it('needs a token: no credentials and a browser session are refused', async () => {
      expect((await get(`/authorizations/token/${dora}`, undefined)).status).toBe(403);
      const browser = new Browser(hub.url);
      expect((await browser.login('eli', 'eli-password')).status).toBe(200);
      const res = await browser.request(`/hub/api/authorizations/token/${dora}`);
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ status: 403 });
    });
  });

  describe('GET /authorizations/cookie/{cookie_name}/{cookie_value}', () => {
    let browser: Browser;
    let cookie = '';

    beforeAll(async () => {
      browser = new Browser(hub.url);
      expect((await browser.login('dora', 'dora-password')).status).toBe(200);
      cookie = browser.cookie(SESSION_COOKIE, '/hub/')!;
      expect(cookie).toBeDefined();
    });

    const lookup = (name: string, value: string, token: string | undefined) =>
      get(`/authorizations/cookie/${encodeURIComponent(name)}/${encodeURIComponent(value)}`, token);

    it('resolves the hub\'s session cookie to its user, with the requester\'s own scopes, and records activity', async () => {
      const before = new Date(Date.now() - 1000).toISOString();
      const res = await lookup(SESSION_COOKIE, cookie, admin);
      expect(res.status).toBe(200);
      expect(validateResponse('get', '/authorizations/cookie/{cookie_name}/{cookie_value}', 200, res.body)).toEqual([]);
      expect(res.body).toMatchObject({ kind: 'user', name: 'dora', admin: false, groups: [], servers: {} });
      expect((res.body as { last_activity: string }).last_activity >= before).toBe(true);
    });

    it('adds no identify scopes: a requester without read access to the user sees an empty model, as JupyterHub shows', async () => {
      const res = await lookup(SESSION_COOKIE, cookie, eli);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({});
    });

    it('answers 404 JSON for another cookie name, a forged value, or a session that ended', async () => {
      for (const [name, value] of [['jupyterhub-hub-login', cookie], ['other', cookie], [SESSION_COOKIE, `${cookie.split('.')[0]}.forged`], [SESSION_COOKIE, 'x']]) {
        const res = await lookup(name!, value!, admin);
        expect(res.status, name).toBe(404);
        expect(res.body).toEqual({ status: 404, message: expect.any(String) });
        expect(res.text).not.toContain(cookie);
      }
      expect((await browser.navigate('/hub/logout')).status).toBe(200);
      expect((await lookup(SESSION_COOKIE, cookie, admin)).status).toBe(404);
      expect(hub.output).not.toContain(cookie.split('.')[1]);
    });

    it('needs a token', async () => {
      expect((await lookup(SESSION_COOKIE, cookie, undefined)).status).toBe(403);
    });
  });

  it('keeps the looked-up token and cookie out of the hub\'s output', () => {
    expect(hub.output).not.toContain(dora);
    expect(hub.output).not.toContain(SERVICE_TOKEN);
  });
});
