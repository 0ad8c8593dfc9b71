import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, HubProcess } from '../helpers/hub.js';
import { apiCall, validateResponse } from '../helpers/openapi.js';

/**
 * `GET/POST /hub/api/proxy`, `POST /shutdown` and the removed `POST /authorizations/token`, against a real hub and
 * its proxy, with JupyterHub's models and scopes.
 */
describe('the proxy through the REST API', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy' } });
  let admin = '';
  let plain = '';
  const proxyApi = (path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${hub.apiPort}/api/routes${path}`, { ...init, headers: { authorization: `token ${hub.proxyToken()}` } });

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'admin', '--admin'])).status).toBe(0);
    admin = (await hub.cli(['token', 'admin'])).stdout.trim();
    expect((await api(hub.url, admin, 'POST', '/users', { usernames: ['dora', 'eli'] })).status).toBe(201);
    plain = (await hub.cli(['token', 'eli'])).stdout.trim();
    expect([201, 202]).toContain((await api(hub.url, admin, 'POST', '/users/dora/server')).status);
  });

  afterAll(() => hub.cleanup());

  it('GET /proxy lists the hub\'s routes by routespec, with target and data, as the spec says', async () => {
    const res = await apiCall(hub.url, 'GET', '/proxy', { token: admin });
    expect(res.status).toBe(200);
    expect(validateResponse('get', '/proxy', 200, res.body)).toEqual([]);
    const table = res.body as Record<string, { routespec: string; target: string; data: Record<string, unknown> }>;
    expect(Object.keys(table).sort()).toEqual(['/', '/user/dora/']);
    expect(table['/']).toEqual({ routespec: '/', target: expect.stringMatching(/^http:/), data: { hub: true } });
    expect(table['/user/dora/']).toMatchObject({ routespec: '/user/dora/', target: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), data: { user: 'dora', server_name: '' } });
  });

  it('GET /proxy pages with offset and limit, and with the pagination media type', async () => {
    const bare = await apiCall(hub.url, 'GET', '/proxy?offset=1&limit=1', { token: admin });
    expect(Object.keys(bare.body as object)).toEqual(['/user/dora/']);
    const paged = await apiCall(hub.url, 'GET', '/proxy?limit=1', { token: admin, headers: { accept: 'application/jupyterhub-pagination+json' } });
    expect(paged.body).toMatchObject({ items: { '/': expect.any(Object) }, _pagination: { offset: 0, limit: 1, total: 2, next: { offset: 1, limit: 1 } } });
  });

  it('POST /proxy puts back a route the proxy lost', async () => {
    expect((await proxyApi('/user/dora', { method: 'DELETE' })).status).toBe(204);
    expect(Object.keys((await apiCall(hub.url, 'GET', '/proxy', { token: admin })).body as object)).toEqual(['/']);
    const synced = await apiCall(hub.url, 'POST', '/proxy', { token: admin });
    expect(synced.status).toBe(200);
    expect(Object.keys((await apiCall(hub.url, 'GET', '/proxy', { token: admin })).body as object).sort()).toEqual(['/', '/user/dora/']);
  });

  it('needs the proxy scope', async () => {
    for (const method of ['GET', 'POST']) {
      const res = await apiCall(hub.url, method, '/proxy', { token: plain });
      expect(res.status, method).toBe(403);
      expect(res.body).toMatchObject({ status: 403, message: expect.stringContaining('proxy') });
    }
    expect((await apiCall(hub.url, 'GET', '/proxy')).status).toBe(403);
  });

  it('POST /authorizations/token answers JupyterHub 2.0\'s 404 with where to go instead', async () => {
    const res = await apiCall(hub.url, 'POST', '/authorizations/token', { token: admin, body: { username: 'dora', password: 'x' } });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ status: 404, message: expect.stringContaining('/hub/api/users/:user/tokens') });
  });
});

describe('POST /shutdown', () => {
  const hubs: HubProcess[] = [];
  const started = async () => {
    const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy' } });
    hubs.push(hub);
    await hub.start();
    expect((await hub.cli(['users', 'add', 'admin', '--admin'])).status).toBe(0);
    return { hub, token: (await hub.cli(['token', 'admin'])).stdout.trim() };
  };
  const exited = (hub: HubProcess) => new Promise<number | null>((resolve) => {
    if (hub.child!.exitCode !== null) resolve(hub.child!.exitCode);
    else hub.child!.once('exit', (code) => resolve(code));
  });
  const proxyAnswers = (hub: HubProcess) => fetch(`http://127.0.0.1:${hub.apiPort}/api/routes`, { headers: { authorization: `token ${hub.proxyToken()}` } })
    .then((r) => r.ok, () => false);

  afterAll(async () => {
    for (const hub of hubs) await hub.cleanup();
  });

  it('needs the shutdown scope and a valid body, then answers 202 and stops the hub and its proxy', async () => {
    const { hub, token } = await started();
    expect((await hub.cli(['users', 'add', 'eli'])).status).toBe(0);
    const plain = (await hub.cli(['token', 'eli'])).stdout.trim();
    expect((await apiCall(hub.url, 'POST', '/shutdown', { token: plain })).status).toBe(403);
    const bad = await apiCall(hub.url, 'POST', '/shutdown', { token, body: { proxy: 'yes' } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ status: 400, message: expect.stringContaining('proxy') });
    expect((await apiCall(hub.url, 'POST', '/shutdown', { token, body: { everything: true } })).status).toBe(400);
    expect(hub.child!.exitCode).toBeNull();

    const res = await apiCall(hub.url, 'POST', '/shutdown', { token, body: { servers: true } });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ message: 'Shutting down Hub' });
    expect(await exited(hub)).toBe(0);
    expect(hub.output).toMatch(/stopping every server first/);
    expect(await proxyAnswers(hub)).toBe(false);
  });

  it('leaves the proxy running with {proxy: false}', async () => {
    const { hub, token } = await started();
    expect((await apiCall(hub.url, 'POST', '/shutdown', { token, body: { proxy: false } })).status).toBe(202);
    expect(await exited(hub)).toBe(0);
    expect(await proxyAnswers(hub)).toBe(true);
  });
});
