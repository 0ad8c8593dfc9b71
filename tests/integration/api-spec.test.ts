/**
 * Every REST operation LabHub implements, called against a real `labhub start` (instant spawner, dummy
 * authenticator) and checked against JupyterHub 5.5.1's OpenAPI spec, and 6.0.0b2's for the operations it documents
 * (tests/helpers/openapi.ts: `null` accepted wherever the spec gives a type or an enum, extra properties accepted).
 * Operations that JupyterHub implements but its spec leaves out (spawn progress, POST /groups) are checked by hand
 * against research/jupyterhub-core.md §1.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { requireService } from '../helpers/jupyter.js';
import { createDatabase, databaseUrl } from '../helpers/postgres.js';
import { HubProcess } from '../helpers/hub.js';
import { apiCall, hasOperation, specVersion, validateComponent, validateResponse, type ApiAnswer, type ApiCallOptions } from '../helpers/openapi.js';

const PAGINATION = 'application/jupyterhub-pagination+json';

// The whole suite runs once per state-DB dialect: SQLite (the default) and PostgreSQL.
const postgresUrl = inject('postgresUrl');
const dialects = [
  { name: 'SQLite', dbName: null },
  ...(requireService('PostgreSQL', postgresUrl !== null) ? [{ name: 'PostgreSQL', dbName: `api_spec_${process.pid}` }] : []),
];

for (const dialect of dialects) describe(`REST API responses match the JupyterHub 5.5.1 and 6.0.0b2 specs (${dialect.name})`, () => {
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy', LABHUB_ALLOW_NAMED_SERVERS: 'true',
      ...(dialect.dbName && { LABHUB_DB_URL: databaseUrl(postgresUrl!, dialect.dbName) }),
    },
  });
  let admin = '';

  const call = (method: string, path: string, options: ApiCallOptions = {}) => apiCall(hub.url, method, path, { token: admin, ...options });

  /**
   * The answer has the expected status and conforms to the schema for that operation and status in the 5.5.1 spec,
   * and in 6.0.0b2's where that documents the operation: clients of either version read the same answers.
   */
  function conforms(method: string, template: string, res: ApiAnswer, status: number): void {
    expect(res.status, `${method} ${template}: ${res.text.slice(0, 500)}`).toBe(status);
    expect(validateResponse(method, template, res.status, res.body), `${method} ${template} body: ${res.text.slice(0, 1000)}`).toEqual([]);
    if (hasOperation(method, template, '6.0.0b2')) {
      expect(validateResponse(method, template, res.status, res.body, '6.0.0b2'), `6.0.0b2: ${method} ${template} body: ${res.text.slice(0, 1000)}`).toEqual([]);
    }
  }

  function userNames(body: unknown): string[] {
    return (body as Array<{ name: string }>).map((u) => u.name);
  }

  beforeAll(async () => {
    if (dialect.dbName) await createDatabase(postgresUrl!, dialect.dbName);
    await hub.start();
    const added = await hub.cli(['users', 'add', 'admin', '--admin']);
    expect(added.status, added.stderr).toBe(0);
    const token = await hub.cli(['token', 'admin']);
    expect(token.status, token.stderr).toBe(0);
    admin = token.stdout.trim();
    expect(admin).not.toBe('');
  });

  afterAll(async () => {
    await hub.cleanup();
    // A hub stuck in a request may ignore SIGTERM: do not leave it running.
    if (hub.child?.exitCode === null) hub.kill9();
  });

  it('loads the specs it validates against, and the validator does reject bad shapes', () => {
    expect(specVersion()).toBe('5.5.1');
    expect(specVersion('6.0.0b2')).toBe('6.0.0b2');
    expect(hasOperation('get', '/users/{name}', '6.0.0b2')).toBe(true);
    expect(validateResponse('get', '/users/{name}', 200, { kind: 'user', name: 'x', admin: 'yes' }, '6.0.0b2')).not.toEqual([]);
    expect(validateResponse('get', '/users/{name}', 200, { kind: 'user', name: 'x', servers: { '': { ready: 'no' } } }, '6.0.0b2')).not.toEqual([]);
    // null is accepted wherever a type or enum is given; wrong types, values and formats are not.
    expect(validateResponse('get', '/users/{name}', 200, { kind: 'user', name: 'x', pending: null, server: null, last_activity: null })).toEqual([]);
    expect(validateResponse('get', '/users/{name}', 200, { kind: 'user', name: 'x', admin: 'yes' })).not.toEqual([]);
    expect(validateResponse('get', '/users/{name}', 200, { kind: 'user', name: 'x', pending: 'start' })).not.toEqual([]);
    expect(validateResponse('get', '/users/{name}', 200, { kind: 'user', name: 'x', last_activity: 'yesterday' })).not.toEqual([]);
    expect(validateResponse('get', '/users/{name}', 200, { kind: 'user', servers: { '': { ready: 'no' } } })).not.toEqual([]);
    expect(validateResponse('get', '/users', 200, { kind: 'user' })).not.toEqual([]);
    expect(validateResponse('get', '/user', 200, { kind: 'group', name: 'x' })).not.toEqual([]);
    expect(validateResponse('get', '/users/{name}', 418, {})).not.toEqual([]);
    expect(validateComponent('PaginatedList', { items: 'x' })).not.toEqual([]);
  });

  describe('hub', () => {
    it('GET / answers the JupyterHub version without credentials', async () => {
      const res = await apiCall(hub.url, 'GET', '/');
      conforms('get', '/', res, 200);
      expect(res.body).toEqual({ version: '5.5.1' });
      expect(res.headers.get('x-jupyterhub-version')).toBe('5.5.1');
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    });

    it('GET /info', async () => {
      const res = await call('GET', '/info');
      conforms('get', '/info', res, 200);
      expect(res.body).toMatchObject({ version: '5.5.1', spawner: { class: expect.any(String) }, authenticator: { class: expect.any(String) } });
    });

    it('GET /info needs credentials', async () => {
      const res = await apiCall(hub.url, 'GET', '/info');
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ status: 403, message: expect.any(String) });
    });

    it('GET /user identifies the token owner', async () => {
      const res = await call('GET', '/user');
      conforms('get', '/user', res, 200);
      expect(res.body).toMatchObject({ kind: 'user', name: 'admin', admin: true, session_id: null, token_id: expect.stringMatching(/^a\d+$/) });
      expect((res.body as { scopes: string[] }).scopes.length).toBeGreaterThan(0);
    });

    it('unknown paths under /hub/api answer 404 as JSON {status, message}', async () => {
      for (const [method, path] of [['GET', '/nonsense'], ['POST', '/nonsense/deeper'], ['GET', '/users/admin/nonsense']] as const) {
        const res = await call(method, path);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        expect(res.body).toEqual({ status: 404, message: expect.any(String) });
      }
      const anonymous = await apiCall(hub.url, 'GET', '/nonsense');
      expect(anonymous.status).toBe(404);
      expect(anonymous.body).toEqual({ status: 404, message: expect.any(String) });
    });
  });

  describe('users', () => {
    it('POST /users creates several users', async () => {
      const res = await call('POST', '/users', { body: { usernames: ['ann', 'ben', 'cat', 'dan', 'eve'] } });
      conforms('post', '/users', res, 201);
      expect(userNames(res.body).sort()).toEqual(['ann', 'ben', 'cat', 'dan', 'eve']);
      expect((res.body as Array<{ admin: boolean }>).every((u) => u.admin === false)).toBe(true);
    });

    it('POST /users with admin: true creates admins', async () => {
      const res = await call('POST', '/users', { body: { usernames: ['boss'], admin: true } });
      conforms('post', '/users', res, 201);
      expect(res.body).toMatchObject([{ name: 'boss', admin: true }]);
    });

    it('POST /users answers 409 when all of them exist', async () => {
      const res = await call('POST', '/users', { body: { usernames: ['ann'] } });
      expect(res.status).toBe(409);
      expect(res.body).toEqual({ status: 409, message: expect.any(String) });
    });

    it('GET /users lists users as a bare array', async () => {
      const res = await call('GET', '/users');
      conforms('get', '/users', res, 200);
      expect(Array.isArray(res.body)).toBe(true);
      expect(userNames(res.body)).toEqual(expect.arrayContaining(['admin', 'ann', 'ben', 'cat', 'dan', 'eve', 'boss']));
      const ann = (res.body as Array<Record<string, unknown>>).find((u) => u.name === 'ann')!;
      expect(ann).toMatchObject({ kind: 'user', admin: false, groups: [], server: null, pending: null, roles: expect.arrayContaining(['user']) });
      expect(ann.created).toEqual(expect.any(String));
    });

    it('GET /users sorts by name, descending with -', async () => {
      const asc = await call('GET', '/users?sort=name');
      conforms('get', '/users', asc, 200);
      const names = userNames(asc.body);
      expect(names).toEqual([...names].sort());
      const desc = await call('GET', '/users?sort=-name');
      conforms('get', '/users', desc, 200);
      expect(userNames(desc.body)).toEqual([...names].reverse());
    });

    it('GET /users with the pagination media type pages with offset, limit and _pagination.next', async () => {
      const all = userNames((await call('GET', '/users')).body);
      const seen: string[] = [];
      let url: string | null = `${hub.url}/hub/api/users?limit=2&sort=id`;
      let pages = 0;
      while (url) {
        const target: string = url;
        const parsed = new URL(target);
        expect(parsed.pathname).toBe('/hub/api/users');
        const res = await call('GET', `/users${parsed.search}`, { headers: { accept: PAGINATION } });
        expect(res.status).toBe(200);
        expect(validateComponent('PaginatedList', res.body)).toEqual([]);
        const body = res.body as { items: unknown[]; _pagination: { offset: number; limit: number; total: number; next: { offset: number; limit: number; url: string } | null } };
        expect(validateResponse('get', '/users', 200, body.items)).toEqual([]);
        expect(body._pagination).toMatchObject({ offset: pages * 2, limit: 2, total: all.length });
        expect(body.items.length).toBeLessThanOrEqual(2);
        seen.push(...userNames(body.items));
        if (body._pagination.next) {
          expect(body._pagination.next).toMatchObject({ offset: (pages + 1) * 2, limit: 2 });
          const next = new URL(body._pagination.next.url);
          expect(next.searchParams.get('offset')).toBe(String((pages + 1) * 2));
          expect(next.searchParams.get('limit')).toBe('2');
          expect(next.searchParams.get('sort')).toBe('id');
          url = next.toString();
        } else {
          url = null;
        }
        pages++;
        expect(pages).toBeLessThan(20);
      }
      expect(seen).toEqual(all);
      expect(pages).toBe(Math.ceil(all.length / 2));
    });

    it('GET /users with the pagination media type defaults to offset 0 and limit 50', async () => {
      const res = await call('GET', '/users', { headers: { accept: `application/json, ${PAGINATION}` } });
      expect(res.status).toBe(200);
      expect(validateComponent('PaginatedList', res.body)).toEqual([]);
      expect(res.body).toMatchObject({ _pagination: { offset: 0, limit: 50, next: null } });
    });

    it('GET /users without the media type applies offset and limit to the bare list', async () => {
      const res = await call('GET', '/users?offset=1&limit=2&sort=id');
      conforms('get', '/users', res, 200);
      const all = userNames((await call('GET', '/users?sort=id')).body);
      expect(userNames(res.body)).toEqual(all.slice(1, 3));
    });

    it('GET /users pagination edges: offset past the end, limit 0 clamped to 1, limit over 200 clamped to 200', async () => {
      const past = await call('GET', '/users?offset=1000', { headers: { accept: PAGINATION } });
      expect(past.status).toBe(200);
      expect(past.body).toMatchObject({ items: [], _pagination: { offset: 1000, next: null } });
      const zero = await call('GET', '/users?limit=0', { headers: { accept: PAGINATION } });
      expect(zero.status).toBe(200);
      expect(zero.body).toMatchObject({ _pagination: { limit: 1 } });
      expect((zero.body as { items: unknown[] }).items).toHaveLength(1);
      const huge = await call('GET', '/users?limit=5000', { headers: { accept: PAGINATION } });
      expect(huge.body).toMatchObject({ _pagination: { limit: 200 } });
    });

    it('GET /users?name_filter matches part of the name, case-insensitively', async () => {
      const res = await call('GET', '/users?name_filter=AN&sort=name');
      conforms('get', '/users', res, 200);
      expect(userNames(res.body)).toEqual(['ann', 'dan']);
    });

    it('POST /users creates the missing ones when some already exist', async () => {
      const res = await call('POST', '/users', { body: { usernames: ['ann', 'jon'] } });
      conforms('post', '/users', res, 201);
      expect(userNames(res.body)).toEqual(['jon']);
    });

    it('POST /users/{name} creates one user; 409 when it exists', async () => {
      const res = await call('POST', '/users/fay');
      conforms('post', '/users/{name}', res, 201);
      expect(res.body).toMatchObject({ kind: 'user', name: 'fay', admin: false });
      const again = await call('POST', '/users/fay');
      expect(again.status).toBe(409);
      expect(again.body).toEqual({ status: 409, message: expect.any(String) });
    });

    it('POST /users/{name} with {admin: true}', async () => {
      const res = await call('POST', '/users/gus', { body: { admin: true } });
      conforms('post', '/users/{name}', res, 201);
      expect(res.body).toMatchObject({ name: 'gus', admin: true });
    });

    it('GET /users/{name}', async () => {
      const res = await call('GET', '/users/fay');
      conforms('get', '/users/{name}', res, 200);
      expect(res.body).toMatchObject({ kind: 'user', name: 'fay', admin: false, server: null, pending: null, servers: {} });
      const missing = await call('GET', '/users/nobody-here');
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ status: 404, message: expect.any(String) });
    });

    it('DELETE /users/{name}', async () => {
      const res = await call('DELETE', '/users/fay');
      conforms('delete', '/users/{name}', res, 204);
      expect(res.text).toBe('');
      expect((await call('GET', '/users/fay')).status).toBe(404);
      const again = await call('DELETE', '/users/fay');
      expect(again.status).toBe(404);
      expect(again.body).toEqual({ status: 404, message: expect.any(String) });
    });

    it('DELETE /users/{name} refuses to delete yourself', async () => {
      const res = await call('DELETE', '/users/admin');
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ status: 400, message: expect.any(String) });
    });

    it('POST /users/{name}/activity moves last_activity forward only', async () => {
      const at = new Date(Date.now() - 60_000).toISOString();
      const res = await call('POST', '/users/dan/activity', { body: { last_activity: at } });
      conforms('post', '/users/{name}/activity', res, 200);
      const user = await call('GET', '/users/dan');
      conforms('get', '/users/{name}', user, 200);
      expect(Date.parse((user.body as { last_activity: string }).last_activity)).toBe(Date.parse(at));
      const older = await call('POST', '/users/dan/activity', { body: { last_activity: new Date(Date.now() - 3_600_000).toISOString() } });
      conforms('post', '/users/{name}/activity', older, 200);
      const after = await call('GET', '/users/dan');
      expect(Date.parse((after.body as { last_activity: string }).last_activity)).toBe(Date.parse(at));
    });
  });

  describe('servers', () => {
    it('POST /users/{name}/server starts the default server (201)', async () => {
      const res = await call('POST', '/users/ann/server');
      conforms('post', '/users/{name}/server', res, 201);
    });

    it('GET /users/{name} shows the running server', async () => {
      const res = await call('GET', '/users/ann');
      conforms('get', '/users/{name}', res, 200);
      const body = res.body as { server: string; pending: null; servers: Record<string, Record<string, unknown>> };
      expect(body.server).toBe('/user/ann/');
      expect(body.pending).toBeNull();
      expect(body.servers['']).toMatchObject({
        name: '', ready: true, pending: null, stopped: false, url: '/user/ann/', progress_url: '/hub/api/users/ann/server/progress',
        user_options: {}, started: expect.any(String),
      });
      expect(validateComponent('Server', body.servers[''])).toEqual([]);
    });

    it('POST /users/{name}/activity records activity of a server', async () => {
      const at = new Date(Date.now() - 5_000).toISOString();
      const res = await call('POST', '/users/ann/activity', { body: { servers: { '': { last_activity: at } } } });
      conforms('post', '/users/{name}/activity', res, 200);
      const user = await call('GET', '/users/ann');
      const body = user.body as { last_activity: string; servers: Record<string, { last_activity: string }> };
      expect(Date.parse(body.servers['']!.last_activity)).toBeGreaterThanOrEqual(Date.parse(at));
      expect(Date.parse(body.last_activity)).toBeGreaterThanOrEqual(Date.parse(at));
    });

    it('POST /users/{name}/server on a running server answers 400', async () => {
      const res = await call('POST', '/users/ann/server');
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ status: 400, message: expect.any(String) });
    });

    it('GET /users?state=active|ready|inactive filters by server state', async () => {
      const all = userNames((await call('GET', '/users')).body);
      const active = await call('GET', '/users?state=active');
      conforms('get', '/users', active, 200);
      expect(userNames(active.body)).toEqual(['ann']);
      const ready = await call('GET', '/users?state=ready');
      conforms('get', '/users', ready, 200);
      expect(userNames(ready.body)).toEqual(['ann']);
      const inactive = await call('GET', '/users?state=inactive');
      conforms('get', '/users', inactive, 200);
      expect(userNames(inactive.body).sort()).toEqual(all.filter((n) => n !== 'ann').sort());
      const paged = await call('GET', '/users?state=active', { headers: { accept: PAGINATION } });
      expect(paged.body).toMatchObject({ items: [{ name: 'ann' }], _pagination: { total: 1, next: null } });
    });

    it('GET /users/{name}/server/progress streams events ending with ready (not in the spec: checked by hand)', async () => {
      const res = await fetch(`${hub.url}/hub/api/users/ann/server/progress`, { headers: { authorization: `token ${admin}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      const events = parseEventStream(await res.text());
      expect(events.length).toBeGreaterThan(0);
      for (const e of events) {
        expect(typeof e.message).toBe('string');
        if (e.progress !== undefined) expect(e.progress).toEqual(expect.any(Number));
      }
      expect(events.at(-1)).toEqual({
        progress: 100, ready: true, message: 'Server ready at /user/ann/', html_message: expect.stringContaining('href="/user/ann/"'), url: '/user/ann/',
      });
    });

    it('progress of a user that never started a server answers 400 as JSON', async () => {
      const res = await call('GET', '/users/ben/server/progress');
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ status: 400, message: expect.any(String) });
    });

    it('DELETE /users/{name}/server stops it (204)', async () => {
      const res = await call('DELETE', '/users/ann/server');
      conforms('delete', '/users/{name}/server', res, 204);
      const user = await call('GET', '/users/ann');
      conforms('get', '/users/{name}', user, 200);
      expect(user.body).toMatchObject({ server: null, pending: null, servers: {} });
      const stopped = await call('GET', '/users/ann?include_stopped_servers');
      conforms('get', '/users/{name}', stopped, 200);
      expect((stopped.body as { servers: Record<string, unknown> }).servers['']).toMatchObject({ ready: false, pending: null, stopped: true });
      expect(userNames((await call('GET', '/users?state=active')).body)).toEqual([]);
      const list = await call('GET', '/users?include_stopped_servers');
      conforms('get', '/users', list, 200);
    });

    it('DELETE /users/{name}/server of a stopped server answers 204', async () => {
      const res = await call('DELETE', '/users/ann/server');
      conforms('delete', '/users/{name}/server', res, 204);
    });

    it('POST /users/{name}/server takes user options from the body', async () => {
      const res = await call('POST', '/users/cat/server', { body: { flavor: 'small' } });
      conforms('post', '/users/{name}/server', res, 201);
      const user = await call('GET', '/users/cat');
      conforms('get', '/users/{name}', user, 200);
      expect((user.body as { servers: Record<string, { user_options: unknown }> }).servers['']!.user_options).toEqual({ flavor: 'small' });
      conforms('delete', '/users/{name}/server', await call('DELETE', '/users/cat/server'), 204);
    });

    it('POST /users/{name}/servers/{server_name} starts a named server (201)', async () => {
      const res = await call('POST', '/users/ben/servers/lab1');
      conforms('post', '/users/{name}/servers/{server_name}', res, 201);
      const user = await call('GET', '/users/ben');
      conforms('get', '/users/{name}', user, 200);
      const body = user.body as { server: string | null; servers: Record<string, Record<string, unknown>> };
      expect(body.server).toBeNull();
      expect(body.servers.lab1).toMatchObject({
        name: 'lab1', ready: true, url: '/user/ben/lab1/', progress_url: '/hub/api/users/ben/servers/lab1/progress',
      });
      expect(userNames((await call('GET', '/users?state=ready')).body)).toEqual(['ben']);
    });

    it('GET /users/{name}/servers/{server_name}/progress ends with ready', async () => {
      const res = await fetch(`${hub.url}/hub/api/users/ben/servers/lab1/progress`, { headers: { authorization: `token ${admin}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const events = parseEventStream(await res.text());
      expect(events.at(-1)).toMatchObject({ progress: 100, ready: true, url: '/user/ben/lab1/' });
    });

    it('DELETE /users/{name}/servers/{server_name} stops it, and {remove: true} removes it', async () => {
      const stop = await call('DELETE', '/users/ben/servers/lab1');
      conforms('delete', '/users/{name}/servers/{server_name}', stop, 204);
      const stopped = await call('GET', '/users/ben?include_stopped_servers');
      expect((stopped.body as { servers: Record<string, unknown> }).servers.lab1).toMatchObject({ stopped: true, ready: false });
      const remove = await call('DELETE', '/users/ben/servers/lab1', { body: { remove: true } });
      conforms('delete', '/users/{name}/servers/{server_name}', remove, 204);
      const gone = await call('GET', '/users/ben?include_stopped_servers');
      conforms('get', '/users/{name}', gone, 200);
      expect((gone.body as { servers: Record<string, unknown> }).servers.lab1).toBeUndefined();
      const missing = await call('DELETE', '/users/ben/servers/lab1');
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ status: 404, message: expect.any(String) });
    });

    it('a running named server can be removed in one call', async () => {
      conforms('post', '/users/{name}/servers/{server_name}', await call('POST', '/users/ben/servers/lab2', { body: {} }), 201);
      const remove = await call('DELETE', '/users/ben/servers/lab2', { body: { remove: true } });
      conforms('delete', '/users/{name}/servers/{server_name}', remove, 204);
      const gone = await call('GET', '/users/ben?include_stopped_servers');
      expect((gone.body as { servers: Record<string, unknown> }).servers.lab2).toBeUndefined();
    });

    it('DELETE /users/{name} stops the running server of the user it deletes', async () => {
      conforms('post', '/users/{name}', await call('POST', '/users/hal'), 201);
      conforms('post', '/users/{name}/server', await call('POST', '/users/hal/server'), 201);
      conforms('delete', '/users/{name}', await call('DELETE', '/users/hal'), 204);
      expect((await call('GET', '/users/hal')).status).toBe(404);
    });
  });

  describe('tokens', () => {
    let created: { id: string; token: string };

    it('POST /users/{name}/tokens with expires_in, scopes and note', async () => {
      const res = await call('POST', '/users/eve/tokens', { body: { expires_in: 3600, scopes: ['read:users!user=eve'], note: 'spec test' } });
      conforms('post', '/users/{name}/tokens', res, 201);
      const body = res.body as Record<string, unknown>;
      expect(body).toMatchObject({
        user: 'eve', id: expect.stringMatching(/^a\d+$/), token: expect.any(String), note: 'spec test', roles: [], kind: 'api_token',
      });
      expect(body.scopes).toEqual(expect.arrayContaining(['read:users!user=eve']));
      const expires = Date.parse(body.expires_at as string) - Date.now();
      expect(expires).toBeGreaterThan(3500_000);
      expect(expires).toBeLessThanOrEqual(3600_000);
      created = body as typeof created;
    });

    it('the new token works, with its scopes', async () => {
      const res = await apiCall(hub.url, 'GET', '/user', { token: created.token });
      conforms('get', '/user', res, 200);
      expect(res.body).toMatchObject({ kind: 'user', name: 'eve', token_id: created.id });
      expect((res.body as { scopes: string[] }).scopes).toContain('read:users!user=eve');
      expect((await apiCall(hub.url, 'GET', '/users/eve', { token: created.token })).status).toBe(200);
      const other = await apiCall(hub.url, 'GET', '/users/ann', { token: created.token });
      expect([403, 404]).toContain(other.status);
    });

    it('POST /users/{name}/tokens with no body gives a token with the owner\'s permissions', async () => {
      const res = await call('POST', '/users/eve/tokens');
      conforms('post', '/users/{name}/tokens', res, 201);
      expect(res.body).toMatchObject({ user: 'eve', expires_at: null, note: expect.any(String) });
      const own = await apiCall(hub.url, 'GET', '/users/eve', { token: (res.body as { token: string }).token });
      conforms('get', '/users/{name}', own, 200);
      expect(own.body).toMatchObject({ kind: 'user', name: 'eve', admin: false, servers: {} });
    });

    it('token models list expanded scopes, as JupyterHub\'s token_model does (never the metascope inherit)', async () => {
      const made = await call('POST', '/users/eve/tokens', { body: { note: 'default scopes' } });
      conforms('post', '/users/{name}/tokens', made, 201);
      const { id, scopes } = made.body as { id: string; scopes: string[] };
      expect(scopes).not.toContain('inherit');
      expect(scopes).toEqual(expect.arrayContaining(['read:users!user=eve', 'servers!user=eve']));
      const read = await call('GET', `/users/eve/tokens/${id}`);
      conforms('get', '/users/{name}/tokens/{token_id}', read, 200);
      expect((read.body as { scopes: string[] }).scopes).toEqual(scopes);
    });

    it('GET /users/{name}/tokens lists them, without the token values', async () => {
      const res = await call('GET', '/users/eve/tokens');
      conforms('get', '/users/{name}/tokens', res, 200);
      const tokens = (res.body as { api_tokens: Array<Record<string, unknown>> }).api_tokens;
      expect(tokens.map((t) => t.id)).toContain(created.id);
      for (const t of tokens) expect(t.token).toBeUndefined();
      expect(res.text).not.toContain(created.token);
    });

    it('GET /users/{name}/tokens/{token_id}', async () => {
      const res = await call('GET', `/users/eve/tokens/${created.id}`);
      conforms('get', '/users/{name}/tokens/{token_id}', res, 200);
      expect(res.body).toMatchObject({ id: created.id, user: 'eve', note: 'spec test' });
      expect((res.body as Record<string, unknown>).token).toBeUndefined();
      const elsewhere = await call('GET', `/users/dan/tokens/${created.id}`);
      expect(elsewhere.status).toBe(404);
    });

    it('DELETE /users/{name}/tokens/{token_id} revokes it', async () => {
      const res = await call('DELETE', `/users/eve/tokens/${created.id}`);
      conforms('delete', '/users/{name}/tokens/{token_id}', res, 204);
      expect((await call('GET', `/users/eve/tokens/${created.id}`)).status).toBe(404);
      const revoked = await apiCall(hub.url, 'GET', '/user', { token: created.token });
      expect(revoked.status).toBe(403);
      expect(revoked.body).toEqual({ status: 403, message: expect.any(String) });
    });
  });

  describe('groups', () => {
    it('setup: groups g1 and g2 with members ann and ben', async () => {
      for (const name of ['g1', 'g2']) conforms('post', '/groups/{name}', await call('POST', `/groups/${name}`, { body: { users: ['ann', 'ben'] } }), 201);
    });

    it('GET /groups, also paginated', async () => {
      const res = await call('GET', '/groups');
      conforms('get', '/groups', res, 200);
      expect((res.body as Array<{ name: string }>).map((g) => g.name)).toEqual(expect.arrayContaining(['g1', 'g2']));
      const paged = await call('GET', '/groups?limit=1', { headers: { accept: PAGINATION } });
      expect(paged.status).toBe(200);
      expect(validateComponent('PaginatedList', paged.body)).toEqual([]);
      const body = paged.body as { items: unknown[]; _pagination: { total: number; next: { offset: number; url: string } | null } };
      expect(validateResponse('get', '/groups', 200, body.items)).toEqual([]);
      expect(body.items).toHaveLength(1);
      expect(body._pagination.total).toBeGreaterThanOrEqual(2);
      expect(body._pagination.next).toMatchObject({ offset: 1, limit: 1 });
      expect(new URL(body._pagination.next!.url).pathname).toBe('/hub/api/groups');
    });

    it('user models list their groups', async () => {
      const res = await call('GET', '/users/ann');
      conforms('get', '/users/{name}', res, 200);
      expect((res.body as { groups: string[] }).groups.sort()).toEqual(['g1', 'g2']);
    });

    it('POST /groups/{name} creates one group; GET /groups/{name} reads it', async () => {
      const res = await call('POST', '/groups/g3');
      conforms('post', '/groups/{name}', res, 201);
      expect(res.body).toMatchObject({ kind: 'group', name: 'g3', users: [], properties: {} });
      const read = await call('GET', '/groups/g3');
      conforms('get', '/groups/{name}', read, 200);
      expect(read.body).toMatchObject({ name: 'g3', users: [] });
      const withUsers = await call('POST', '/groups/g4', { body: { users: ['cat'] } });
      conforms('post', '/groups/{name}', withUsers, 201);
      expect(withUsers.body).toMatchObject({ name: 'g4', users: ['cat'] });
      const again = await call('POST', '/groups/g3');
      expect(again.status).toBe(409);
      const missing = await call('GET', '/groups/nope');
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ status: 404, message: expect.any(String) });
    });

    it('POST /groups/{name}/users adds members; DELETE removes them', async () => {
      const added = await call('POST', '/groups/g3/users', { body: { users: ['cat', 'dan'] } });
      conforms('post', '/groups/{name}/users', added, 200);
      expect((added.body as { users: string[] }).users.sort()).toEqual(['cat', 'dan']);
      const removed = await call('DELETE', '/groups/g3/users', { body: { users: ['cat'] } });
      conforms('delete', '/groups/{name}/users', removed, 200);
      expect(validateComponent('Group', removed.body)).toEqual([]);
      expect(removed.body).toMatchObject({ name: 'g3', users: ['dan'] });
      const unknown = await call('POST', '/groups/g3/users', { body: { users: ['nobody-at-all'] } });
      expect(unknown.status).toBe(400);
      expect(unknown.body).toEqual({ status: 400, message: expect.any(String) });
    });

    it('PUT /groups/{name}/properties replaces the properties', async () => {
      const res = await call('PUT', '/groups/g3/properties', { body: { course: 'DL-101', seats: 30, tags: ['a'] } });
      conforms('put', '/groups/{name}/properties', res, 200);
      expect(res.body).toMatchObject({ name: 'g3', properties: { course: 'DL-101', seats: 30, tags: ['a'] } });
      const replaced = await call('PUT', '/groups/g3/properties', { body: { course: 'DL-102' } });
      conforms('put', '/groups/{name}/properties', replaced, 200);
      expect((replaced.body as { properties: unknown }).properties).toEqual({ course: 'DL-102' });
      const read = await call('GET', '/groups/g3');
      expect((read.body as { properties: unknown }).properties).toEqual({ course: 'DL-102' });
    });

    it('DELETE /groups/{name}', async () => {
      const res = await call('DELETE', '/groups/g3');
      conforms('delete', '/groups/{name}', res, 204);
      expect((await call('GET', '/groups/g3')).status).toBe(404);
      const again = await call('DELETE', '/groups/g3');
      expect(again.status).toBe(404);
    });
  });

  // PATCH /users/{name} and POST /groups write in a DB transaction. They are kept last so that a hub which hangs
  // there fails only these tests, not every operation tested after them.
  describe('writes in one transaction', () => {
    it('setup: user ivy', async () => {
      conforms('post', '/users/{name}', await call('POST', '/users/ivy'), 201);
    });

    it('PATCH /users/{name} changes admin and name', async () => {
      const promoted = await call('PATCH', '/users/ivy', { body: { admin: true } });
      conforms('patch', '/users/{name}', promoted, 200);
      expect(promoted.body).toMatchObject({ name: 'ivy', admin: true });
      const demoted = await call('PATCH', '/users/ivy', { body: { admin: false } });
      conforms('patch', '/users/{name}', demoted, 200);
      expect(demoted.body).toMatchObject({ name: 'ivy', admin: false });
      const renamed = await call('PATCH', '/users/ivy', { body: { name: 'ivy2' } });
      conforms('patch', '/users/{name}', renamed, 200);
      expect(renamed.body).toMatchObject({ name: 'ivy2' });
      expect((await call('GET', '/users/ivy')).status).toBe(404);
      conforms('get', '/users/{name}', await call('GET', '/users/ivy2'), 200);
    });

    it('PATCH /users/{name} to a taken name answers 400', async () => {
      const res = await call('PATCH', '/users/ivy2', { body: { name: 'ann' } });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ status: 400, message: expect.any(String) });
    });

    it('POST /groups creates several groups with members (not in the spec: checked by hand)', async () => {
      const res = await call('POST', '/groups', { body: { groups: ['g5', 'g6'], users: ['ann', 'ben'] } });
      expect(res.status).toBe(201);
      expect(Array.isArray(res.body)).toBe(true);
      for (const g of res.body as unknown[]) expect(validateComponent('Group', g)).toEqual([]);
      expect(res.body).toEqual([
        { kind: 'group', name: 'g5', users: ['ann', 'ben'], properties: {}, roles: [] },
        { kind: 'group', name: 'g6', users: ['ann', 'ben'], properties: {}, roles: [] },
      ].map((g) => expect.objectContaining({ ...g, users: expect.arrayContaining(g.users) })));
      const again = await call('POST', '/groups', { body: { groups: ['g5'] } });
      expect(again.status).toBe(409);
      expect(again.body).toEqual({ status: 409, message: expect.any(String) });
    });

    it('the hub still answers after those writes', async () => {
      conforms('get', '/users/{name}', await call('GET', '/users/admin'), 200);
    });
  });

  describe('sharing', () => {
    it('every sharing operation answers in the spec\'s shapes', async () => {
      expect((await call('POST', '/users', { body: { usernames: ['sha', 'shb'] } })).status).toBe(201);
      expect((await call('POST', '/groups/shg', { body: { users: ['shb'] } })).status).toBe(201);
      conforms('post', '/shares/{owner}/{server_name}', await call('POST', '/shares/sha/', { body: { user: 'shb' } }), 200);
      conforms('post', '/shares/{owner}/{server_name}', await call('POST', '/shares/sha/', { body: { group: 'shg' } }), 200);
      conforms('get', '/shares/{owner}', await call('GET', '/shares/sha'), 200);
      conforms('get', '/shares/{owner}/{server_name}', await call('GET', '/shares/sha/'), 200);
      conforms('get', '/users/{name}/shared', await call('GET', '/users/shb/shared'), 200);
      conforms('get', '/users/{name}/shared/{owner}/{server_name}', await call('GET', '/users/shb/shared/sha/'), 200);
      conforms('get', '/groups/{name}/shared', await call('GET', '/groups/shg/shared'), 200);
      conforms('get', '/groups/{name}/shared/{owner}/{server_name}', await call('GET', '/groups/shg/shared/sha/'), 200);
      const code = await call('POST', '/share-codes/sha/', { body: { expires_in: 600 } });
      conforms('post', '/share-codes/{owner}/{server_name}', code, 200);
      conforms('get', '/share-codes/{owner}', await call('GET', '/share-codes/sha'), 200);
      conforms('get', '/share-codes/{owner}/{server_name}', await call('GET', '/share-codes/sha/'), 200);
      expect((await call('DELETE', `/share-codes/sha/?id=${(code.body as { id: string }).id}`)).status).toBe(204);
      const patched = await call('PATCH', '/shares/sha/', { body: { group: 'shg' } });
      conforms('patch', '/shares/{owner}/{server_name}', patched, 200);
      expect(patched.body).toEqual({});
      expect((await call('DELETE', '/groups/shg/shared/sha/')).status).toBe(404);
      expect((await call('DELETE', '/users/shb/shared/sha/')).status).toBe(204);
      expect((await call('POST', '/shares/sha/', { body: { user: 'shb' } })).status).toBe(200);
      expect((await call('DELETE', '/shares/sha/')).status).toBe(204);
      expect(((await call('GET', '/shares/sha')).body as { items: unknown[] }).items).toEqual([]);
    });
  });

  describe('services', () => {
    it('GET /services is an object keyed by name, as JupyterHub answers (its spec says an array); an unknown service is 404', async () => {
      const list = await call('GET', '/services');
      expect(list.status).toBe(200);
      expect(list.body).toEqual({});
      expect((await call('GET', '/services/none')).status).toBe(404);
    });
  });
});

/** The JSON of each `data:` line of a text/event-stream body (keepalive blank lines skipped). */
function parseEventStream(text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((line) => line.startsWith('data:')).map((line) => JSON.parse(line.slice(5).trim()) as Record<string, unknown>);
}
