import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, HubProcess, api, eventually, landInServer } from '../helpers/hub.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';
import { executeInKernel } from '../helpers/kernel.js';

/**
 * The whole path a researcher takes, against real components: the hub and its proxy as processes, the native
 * authenticator, the local spawner running the real jupyterhub-singleuser, the OAuth dance, a kernel over a
 * websocket through the proxy (PKCE with 6.x). Then crashes: kill -9 of the hub and of the proxy.
 */
for (const major of [3, 5, 6] as const) {
  const singleuser = findSingleuser(major);
  const available = requireService(`jupyterhub-singleuser ${major}.x`, singleuser !== null);

  describe.skipIf(!available)(`hub end to end with jupyterhub-singleuser ${major}.x`, () => {
    const hub = new HubProcess({
      env: {
        LABHUB_SPAWNER__CMD: JSON.stringify([singleuser]),
        // The test runs as root without system accounts for these users: servers run as the hub's user.
        LABHUB_SPAWNER__ALLOW_ROOT: 'true',
        LABHUB_SPAWNER__POLL_INTERVAL: '2',
      },
    });
    let admin = '';
    let bobToken = '';

    beforeAll(async () => {
      await hub.start();
      for (const [name, extra] of [['alice', []], ['bob', []], ['root-admin', ['--admin']]] as const) {
        const added = await hub.cli(['users', 'add', name, ...extra, '--password-stdin'], `${name}-password\n`);
        expect(added.status, added.stderr).toBe(0);
      }
      admin = (await hub.cli(['token', 'root-admin'])).stdout.trim();
      bobToken = (await hub.cli(['token', 'bob'])).stdout.trim();
      expect(admin).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    });

    afterAll(async () => {
      await api(hub.url, admin, 'DELETE', '/users/alice/server').catch(() => undefined);
      await hub.cleanup();
    });

    const alice = () => new Browser(hub.url);
    let browser: Browser;

    it('logs in like a browser, starts a server, and lands in it through the OAuth dance', async () => {
      browser = alice();
      const first = await browser.navigate('/');
      expect(browser.visited).toContain('/hub/home');
      expect(first.url === '' || first.status === 200).toBe(true);
      expect(await first.text()).toContain('Sign in');

      const home = await browser.login('alice', 'alice-password');
      expect(home.status).toBe(200);
      expect(await home.text()).toContain('Your servers');

      const pending = await browser.postForm('/hub/spawn/alice');
      expect(browser.visited.some((p) => p.startsWith('/hub/spawn-pending/alice'))).toBe(true);
      expect([200, 424].includes(pending.status) || pending.status < 400).toBe(true);

      const events = await progressEvents(hub.url, admin, 'alice');
      expect(events[0]).toMatchObject({ progress: 0, message: 'Server requested' });
      expect(events.at(-1)).toMatchObject({ ready: true, url: '/user/alice/' });

      await landInServer(browser, '/user/alice/');
      // JupyterHub 6's single-user server always sends a PKCE challenge, which the hub then holds the code to.
      const authorize = new URL(browser.visited.find((p) => p.startsWith('/hub/api/oauth2/authorize'))!, hub.url);
      expect(authorize.searchParams.get('code_challenge_method')).toBe(major >= 6 ? 'S256' : null);
    });

    it('runs 6*7 in a kernel over the websocket through the proxy', async () => {
      const xsrf = browser.cookie('_xsrf', '/user/alice/') ?? '';
      const created = await browser.request('/user/alice/api/kernels', {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-xsrftoken': xsrf }, body: '{}',
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const kernel = (await created.json()) as { id: string };
      const result = await executeInKernel(hub.url, '/user/alice/', kernel.id, '6*7', { cookie: browser.cookieHeader(`/user/alice/api/kernels/${kernel.id}/channels`) });
      expect(result).toBe('42');
    });

    it('keeps user B out of user A\'s server, by session and by token', async () => {
      const bob = new Browser(hub.url);
      await bob.login('bob', 'bob-password');
      const attempt = await bob.navigate('/user/alice/');
      expect(attempt.status).toBe(403);
      expect(bob.visited.some((p) => p.startsWith('/user/alice/oauth_callback'))).toBe(false);
      const direct = await bob.request('/user/alice/api/status');
      expect([302, 403]).toContain(direct.status);

      for (const [method, path] of [['POST', '/users/alice/server'], ['DELETE', '/users/alice/server']] as const) {
        const res = await api(hub.url, bobToken, method, path);
        expect([403, 404], `${method} ${path}`).toContain(res.status);
      }
      const still = await api(hub.url, admin, 'GET', '/users/alice');
      expect((still.body as { servers: Record<string, { ready: boolean }> }).servers['']?.ready).toBe(true);
    });

    it('survives kill -9 of the hub: the server stays listed, reachable and stoppable', async () => {
      hub.kill9();
      await new Promise((r) => setTimeout(r, 300));
      const during = await browser.request('/user/alice/api/status');
      expect(during.status).toBe(200);
      await hub.start();
      const listed = await api(hub.url, admin, 'GET', '/users/alice');
      expect((listed.body as { servers: Record<string, { ready: boolean }> }).servers['']?.ready).toBe(true);
      const after = await browser.request('/user/alice/api/status');
      expect(after.status).toBe(200);
    });

    it('survives kill -9 of the proxy: routes come back within seconds', async () => {
      const routes = await fetch(`http://127.0.0.1:${hub.apiPort}/api/routes`, { headers: { authorization: `token ${proxyToken(hub)}` } });
      expect(routes.status).toBe(200);
      const pid = await proxyPid(hub.apiPort);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await eventually(async () => (await browser.request('/user/alice/api/status')).status === 200, 20_000, 100)
        .catch((err: Error) => { throw new Error(`${err.message}\n--- hub log ---\n${hub.output.slice(-6000)}`); });
      const elapsed = Date.now() - killedAt;
      expect(elapsed).toBeLessThan(15_000);
    });

    it('stops the server and cleans its token, OAuth client and route', async () => {
      const stopped = await api(hub.url, admin, 'DELETE', '/users/alice/server');
      expect([202, 204]).toContain(stopped.status);
      await eventually(async () => {
        const u = await api(hub.url, admin, 'GET', '/users/alice');
        return !(u.body as { servers: Record<string, unknown> }).servers[''];
      });
      const gone = await browser.request('/user/alice/api/status');
      expect(gone.status).toBe(424);
      const routes = (await (await fetch(`http://127.0.0.1:${hub.apiPort}/api/routes`, { headers: { authorization: `token ${proxyToken(hub)}` } })).json()) as Record<string, unknown>;
      expect(Object.keys(routes).some((k) => k.startsWith('/user/alice'))).toBe(false);
    });
  });
}

async function progressEvents(base: string, token: string, user: string): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${base}/hub/api/users/${user}/server/progress`, { headers: { authorization: `token ${token}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)) as Record<string, unknown>);
}

function proxyToken(hub: HubProcess): string {
  return hub.proxyToken();
}

/** The process listening on the proxy's API port (not the hub, which holds client connections to it). */
async function proxyPid(apiPort: number): Promise<number> {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${apiPort}`], { encoding: 'utf8' });
  const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
  expect(pid, out).toBeGreaterThan(1);
  return pid;
}

