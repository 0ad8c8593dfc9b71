/**
 * Requests where JupyterHub 5.5.1's answer is not what its spec alone suggests (issue 21, items 7 to 11), against a
 * real `labhub start` (instant spawner, dummy authenticator, roles and services from config), each compared with
 * JupyterHub's code: `apihandlers/users.py`, `groups.py`, `base.py` (user_model, service_model), `orm.APIToken.new`,
 * `app.py init_role_assignment`. 2xx bodies are checked against the spec (tests/helpers/openapi.ts).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { requireService } from '../helpers/jupyter.js';
import { createDatabase, databaseUrl } from '../helpers/postgres.js';
import { HubProcess } from '../helpers/hub.js';
import { apiCall, validateResponse, type ApiAnswer, type ApiCallOptions } from '../helpers/openapi.js';

const postgresUrl = inject('postgresUrl');
const dialects = [
  { name: 'SQLite', dbName: null },
  ...(requireService('PostgreSQL', postgresUrl !== null) ? [{ name: 'PostgreSQL', dbName: `api_answers_${process.pid}` }] : []),
];

interface UserModel { name: string; admin: boolean; roles: string[]; servers?: Record<string, { ready: boolean }>; pending: string | null }

for (const dialect of dialects) describe(`REST API answers as JupyterHub 5.5.1 gives them (${dialect.name})`, () => {
  const serviceToken = randomBytes(16).toString('hex');
  const adminServiceToken = randomBytes(16).toString('hex');
  const env = (adminRoleUsers: string[]) => ({
    LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy',
    LABHUB_SERVICES: `[{name: reporter, api_token: ${serviceToken}, url: 'http://127.0.0.1:9'}, {name: boss, api_token: ${adminServiceToken}}]`,
    LABHUB_ROLES: `[{name: admin, users: [${adminRoleUsers.join(', ')}], services: [boss]}, `
      + '{name: service-reader, scopes: [read:services, read:roles:services], services: [reporter]}, '
      + '{name: helper, scopes: [read:groups], users: [ann]}]',
    ...(dialect.dbName && { LABHUB_DB_URL: databaseUrl(postgresUrl!, dialect.dbName) }),
  });
  let hub = new HubProcess({ env: env(['rolf']) });
  let admin = '';

  const call = (method: string, path: string, options: ApiCallOptions = {}) => apiCall(hub.url, method, path, { token: admin, ...options });
  const tokenOf = async (name: string) => (await hub.cli(['token', name])).stdout.trim();

  function conforms(method: string, template: string, res: ApiAnswer, status: number): void {
    expect(res.status, `${method} ${template}: ${res.text.slice(0, 500)}`).toBe(status);
    expect(validateResponse(method, template, res.status, res.body), `${method} ${template} body: ${res.text.slice(0, 1000)}`).toEqual([]);
  }

  function isError(res: ApiAnswer, status: number, message: RegExp): void {
    expect(res.status, res.text.slice(0, 300)).toBe(status);
    expect(res.body).toEqual({ status, message: expect.stringMatching(message) });
  }

  beforeAll(async () => {
    if (dialect.dbName) await createDatabase(postgresUrl!, dialect.dbName);
    await hub.start();
    // rolf and ann exist already: the roles in config name them.
    const added = await hub.cli(['users', 'add', 'admin', '--admin']);
    expect(added.status, added.stderr).toBe(0);
    admin = await tokenOf('admin');
    expect(admin).not.toBe('');
  });

  afterAll(async () => {
    await hub.cleanup();
    if (hub.child?.exitCode === null) hub.kill9();
  });

  describe('item 7: members of the admin role in config are admins', () => {
    it('shows a user listed in the admin role as an admin, with the admin role once', async () => {
      const res = await call('GET', '/users/rolf');
      conforms('get', '/users/{name}', res, 200);
      const rolf = res.body as UserModel;
      expect(rolf.admin).toBe(true);
      expect(rolf.roles.filter((r) => r === 'admin')).toEqual(['admin']);
      expect(rolf.roles).toContain('user');
    });

    it('lets that user grant admin, which only admins may', async () => {
      const res = await apiCall(hub.url, 'POST', '/users', { token: await tokenOf('rolf'), body: { usernames: ['made-by-rolf'], admin: true } });
      conforms('post', '/users', res, 201);
      expect(res.body).toMatchObject([{ name: 'made-by-rolf', admin: true }]);
    });

    it('makes a service listed in the admin role an admin', async () => {
      const res = await apiCall(hub.url, 'GET', '/user', { token: adminServiceToken });
      conforms('get', '/user', res, 200);
      expect(res.body).toMatchObject({ kind: 'service', name: 'boss', admin: true });
      const created = await apiCall(hub.url, 'POST', '/users', { token: adminServiceToken, body: { usernames: ['made-by-boss'], admin: true } });
      conforms('post', '/users', created, 201);
    });

    it('takes admin, and what it grants, away from a member whose admin is revoked through the API', async () => {
      const rolf = await tokenOf('rolf');
      const revoked = await call('PATCH', '/users/rolf', { body: { admin: false } });
      conforms('patch', '/users/{name}', revoked, 200);
      expect(revoked.body).toMatchObject({ admin: false });
      expect((revoked.body as UserModel).roles).not.toContain('admin');
      isError(await apiCall(hub.url, 'POST', '/users', { token: rolf, body: { usernames: ['x1'] } }), 403, /requires any of \[admin:users\]/);
    });

    it('follows the config at the next start: listed users are admins again, users no longer listed lose admin, others keep it', async () => {
      await hub.stop();
      hub = new HubProcess({ env: env(['ann']), dataDir: hub.dataDir });
      await hub.start();
      const users = await call('GET', '/users');
      conforms('get', '/users', users, 200);
      const adminOf = (name: string) => (users.body as UserModel[]).find((u) => u.name === name)?.admin;
      expect(adminOf('ann')).toBe(true);
      expect(adminOf('admin')).toBe(true);
      expect(adminOf('made-by-rolf')).toBe(true);
      expect(adminOf('rolf')).toBe(false);
      isError(await apiCall(hub.url, 'POST', '/users', { token: await tokenOf('rolf'), body: { usernames: ['x2'] } }), 403, /requires any of \[admin:users\]/);
      // Back to a config where ann is an ordinary user for the tests below.
      await hub.stop();
      hub = new HubProcess({ env: env(['rolf']), dataDir: hub.dataDir });
      await hub.start();
      expect(((await call('GET', '/users/ann')).body as UserModel).admin).toBe(false);
    });
  });

  describe('item 8: sorting by last activity', () => {
    it('puts never-active users first in ascending order and last in descending order', async () => {
      conforms('post', '/users', await call('POST', '/users', { body: { usernames: ['sort-never', 'sort-early', 'sort-late'] } }), 201);
      const hourAgo = new Date(Date.now() - 3600_000).toISOString();
      expect((await call('POST', '/users/sort-early/activity', { body: { last_activity: hourAgo } })).status).toBe(200);
      expect((await call('POST', '/users/sort-late/activity', { body: { last_activity: new Date().toISOString() } })).status).toBe(200);
      const order = async (sort: string) => {
        const res = await call('GET', `/users?sort=${sort}&name_filter=sort-`);
        conforms('get', '/users', res, 200);
        return (res.body as UserModel[]).map((u) => u.name);
      };
      expect(await order('last_activity')).toEqual(['sort-never', 'sort-early', 'sort-late']);
      expect(await order('-last_activity')).toEqual(['sort-late', 'sort-early', 'sort-never']);
    });
  });

  describe('item 9: PUT /groups/{name}/properties', () => {
    it('refuses a request without a body and keeps the properties', async () => {
      expect((await call('POST', '/groups/props')).status).toBe(201);
      conforms('put', '/groups/{name}/properties', await call('PUT', '/groups/props/properties', { body: { course: 'bio' } }), 200);
      isError(await call('PUT', '/groups/props/properties'), 400, /Must specify properties/);
      const group = await call('GET', '/groups/props');
      expect(group.body).toMatchObject({ properties: { course: 'bio' } });
      // An explicit empty object is a request to clear them, as in JupyterHub.
      const cleared = await call('PUT', '/groups/props/properties', { body: {} });
      conforms('put', '/groups/{name}/properties', cleared, 200);
      expect(cleared.body).toMatchObject({ properties: {} });
    });
  });

  describe('item 10: GET /user', () => {
    it('gives a user token the same model as GET /users/{name}: servers, pending, and every role', async () => {
      const ann = await tokenOf('ann');
      const started = await apiCall(hub.url, 'POST', '/users/ann/server', { token: ann });
      expect([201, 202]).toContain(started.status);
      const res = await apiCall(hub.url, 'GET', '/user', { token: ann });
      conforms('get', '/user', res, 200);
      const me = res.body as UserModel & { scopes: string[] };
      expect(me).toMatchObject({ kind: 'user', name: 'ann', admin: false, pending: null, server: '/user/ann/' });
      expect(me.roles.sort()).toEqual(['helper', 'user']);
      expect(me.servers?.['']).toMatchObject({ name: '', ready: true, url: '/user/ann/' });
      expect(me.scopes).toContain('read:servers!user=ann');
    });

    it('shows only what a narrow token may read, and always who owns it', async () => {
      const created = await call('POST', '/users/ann/tokens', { body: { scopes: [] } });
      conforms('post', '/users/{name}/tokens', created, 201);
      const res = await apiCall(hub.url, 'GET', '/user', { token: (created.body as { token: string }).token });
      conforms('get', '/user', res, 200);
      const { scopes, session_id: _s, token_id: _t, ...model } = res.body as Record<string, unknown>;
      expect(model).toEqual({ kind: 'user', name: 'ann', admin: false, groups: [] });
      // A token's scopes always include the identify scopes, as JupyterHub's get_scopes_for adds them.
      expect(scopes).toEqual(['read:users:groups!user=ann', 'read:users:name!user=ann']);
    });

    it('gives a service token the service model its scopes allow', async () => {
      const res = await apiCall(hub.url, 'GET', '/user', { token: serviceToken });
      conforms('get', '/user', res, 200);
      expect(res.body).toMatchObject({
        kind: 'service', name: 'reporter', admin: false, roles: ['service-reader'], url: 'http://127.0.0.1:9',
        prefix: '/services/reporter/', display: true, info: {}, command: [], pid: 0, token_id: expect.stringMatching(/^a\d+$/),
      });
    });
  });

  describe('item 11: POST /users/{name}/tokens', () => {
    it('refuses roles and scopes together', async () => {
      isError(await call('POST', '/users/ann/tokens', { body: { roles: ['user'], scopes: ['read:users:name!user=ann'] } }), 400,
        /Can only assign one of scopes or roles/);
      isError(await call('POST', '/users/ann/tokens', { body: { roles: [], scopes: [] } }), 400, /Can only assign one of scopes or roles/);
    });

    it('turns roles alone into their scopes, and refuses a role that does not exist', async () => {
      const res = await call('POST', '/users/ann/tokens', { body: { roles: ['helper'] } });
      conforms('post', '/users/{name}/tokens', res, 201);
      expect((res.body as { scopes: string[] }).scopes).toContain('read:groups');
      expect((res.body as { scopes: string[] }).scopes).not.toContain('read:servers!user=ann');
      isError(await call('POST', '/users/ann/tokens', { body: { roles: ['no-such-role'] } }), 400, /No such role: no-such-role/);
    });
  });
});
