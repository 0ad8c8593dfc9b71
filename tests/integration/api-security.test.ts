/**
 * Regression tests for JupyterHub's security advisories and practices (research/auth.md §7.3, §7.4), against a real
 * `labhub start` (instant spawner, dummy authenticator): tokens at rest, how credentials are accepted, XSRF on the API
 * and on forms (GHSA-m68r-v472-jgq9, GHSA-7r3h-4ph8-w38g), admin escalation through `admin:users`
 * (GHSA-9x4q-3gxw-849f) and filtered admin scopes (GHSA-69wv-m5fw-2fhp), open redirects after login
 * (GHSA-3vff-hjqv-m7h8), HTML injection through `next` (GHSA-c4gm-pwx9-9w8j), huge usernames in logs
 * (GHSA-p43p-whwx-q52h), logout, isolation between users, framing, and tokens echoed in errors.
 */
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, eventually, HubProcess, sqliteFiles, xsrfFromHtml } from '../helpers/hub.js';
import { apiCall, type ApiAnswer, type ApiCallOptions } from '../helpers/openapi.js';

const BASE_ENV = { LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy' };
const SESSION_COOKIE = 'labhub-session';

function isError(res: ApiAnswer, status: number | number[], what = ''): void {
  const allowed = Array.isArray(status) ? status : [status];
  expect(allowed, `${what} answered ${res.status}: ${res.text.slice(0, 300)}`).toContain(res.status);
  expect(res.body, what).toEqual({ status: res.status, message: expect.any(String) });
}

async function stopHub(hub: HubProcess): Promise<void> {
  await hub.cleanup();
  // A hub stuck in a request may ignore SIGTERM: do not leave it running.
  if (hub.child?.exitCode === null) hub.kill9();
}

describe('security regressions', () => {
  const hub = new HubProcess({ env: BASE_ENV });
  let admin = '';
  let abeToken = '';
  let beaToken = '';
  const call = (method: string, path: string, options: ApiCallOptions = {}) => apiCall(hub.url, method, path, { token: admin, ...options });

  /** A browser logged in through the login form (dummy authenticator: any password). */
  async function loggedIn(name: string): Promise<Browser> {
    const browser = new Browser(hub.url);
    const home = await browser.login(name, `${name}-password`);
    expect(home.status).toBe(200);
    expect(browser.cookie(SESSION_COOKIE, '/hub/')).toBeDefined();
    return browser;
  }

  /** The XSRF token of a logged-in browser's session, as its home page embeds it. */
  async function xsrfOf(browser: Browser): Promise<string> {
    return xsrfFromHtml(await (await browser.navigate('/hub/home')).text());
  }

  /** A request with exactly these cookies (the Browser jar would add its own). */
  function withCookies(path: string, cookies: Record<string, string>, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('cookie', Object.entries(cookies).map(([k, v]) => `${k}=${v}`).join('; '));
    return fetch(`${hub.url}${path}`, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
  }

  async function serverOf(name: string): Promise<string | null> {
    const res = await call('GET', `/users/${name}`);
    expect(res.status).toBe(200);
    return (res.body as { server: string | null; pending: string | null }).server;
  }

  beforeAll(async () => {
    await hub.start();
    for (const [name, extra] of [['admin', ['--admin']], ['abe', []], ['bea', []]] as const) {
      const added = await hub.cli(['users', 'add', name, ...extra]);
      expect(added.status, added.stderr).toBe(0);
    }
    admin = (await hub.cli(['token', 'admin'])).stdout.trim();
    abeToken = (await hub.cli(['token', 'abe'])).stdout.trim();
    beaToken = (await hub.cli(['token', 'bea'])).stdout.trim();
    for (const t of [admin, abeToken, beaToken]) expect(t.length).toBeGreaterThanOrEqual(32);
  });

  afterAll(async () => {
    await stopHub(hub);
  });

  describe('tokens at rest', () => {
    it('api_tokens holds only sha256 hashes, never a token', async () => {
      const made = await call('POST', '/users/abe/tokens', { body: { note: 'at-rest check' } });
      expect(made.status).toBe(201);
      const fresh = (made.body as { token: string }).token;
      const db = new Database(hub.sqlitePath, { readonly: true, fileMustExist: true });
      try {
        const rows = db.prepare('SELECT * FROM api_tokens').all() as Array<Record<string, unknown>>;
        expect(rows.length).toBeGreaterThanOrEqual(4);
        for (const row of rows) {
          const text = JSON.stringify(row);
          for (const token of [admin, abeToken, beaToken, fresh]) expect(text).not.toContain(token);
          expect(String(row.hashed)).toMatch(/^sha256:[0-9a-f]{64}$/);
          expect(String(row.prefix).length).toBeLessThanOrEqual(4);
        }
      } finally {
        db.close();
      }
    });

    it('no file of the state DB (main, WAL) contains a token or a session secret', async () => {
      const browser = await loggedIn('abe');
      const secret = browser.cookie(SESSION_COOKIE, '/hub/')!.split('.')[1]!;
      expect(secret.length).toBeGreaterThan(20);
      const files = sqliteFiles(hub);
      expect(files).toContain(hub.sqlitePath);
      for (const file of files) {
        const bytes = readFileSync(file).toString('latin1');
        for (const token of [admin, abeToken, beaToken, secret]) expect(bytes.includes(token), `${file}`).toBe(false);
      }
    });
  });

  describe('how credentials are accepted', () => {
    it('Authorization: token X and Bearer X both work, in any case', async () => {
      for (const header of [`token ${abeToken}`, `Bearer ${abeToken}`, `bearer ${abeToken}`, `TOKEN ${abeToken}`, `  token   ${abeToken}  `]) {
        const res = await apiCall(hub.url, 'GET', '/user', { headers: { authorization: header } });
        expect(res.status, header.replace(abeToken, '<token>')).toBe(200);
        expect(res.body).toMatchObject({ name: 'abe' });
      }
    });

    it('?token= in the URL does not authenticate', async () => {
      for (const path of [`/user?token=${abeToken}`, `/users/abe?token=${abeToken}`, `/user?access_token=${abeToken}`]) {
        isError(await apiCall(hub.url, 'GET', path), 403, path.replace(abeToken, '<token>'));
      }
      isError(await apiCall(hub.url, 'POST', `/users/abe/server?token=${abeToken}`), 403, 'POST with ?token=');
      expect(await serverOf('abe')).toBeNull();
      const page = await fetch(`${hub.url}/hub/home?token=${abeToken}`, { redirect: 'manual' });
      expect(page.status, 'a page with ?token=').toBe(302);
      expect(page.headers.get('location')).toMatch(/^\/hub\/login/);
      expect(page.headers.getSetCookie().some((c) => c.startsWith(`${SESSION_COOKIE}=`) && !/expires=Thu, 01 Jan 1970/i.test(c))).toBe(false);
    });

    it('other Authorization schemes and malformed headers do not authenticate', async () => {
      for (const header of [
        `Basic ${Buffer.from(`abe:${abeToken}`).toString('base64')}`, `Token${abeToken}`, `token ${abeToken} extra`, 'token', '',
        `token ${abeToken.slice(0, -1)}`, `token ${abeToken}x`,
      ]) {
        isError(await apiCall(hub.url, 'GET', '/user', { headers: { authorization: header } }), 403, header.replace(abeToken, '<token>'));
      }
    });

    it('a revoked token stops working at once', async () => {
      const made = await call('POST', '/users/abe/tokens', { body: { note: 'to revoke' } });
      const { token, id } = made.body as { token: string; id: string };
      expect((await apiCall(hub.url, 'GET', '/user', { token })).status).toBe(200);
      expect((await call('DELETE', `/users/abe/tokens/${id}`)).status).toBe(204);
      isError(await apiCall(hub.url, 'GET', '/user', { token }), 403);
    });

    it('an expired token does not authenticate', async () => {
      const made = await call('POST', '/users/abe/tokens', { body: { expires_in: 1, note: 'short' } });
      expect(made.status).toBe(201);
      const { token } = made.body as { token: string };
      await new Promise((r) => setTimeout(r, 1500));
      isError(await apiCall(hub.url, 'GET', '/user', { token }), 403);
    });
  });

  describe('XSRF on cookie-authenticated API requests', () => {
    let abe: Browser;
    let abeXsrf = '';
    const session = () => abe.cookie(SESSION_COOKIE, '/hub/')!;

    beforeAll(async () => {
      abe = await loggedIn('abe');
      abeXsrf = await xsrfOf(abe);
    });

    it('the session cookie with the session XSRF token works on the API', async () => {
      const res = await abe.request('/hub/api/user', { headers: { 'x-xsrftoken': abeXsrf, 'sec-fetch-mode': 'cors' } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ name: 'abe', token_id: null, session_id: expect.any(String) });
    });

    it('a cookie-authenticated POST without an XSRF token answers 403 and does nothing', async () => {
      const res = await abe.request('/hub/api/users/abe/server', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ status: 403, message: expect.any(String) });
      expect(await serverOf('abe')).toBeNull();
    });

    it('a cookie-authenticated GET from script (Sec-Fetch-Mode: cors) without XSRF answers 403', async () => {
      const res = await abe.request('/hub/api/user', { headers: { 'sec-fetch-mode': 'cors' } });
      expect(res.status).toBe(403);
    });

    it('GHSA-m68r: Sec-Fetch-Mode no-cors from a cross-site page gets no exemption on the API', async () => {
      const headers = { 'sec-fetch-mode': 'no-cors', 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' };
      const post = await abe.request('/hub/api/users/abe/server', { method: 'POST', headers, body: '{}' });
      expect(post.status).toBe(403);
      const mint = await abe.request('/hub/api/users/abe/tokens', { method: 'POST', headers, body: '{}' });
      expect(mint.status).toBe(403);
      const get = await abe.request('/hub/api/users/abe/tokens', { headers: { 'sec-fetch-mode': 'no-cors', 'sec-fetch-site': 'cross-site' } });
      expect(get.status).toBe(403);
      expect(await serverOf('abe')).toBeNull();
    });

    it('GHSA-m68r: a cross-site no-cors form POST to /hub/spawn without a token answers 403 and starts nothing', async () => {
      const headers = { 'sec-fetch-mode': 'no-cors', 'sec-fetch-site': 'cross-site', 'sec-fetch-dest': 'empty', 'content-type': 'application/x-www-form-urlencoded' };
      for (const path of ['/hub/spawn', '/hub/spawn/abe']) {
        const res = await abe.request(path, { method: 'POST', headers, body: '' });
        expect(res.status, path).toBe(403);
        await res.body?.cancel();
      }
      const navigate = await abe.request('/hub/spawn/abe', {
        method: 'POST', headers: { ...headers, 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }, body: 'server_name=',
      });
      expect(navigate.status).toBe(403);
      await navigate.body?.cancel();
      expect(await serverOf('abe')).toBeNull();
    });

    it('a cookie-authenticated POST that is not JSON is not authenticated, even with the token', async () => {
      // A cross-site <form enctype="text/plain"> can send a body that parses as JSON.
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const res = await abe.request('/hub/api/users/abe/server', { method: 'POST', headers: { 'x-xsrftoken': abeXsrf, 'content-type': type }, body: '{}' });
        expect(res.status, type).toBe(403);
      }
      expect(await serverOf('abe')).toBeNull();
    });

    it('GHSA-7r3h: a forged _xsrf cookie with a matching field or header is refused for a logged-in session', async () => {
      const forged = 'forged-value-chosen-by-an-attacker';
      const api = await withCookies('/hub/api/users/abe/server', { [SESSION_COOKIE]: session(), _xsrf: forged }, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-xsrftoken': forged }, body: '{}',
      });
      expect(api.status).toBe(403);
      const apiQuery = await withCookies(`/hub/api/users/abe/server?_xsrf=${forged}`, { [SESSION_COOKIE]: session(), _xsrf: forged }, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
      });
      expect(apiQuery.status).toBe(403);
      const form = await withCookies('/hub/spawn/abe', { [SESSION_COOKIE]: session(), _xsrf: forged }, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `_xsrf=${forged}`,
      });
      expect(form.status).toBe(403);
      expect(await serverOf('abe')).toBeNull();
    });

    it('GHSA-7r3h: a validly signed anonymous token, or another session\'s token, is refused', async () => {
      const anonymous = new Browser(hub.url);
      const page = await anonymous.navigate('/hub/login');
      const anonToken = xsrfFromHtml(await page.text());
      expect(anonymous.cookie('_xsrf', '/hub/')).toBe(anonToken);
      const planted = await withCookies('/hub/api/users/abe/server', { [SESSION_COOKIE]: session(), _xsrf: anonToken }, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-xsrftoken': anonToken }, body: '{}',
      });
      expect(planted.status).toBe(403);
      const bea = await loggedIn('bea');
      const beaXsrf = await xsrfOf(bea);
      expect(beaXsrf).not.toBe(abeXsrf);
      const crossed = await withCookies('/hub/spawn/abe', { [SESSION_COOKIE]: session(), _xsrf: beaXsrf }, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `_xsrf=${encodeURIComponent(beaXsrf)}`,
      });
      expect(crossed.status).toBe(403);
      expect(await serverOf('abe')).toBeNull();
    });

    it('the XSRF token changes at every login (session-bound)', async () => {
      const again = await loggedIn('abe');
      const token = await xsrfOf(again);
      expect(token).not.toBe(abeXsrf);
      const old = await again.request('/hub/api/user', { headers: { 'x-xsrftoken': abeXsrf, 'sec-fetch-mode': 'cors' } });
      expect(old.status).toBe(403);
    });

    it('the form with the right token does start the server (so the refusals above meant something)', async () => {
      const res = await abe.postForm('/hub/spawn/abe');
      expect(res.status).toBeLessThan(500);
      await res.body?.cancel();
      await eventually(async () => (await serverOf('abe')) === '/user/abe/', 15_000);
      const unprotected = await abe.request('/hub/api/users/abe/server', { method: 'DELETE', headers: { 'sec-fetch-mode': 'cors' } });
      expect(unprotected.status, 'a cookie DELETE without XSRF').toBe(403);
      const crossSite = await abe.request('/hub/api/users/abe/server', { method: 'DELETE', headers: { 'sec-fetch-mode': 'no-cors', 'sec-fetch-site': 'cross-site' } });
      expect(crossSite.status, 'a cross-site no-cors DELETE').toBe(403);
      expect(await serverOf('abe')).toBe('/user/abe/');
      const stop = await abe.request('/hub/api/users/abe/server', { method: 'DELETE', headers: { 'x-xsrftoken': abeXsrf, 'sec-fetch-mode': 'cors' } });
      expect(stop.status).toBe(204);
      expect(await serverOf('abe')).toBeNull();
    });
  });

  describe('logout', () => {
    it('ends the session server-side: the same cookie no longer authenticates', async () => {
      const browser = await loggedIn('bea');
      const cookie = browser.cookie(SESSION_COOKIE, '/hub/')!;
      const xsrf = await xsrfOf(browser);
      const sessionId = cookie.split('.')[0]!;
      const before = await withCookies('/hub/api/user', { [SESSION_COOKIE]: cookie }, { headers: { 'x-xsrftoken': xsrf, 'sec-fetch-mode': 'cors' } });
      expect(before.status).toBe(200);
      expect(await before.json()).toMatchObject({ name: 'bea', session_id: sessionId });

      const out = await browser.request('/hub/logout', { headers: { 'sec-fetch-mode': 'navigate' } });
      expect([302, 303]).toContain(out.status);

      const after = await withCookies('/hub/api/user', { [SESSION_COOKIE]: cookie }, { headers: { 'x-xsrftoken': xsrf, 'sec-fetch-mode': 'cors' } });
      expect(after.status).toBe(403);
      expect(await after.json()).toEqual({ status: 403, message: expect.any(String) });
      const page = await withCookies('/hub/home', { [SESSION_COOKIE]: cookie });
      expect(page.status).toBe(302);
      expect(page.headers.get('location')).toMatch(/^\/hub\/login/);

      const db = new Database(hub.sqlitePath, { readonly: true, fileMustExist: true });
      try {
        expect(db.prepare('SELECT count(*) AS n FROM sessions WHERE id = ?').get(sessionId)).toEqual({ n: 0 });
        expect(db.prepare('SELECT count(*) AS n FROM api_tokens WHERE session_id = ?').get(sessionId)).toEqual({ n: 0 });
      } finally {
        db.close();
      }
    });

    it('another session of the same user survives it', async () => {
      const one = await loggedIn('bea');
      const two = await loggedIn('bea');
      await (await one.request('/hub/logout')).body?.cancel();
      const still = await two.request('/hub/api/user');
      expect(still.status).toBe(200);
    });
  });

  describe('isolation between users', () => {
    beforeAll(async () => {
      expect((await call('POST', '/users/abe/server')).status).toBe(201);
    });

    afterAll(async () => {
      await call('DELETE', '/users/abe/server');
    });

    it("user B's token cannot start, stop or read user A's server", async () => {
      const as = (method: string, path: string, body?: unknown) => apiCall(hub.url, method, path, { token: beaToken, body });
      isError(await as('DELETE', '/users/abe/server'), [403, 404], 'stop');
      expect(await serverOf('abe')).toBe('/user/abe/');
      isError(await as('GET', '/users/abe'), [403, 404], 'read user');
      const progress = await fetch(`${hub.url}/hub/api/users/abe/server/progress`, { headers: { authorization: `token ${beaToken}` } });
      expect([403, 404]).toContain(progress.status);
      await progress.body?.cancel();
      expect((await call('DELETE', '/users/abe/server')).status).toBe(204);
      isError(await as('POST', '/users/abe/server'), [403, 404], 'start');
      expect(await serverOf('abe')).toBeNull();
      expect((await call('POST', '/users/abe/server')).status).toBe(201);
    });

    it("user B's token cannot touch user A's tokens, activity, account or groups", async () => {
      const as = (method: string, path: string, body?: unknown) => apiCall(hub.url, method, path, { token: beaToken, body });
      isError(await as('GET', '/users/abe/tokens'), [403, 404], 'list tokens');
      isError(await as('POST', '/users/abe/tokens', {}), [403, 404], 'create token');
      isError(await as('GET', '/users/abe/tokens/a1'), [403, 404], 'read token');
      isError(await as('DELETE', '/users/abe/tokens/a1'), [403, 404], 'delete token');
      isError(await as('POST', '/users/abe/activity', { last_activity: new Date().toISOString() }), [403, 404], 'activity');
      isError(await as('PATCH', '/users/abe', { admin: true }), [403, 404], 'patch');
      isError(await as('PATCH', '/users/bea', { admin: true }), [403, 404], 'make self admin');
      isError(await as('DELETE', '/users/abe'), [403, 404], 'delete');
      isError(await as('POST', '/users', { usernames: ['mallory'] }), 403, 'create users');
      isError(await as('POST', '/groups/bea-group'), 403, 'create group');
      isError(await as('GET', '/info'), 403, 'hub info');
      expect((await call('GET', '/users/abe')).body).toMatchObject({ name: 'abe', admin: false });
      expect((await call('GET', '/users/bea')).body).toMatchObject({ name: 'bea', admin: false });
    });

    it("user B's token cannot list users (or sees only itself)", async () => {
      const res = await apiCall(hub.url, 'GET', '/users', { token: beaToken });
      if (res.status === 200) expect((res.body as Array<{ name: string }>).map((u) => u.name)).toEqual(['bea']);
      else isError(res, 403);
      const groups = await apiCall(hub.url, 'GET', '/groups', { token: beaToken });
      if (groups.status !== 200) isError(groups, 403);
    });

    it("user B's browser session cannot start or stop user A's server through the forms", async () => {
      const bea = await loggedIn('bea');
      const stop = await bea.postForm('/hub/stop/abe');
      expect([403, 404]).toContain(stop.status);
      await stop.body?.cancel();
      expect(await serverOf('abe')).toBe('/user/abe/');
    });
  });

  describe('open redirects after login (GHSA-3vff-hjqv-m7h8)', () => {
    const host = () => new URL(hub.url).host;

    /** Location of the login POST for `next`: one request by hand, no redirect followed. */
    async function loginLocation(next: string): Promise<string> {
      const browser = new Browser(hub.url);
      const query = `?next=${encodeURIComponent(next)}`;
      const page = await browser.navigate(`/hub/login${query}`);
      const xsrf = xsrfFromHtml(await page.text());
      const res = await browser.request(`/hub/login${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate' },
        body: new URLSearchParams({ username: 'redirected', password: 'pw', _xsrf: xsrf }).toString(),
      });
      expect(res.status, next).toBe(302);
      return res.headers.get('location')!;
    }

    function staysHere(location: string, next: string): void {
      expect(location.startsWith('/'), `${next} -> ${location}`).toBe(true);
      expect(location.startsWith('//'), `${next} -> ${location}`).toBe(false);
      expect(location.startsWith('/\\'), `${next} -> ${location}`).toBe(false);
      expect(new URL(location, hub.url).origin, `${next} -> ${location}`).toBe(new URL(hub.url).origin);
    }

    it('keeps local paths', async () => {
      for (const next of ['/hub/admin', '/user/other', '/has?repo=https://host.git', '/has#repo=https://host.git']) {
        const location = await loginLocation(next);
        staysHere(location, next);
        expect(decodeURI(location), next).toBe(next);
      }
    });

    it('drops relative and off-site targets', async () => {
      for (const next of [
        'relative/path', 'https://other.domain', 'ftp://other.domain', '//other.domain', '///other.domain/triple',
        '\\\\other.domain/backslashes', '\\/other.domain', 'javascript:alert(1)', 'https:other.domain',
        'https:/other.domain', ' //other.domain', '/\t/other.domain', 'HTTPS://other.domain', `https://${host()}.other.domain/`,
        `https://${host()}@other.domain/`,
      ]) {
        const location = await loginLocation(next);
        staysHere(location, next);
        expect(location, next).toBe('/hub/home');
      }
      // A backslash is kept as %5C (JupyterHub's rule): a path on the hub, which no browser reads as "//".
      const backslash = await loginLocation('/\\other.domain');
      staysHere(backslash, '/\\other.domain');
      expect(backslash).toBe('/%5Cother.domain');
    });

    it('reduces absolute URLs of the hub itself to one-slash paths', async () => {
      for (const next of [
        `https://${host()}/other.domain/`, `https://${host()}//other.domain/`, `https://${host()}///other.domain/`,
        `https://${host()}////other.domain/`, `http://${host()}//other.domain/`, `//${host()}//other.domain/`,
      ]) {
        const location = await loginLocation(next);
        staysHere(location, next);
        expect(location, next).toBe('/other.domain/');
      }
    });

    it('Browser.login never leaves the hub, and an already logged-in GET /hub/login checks next too', async () => {
      for (const next of [`https://${host()}//evil.example/`, '//evil.example', '/hub/home']) {
        const browser = new Browser(hub.url);
        // navigate() throws as soon as a redirect leaves the hub's origin.
        await browser.login('redirected', 'pw', next);
        expect(browser.visited.some((p) => p.startsWith('//') || p.startsWith('/\\'))).toBe(false);
        const again = await browser.request(`/hub/login?next=${encodeURIComponent(next)}`, { headers: { 'sec-fetch-mode': 'navigate' } });
        expect(again.status).toBe(302);
        staysHere(again.headers.get('location')!, next);
      }
    });
  });

  describe('HTML injection through next and the username (GHSA-c4gm-pwx9-9w8j)', () => {
    it('next is escaped in the login page', async () => {
      for (const next of ['"><script>alert(1)</script>', '/hub/"><script>alert(1)</script>', "/hub/'onmouseover='alert(1)", '/hub/home?x="><img src=x onerror=alert(1)>']) {
        const res = await fetch(`${hub.url}/hub/login?next=${encodeURIComponent(next)}`);
        expect(res.status).toBe(200);
        const html = await res.text();
        expect(html, next).not.toContain('<script>alert(1)');
        expect(html, next).not.toContain('"><');
        expect(html, next).not.toContain("'onmouseover='");
        expect(html, next).not.toContain('<img src=x');
      }
    });

    it('a failed login echoes the username escaped', async () => {
      const browser = new Browser(hub.url);
      const xsrf = xsrfFromHtml(await (await browser.navigate('/hub/login')).text());
      const res = await browser.request('/hub/login', {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: '"><img src=x onerror=alert(1)>', password: 'pw', _xsrf: xsrf }).toString(),
      });
      expect(res.status).toBe(403);
      const html = await res.text();
      expect(html).not.toContain('<img src=x');
      expect(html).not.toContain('"><');
    });
  });

  describe('huge usernames on login (GHSA-p43p-whwx-q52h)', () => {
    async function attempt(username: string): Promise<{ status: number; ms: number }> {
      const browser = new Browser(hub.url);
      const xsrf = xsrfFromHtml(await (await browser.navigate('/hub/login')).text());
      const started = performance.now();
      const res = await browser.request('/hub/login', {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username, password: 'pw', _xsrf: xsrf }).toString(),
      });
      await res.body?.cancel();
      return { status: res.status, ms: performance.now() - started };
    }

    it('a 1 MB username is refused quickly and never logged in full', async () => {
      const marker = 'p43pmarker';
      const big = await attempt(marker + 'x'.repeat(1_048_576));
      expect([403, 413]).toContain(big.status);
      expect(big.ms).toBeLessThan(2000);
      // Under the form size limit: the authenticator and the failed-login log line do see this one.
      const large = await attempt(marker + 'y'.repeat(60_000));
      expect(large.status).toBe(403);
      expect(large.ms).toBeLessThan(2000);
      await new Promise((r) => setTimeout(r, 300));
      const lines = hub.output.split('\n').filter((line) => line.includes(marker));
      for (const line of lines) expect(line.length, line.slice(0, 200)).toBeLessThan(2000);
      expect(hub.output).not.toContain('x'.repeat(200));
      expect(hub.output).not.toContain('y'.repeat(200));
      expect(await (await fetch(`${hub.url}/hub/api/`)).json()).toEqual({ version: '5.5.1' });
    });
  });

  describe('headers and echoes', () => {
    it("every answer forbids framing: CSP frame-ancestors 'none'", async () => {
      for (const [path, token] of [
        ['/hub/api/', undefined], ['/hub/api/user', admin], ['/hub/api/nonsense', admin], ['/hub/api/users', undefined], ['/hub/login', undefined], ['/hub/nonsense', undefined],
      ] as const) {
        const res = await fetch(`${hub.url}${path}`, { headers: token ? { authorization: `token ${token}` } : {}, redirect: 'manual' });
        await res.body?.cancel();
        expect(res.headers.get('content-security-policy'), path).toMatch(/frame-ancestors 'none'/);
        expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      }
    });

    it('API errors never echo the credential that was sent', async () => {
      const fake = 'Zz9fakeTokenValue0123456789abcdefghijklmnopq';
      for (const [method, path, token] of [
        ['GET', '/user', fake], ['GET', '/users', fake], ['POST', '/users/abe/server', fake], ['GET', '/nonsense', fake],
        ['GET', '/users', beaToken], ['GET', '/users/abe/tokens', beaToken], ['POST', '/users/abe/tokens', beaToken],
        ['GET', '/users/nobody-here', admin], ['GET', '/nonsense', admin], ['POST', '/users', admin],
      ] as const) {
        const res = await apiCall(hub.url, method, path, { token, body: method === 'POST' ? '{bad' : undefined });
        expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
        expect(res.text, `${method} ${path}`).not.toContain(token);
        expect(res.text, `${method} ${path}`).not.toContain(token.slice(0, 16));
      }
    });

    it('a token in the path of the deprecated /authorizations/token/{token} is not echoed back', async () => {
      const res = await apiCall(hub.url, 'GET', `/authorizations/token/${abeToken}`, { token: admin });
      expect(res.text).not.toContain(abeToken);
      expect(res.text).not.toContain(abeToken.slice(0, 16));
    });

    it('no token ever reaches the hub log', async () => {
      await new Promise((r) => setTimeout(r, 300));
      for (const token of [admin, abeToken, beaToken]) {
        expect(hub.output).not.toContain(token);
        expect(hub.output).not.toContain(token.slice(0, 16));
      }
    });
  });
});

