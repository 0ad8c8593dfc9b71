import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { Culler, cullerInstalled, problems } from '../helpers/idle-culler.js';

/**
 * The real jupyterhub-idle-culler against a running LabHub, authenticated as a service declared in config with a
 * fixed api_token and a role (issue 2, Operations: "services with fixed API tokens and roles can be declared in
 * config, for the idle culler").
 */
const available = requireService('jupyterhub-idle-culler', cullerInstalled());

interface ServerModel { ready: boolean; pending: string | null; last_activity: string | null; url: string }
interface UserModel { name: string; server: string | null; pending: string | null; servers?: Record<string, ServerModel> }

describe.skipIf(!available)('jupyterhub-idle-culler against LabHub', () => {
  const cullerToken = randomBytes(16).toString('hex');
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__KIND: 'instant',
      LABHUB_AUTHENTICATOR__KIND: 'dummy',
      LABHUB_SERVICES: `[{name: culler, api_token: ${cullerToken}}]`,
      LABHUB_ROLES: '[{name: culler, scopes: [list:users, read:users:activity, read:servers, delete:servers, admin:users], services: [culler]}]',
    },
  });
  let admin = '';
  const cullers: Culler[] = [];

  const culler = () => {
    const c = new Culler(`${hub.url}/hub/api`, cullerToken);
    cullers.push(c);
    return c;
  };
  const user = async (name: string) => (await api(hub.url, admin, 'GET', `/users/${name}`)).body as UserModel;
  const startServer = async (name: string) => {
    const started = await api(hub.url, admin, 'POST', `/users/${name}/server`);
    expect([201, 202], JSON.stringify(started.body)).toContain(started.status);
    await eventually(async () => (await user(name)).servers?.['']?.ready === true, 15_000);
  };

  beforeAll(async () => {
    await hub.start();
    for (const args of [['alice'], ['bob'], ['carol'], ['root-admin', '--admin']]) {
      const r = await hub.cli(['users', 'add', ...args]);
      expect(r.status, r.stderr).toBe(0);
    }
    admin = (await hub.cli(['token', 'root-admin'])).stdout.trim();
  });

  afterEach(async () => {
    await Promise.all(cullers.splice(0).map((c) => c.stop()));
  });

  afterAll(async () => {
    for (const name of ['alice', 'bob']) await api(hub.url, admin, 'DELETE', `/users/${name}/server`).catch(() => undefined);
    await hub.cleanup();
  });

  it('the configured service token identifies the culler service with its role\'s scopes', async () => {
    const me = await api(hub.url, cullerToken, 'GET', '/user');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ kind: 'service', name: 'culler', admin: false });
    const scopes = (me.body as { scopes: string[] }).scopes;
    for (const scope of ['list:users', 'read:users:activity', 'read:servers', 'delete:servers', 'admin:users']) expect(scopes).toContain(scope);
    // What the culler reads: the paginated list of users with ready servers.
    const list = await fetch(`${hub.url}/hub/api/users?state=ready`, {
      headers: { authorization: `token ${cullerToken}`, accept: 'application/jupyterhub-pagination+json' },
    });
    expect(list.status).toBe(200);
    expect(await list.json()).toMatchObject({ items: [], _pagination: { next: null } });
  });

  it('a culler with a wrong token shows its errors (so the error check below is not blind)', async () => {
    const c = new Culler(`${hub.url}/hub/api`, 'not-the-culler-token-0123456789ab');
    cullers.push(c);
    c.start(['--timeout=1', '--cull-every=1']);
    await eventually(async () => problems(c.output).length > 0, 20_000, 250);
    const output = await c.stop();
    expect(output).toMatch(/HTTP 403/);
  });

  it('culls an idle server (--timeout=1) and reports no errors', async () => {
    await startServer('alice');
    const before = await user('alice');
    expect(before.servers?.['']).toMatchObject({ ready: true, pending: null });
    expect(before.servers?.['']?.last_activity).toBeTruthy();

    const c = culler();
    c.start(['--timeout=1', '--cull-every=2']);
    await eventually(async () => {
      const u = await user('alice');
      return u.server === null && u.pending === null && Object.keys(u.servers ?? {}).length === 0;
    }, 30_000, 250);
    expect(c.exitCode, c.output).toBeNull(); // it was still running: it did not stop on an error
    const output = await c.stop();

    expect(output).toMatch(/Culling server alice \(inactive for/);
    expect(problems(output), output).toEqual([]);
    expect(hub.output).not.toMatch(/request failed/);
    // The user stays; only the server went.
    expect((await api(hub.url, admin, 'GET', '/users/alice')).status).toBe(200);
  });

  it('leaves a server with recent activity alone (--timeout=600)', async () => {
    await startServer('bob');
    const now = new Date().toISOString();
    const activity = await api(hub.url, admin, 'POST', '/users/bob/activity', { last_activity: now, servers: { '': { last_activity: now } } });
    expect(activity.status, JSON.stringify(activity.body)).toBe(200);

    const c = culler();
    c.start(['--timeout=600', '--cull-every=1', '--IdleCuller.log_level=DEBUG']);
    // Wait for at least two complete passes over the users with ready servers.
    await eventually(async () => (c.output.match(/Not culling server bob/g) ?? []).length >= 2, 30_000, 250);
    expect(c.exitCode, c.output).toBeNull();
    const output = await c.stop();

    expect(output).toMatch(/Got 1 users with ready servers/);
    expect(output).not.toMatch(/Culling server bob/);
    expect(problems(output), output).toEqual([]);
    const bob = await user('bob');
    expect(bob.server).not.toBeNull();
    expect(bob.servers?.['']).toMatchObject({ ready: true });
  });

  it('--cull-users deletes inactive users without servers, but not admins (--cull-admin-users=false)', async () => {
    const stopped = await api(hub.url, admin, 'DELETE', '/users/bob/server');
    expect([202, 204]).toContain(stopped.status);
    await eventually(async () => (await user('bob')).server === null && (await user('bob')).pending === null, 15_000);
    // Every user is now older than the 1 s timeout and has no server.
    await new Promise((r) => setTimeout(r, 1100));

    const c = culler();
    c.start(['--timeout=1', '--cull-every=2', '--cull-users=true', '--cull-admin-users=false']);
    await eventually(async () => {
      const statuses = await Promise.all(['alice', 'bob', 'carol'].map(async (n) => (await api(hub.url, admin, 'GET', `/users/${n}`)).status));
      return statuses.every((s) => s === 404);
    }, 30_000, 250);
    expect(c.exitCode, c.output).toBeNull();
    const output = await c.stop();

    expect(output).toMatch(/Culling user carol/);
    expect(problems(output), output).toEqual([]);
    expect((await api(hub.url, admin, 'GET', '/users/root-admin')).status).toBe(200);
    expect(hub.output).not.toMatch(/request failed/);
  });
});