describe('admin:users through a config role cannot grant admin (GHSA-9x4q-3gxw-849f, GHSA-69wv-m5fw-2fhp)', () => {
  const hub = new HubProcess({
    env: {
      ...BASE_ENV,
      LABHUB_ROLES: '[{name: useradmin, scopes: ["admin:users"], users: [bob]}, {name: classadmin, scopes: ["admin:users!group=class1", "admin:groups!group=class1"], users: [carl]}]',
    },
  });
  let admin = '';
  let bob = '';
  let carl = '';
  const as = (token: string, method: string, path: string, body?: unknown) => apiCall(hub.url, method, path, { token, body });

  async function isAdmin(name: string): Promise<boolean> {
    const res = await as(admin, 'GET', `/users/${name}`);
    expect(res.status, `${name}: ${res.text}`).toBe(200);
    return (res.body as { admin: boolean }).admin;
  }

  beforeAll(async () => {
    await hub.start();
    for (const [name, extra] of [['admin', ['--admin']], ['carol', []], ['boss', ['--admin']]] as const) {
      const added = await hub.cli(['users', 'add', name, ...extra]);
      expect(added.status, added.stderr).toBe(0);
    }
    admin = (await hub.cli(['token', 'admin'])).stdout.trim();
    bob = (await hub.cli(['token', 'bob'])).stdout.trim();
    carl = (await hub.cli(['token', 'carl'])).stdout.trim();
    expect(bob, 'the role created bob').not.toBe('');
    expect(carl, 'the role created carl').not.toBe('');
    expect((await as(admin, 'POST', '/groups/class1', { users: ['carol'] })).status).toBe(201);
  });

  afterAll(async () => {
    await stopHub(hub);
  });

  it('the role works: bob holds admin:users and can create plain users', async () => {
    const me = await as(bob, 'GET', '/user');
    expect(me.status).toBe(200);
    expect((me.body as { scopes: string[] }).scopes).toContain('admin:users');
    expect(me.body).toMatchObject({ name: 'bob', admin: false });
    const made = await as(bob, 'POST', '/users/plain1');
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ name: 'plain1', admin: false });
  });

  it('bob cannot make himself admin', async () => {
    isError(await as(bob, 'PATCH', '/users/bob', { admin: true }), 403);
    expect(await isAdmin('bob')).toBe(false);
  });

  it('bob cannot make others admin', async () => {
    isError(await as(bob, 'PATCH', '/users/carol', { admin: true }), 403);
    expect(await isAdmin('carol')).toBe(false);
    isError(await as(bob, 'PATCH', '/users/carol', { admin: true, name: 'carol' }), 403);
    expect(await isAdmin('carol')).toBe(false);
  });

  it('bob cannot create admins', async () => {
    isError(await as(bob, 'POST', '/users', { usernames: ['sneaky1'], admin: true }), 403);
    isError(await as(bob, 'POST', '/users/sneaky2', { admin: true }), 403);
    for (const name of ['sneaky1', 'sneaky2']) expect((await as(admin, 'GET', `/users/${name}`)).status).toBe(404);
  });

  it('bob cannot edit, demote, rename or delete an admin', async () => {
    isError(await as(bob, 'PATCH', '/users/boss', { admin: false }), 403);
    isError(await as(bob, 'PATCH', '/users/boss', { name: 'bobs-puppet' }), 403);
    isError(await as(bob, 'DELETE', '/users/boss'), 403);
    expect(await isAdmin('boss')).toBe(true);
  });

  it('bob cannot mint tokens for an admin', async () => {
    isError(await as(bob, 'POST', '/users/boss/tokens', {}), [403, 404]);
    isError(await as(bob, 'POST', '/users/boss/tokens', { scopes: ['admin:users'] }), [403, 404]);
  });

  it('carl (admin:users filtered to group class1) cannot create users or groups outside the filter', async () => {
    const me = await as(carl, 'GET', '/user');
    expect((me.body as { scopes: string[] }).scopes).toContain('admin:users!group=class1');
    isError(await as(carl, 'POST', '/users', { usernames: ['outsider1'] }), 403);
    isError(await as(carl, 'POST', '/users/outsider2'), [403, 404]);
    isError(await as(carl, 'POST', '/groups/class2'), [403, 404]);
    for (const name of ['outsider1', 'outsider2']) expect((await as(admin, 'GET', `/users/${name}`)).status).toBe(404);
    expect((await as(admin, 'GET', '/groups/class2')).status).toBe(404);
  });

  it('carl cannot grant admin inside the filter either, nor act on users outside it', async () => {
    isError(await as(carl, 'PATCH', '/users/carol', { admin: true }), 403);
    expect(await isAdmin('carol')).toBe(false);
    isError(await as(carl, 'DELETE', '/users/bob'), [403, 404]);
    const list = await as(carl, 'GET', '/users');
    if (list.status === 200) expect((list.body as Array<{ name: string }>).map((u) => u.name).sort()).toEqual(['carol']);
    else isError(list, [403, 404]);
  });
});
