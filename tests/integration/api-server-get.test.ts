import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { validateComponent } from '../helpers/openapi.js';

/** JupyterHub 6.0's `GET /users/{name}/servers/{server_name}`: one server's model, by name, with its scopes. */
describe('GET /users/{name}/servers/{server_name}', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_ALLOW_NAMED_SERVERS: 'true' } });
  let admin = '';
  let ann = '';

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'root', '--admin'])).status).toBe(0);
    admin = (await hub.cli(['token', 'root'])).stdout.trim();
    expect((await api(hub.url, admin, 'POST', '/users', { usernames: ['ann', 'bo'] })).status).toBe(201);
    ann = (await hub.cli(['token', 'ann'])).stdout.trim();
    expect((await api(hub.url, ann, 'POST', '/users/ann/servers/lab', { size: 's' })).status).toBeLessThan(300);
    await eventually(async () => ((await api(hub.url, ann, 'GET', '/users/ann/servers/lab')).body as { ready?: boolean }).ready);
  });
  afterAll(() => hub.cleanup());

  it('answers the model of a running server, valid against the spec, with state only for admin:server_state', async () => {
    const own = await api(hub.url, ann, 'GET', '/users/ann/servers/lab');
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ name: 'lab', full_name: 'ann/lab', ready: true, url: '/user/ann/lab/', user_options: { size: 's' } });
    expect(own.body).not.toHaveProperty('state');
    expect(validateComponent('Server', own.body)).toEqual([]);
    expect(validateComponent('Server', own.body, '6.0.0b2')).toEqual([]);
    expect((await api(hub.url, admin, 'GET', '/users/ann/servers/lab')).body).toHaveProperty('state');
  });

  it('answers a stopped server that still exists, and 404 JSON for one that does not', async () => {
    expect((await api(hub.url, ann, 'DELETE', '/users/ann/servers/lab')).status).toBe(204);
    const stopped = await api(hub.url, ann, 'GET', '/users/ann/servers/lab');
    expect(stopped.status).toBe(200);
    expect(stopped.body).toMatchObject({ name: 'lab', ready: false, stopped: true });
    const missing = await api(hub.url, ann, 'GET', '/users/ann/servers/nope');
    expect(missing).toMatchObject({ status: 404, body: { status: 404, message: expect.stringContaining('No such server') } });
  });

  it('hides another user\'s server as JupyterHub does (404 JSON for a scope held only on oneself), and refuses an invalid name with 400', async () => {
    const bo = (await hub.cli(['token', 'bo'])).stdout.trim();
    expect((await api(hub.url, bo, 'GET', '/users/ann/servers/lab'))).toMatchObject({ status: 404, body: { status: 404 } });
    expect((await api(hub.url, ann, 'GET', '/users/ann/servers/-bad-'))).toMatchObject({ status: 400, body: { status: 400 } });
  });
});

/** JupyterHub 6.0's `start:servers`: starting without the power to stop, implied by `servers`. */
describe('the start:servers scope', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant' } });

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'cy'])).status).toBe(0);
  });
  afterAll(() => hub.cleanup());

  it('starts a server but cannot stop it; delete:servers stops but cannot start', async () => {
    const starter = (await hub.cli(['token', 'cy', '--scopes', 'start:servers'])).stdout.trim();
    const stopper = (await hub.cli(['token', 'cy', '--scopes', 'delete:servers'])).stdout.trim();
    expect((await api(hub.url, starter, 'POST', '/users/cy/server')).status).toBeLessThan(300);
    expect((await api(hub.url, starter, 'DELETE', '/users/cy/server'))).toMatchObject({ status: 403, body: { status: 403 } });
    expect((await api(hub.url, stopper, 'DELETE', '/users/cy/server')).status).toBe(204);
    expect((await api(hub.url, stopper, 'POST', '/users/cy/server'))).toMatchObject({ status: 403, body: { status: 403 } });
  });
});

/**
 * JupyterHub 6.0's servers as resources: `PUT` creates a stopped named server, `PATCH` renames or changes a stopped
 * one, and a start's ServerRequest body (`user_options`, `display_name`) with "as last time" when none is given.
 */
describe('PUT and PATCH /users/{name}/servers/{server_name}, and the ServerRequest body', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_ALLOW_NAMED_SERVERS: 'true' } });
  let admin = '';
  let cy = '';
  const model = async (server: string) => (await api(hub.url, cy, 'GET', `/users/cy/servers/${server}`)).body as Record<string, unknown>;
  const stop = async (server: string) => expect((await api(hub.url, cy, 'DELETE', `/users/cy/servers/${server}`)).status).toBe(204);

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'root', '--admin'])).status).toBe(0);
    admin = (await hub.cli(['token', 'root'])).stdout.trim();
    expect((await api(hub.url, admin, 'POST', '/users', { usernames: ['cy', 'di'] })).status).toBe(201);
    cy = (await hub.cli(['token', 'cy'])).stdout.trim();
  });
  afterAll(() => hub.cleanup());

  it('PUT creates a stopped server with its options and display name, once', async () => {
    const created = await api(hub.url, cy, 'PUT', '/users/cy/servers/gpu', { user_options: { size: 'l' }, display_name: 'GPU box' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'gpu', ready: false, stopped: true, user_options: { size: 'l' }, display_name: 'GPU box' });
    expect(validateComponent('Server', created.body)).toEqual([]);
    expect(validateComponent('Server', created.body, '6.0.0b2')).toEqual([]);
    expect(await api(hub.url, cy, 'PUT', '/users/cy/servers/gpu', {})).toMatchObject({ status: 409, body: { status: 409 } });
    expect(await api(hub.url, cy, 'PUT', '/users/cy/servers/gpu2', { display_name: 'x'.repeat(300) })).toMatchObject({ status: 400, body: { status: 400 } });
    expect(await api(hub.url, cy, 'PUT', '/users/cy/servers/gpu2', { user_options: [1] })).toMatchObject({ status: 400 });
  });

  it('a start without options reuses the last ones; a ServerRequest or a plain body replaces them', async () => {
    expect((await api(hub.url, cy, 'POST', '/users/cy/servers/gpu')).status).toBeLessThan(300);
    await eventually(async () => (await model('gpu')).ready);
    expect(await model('gpu')).toMatchObject({ user_options: { size: 'l' } });
    await stop('gpu');
    expect((await api(hub.url, cy, 'POST', '/users/cy/servers/gpu', { user_options: null, display_name: 'Big GPU' })).status).toBeLessThan(300);
    await eventually(async () => (await model('gpu')).ready);
    expect(await model('gpu')).toMatchObject({ user_options: { size: 'l' }, display_name: 'Big GPU' });
    await stop('gpu');
    expect((await api(hub.url, cy, 'POST', '/users/cy/servers/gpu', { size: 's' })).status).toBeLessThan(300);
    await eventually(async () => (await model('gpu')).ready);
    expect(await model('gpu')).toMatchObject({ user_options: { size: 's' } });
    await stop('gpu');
  });

  it('PATCH renames a stopped server (its old address leads nowhere) and changes its options; a running one is refused', async () => {
    const renamed = await api(hub.url, cy, 'PATCH', '/users/cy/servers/gpu', { name: 'gpu-big', user_options: { size: 'xl' } });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'gpu-big', url: '/user/cy/gpu-big/', user_options: { size: 'xl' } });
    expect((await api(hub.url, cy, 'GET', '/users/cy/servers/gpu')).status).toBe(404);
    expect((await api(hub.url, cy, 'POST', '/users/cy/servers/gpu-big')).status).toBeLessThan(300);
    await eventually(async () => (await model('gpu-big')).ready);
    expect(await api(hub.url, cy, 'PATCH', '/users/cy/servers/gpu-big', { display_name: 'busy' })).toMatchObject({ status: 400, body: { status: 400 } });
    await stop('gpu-big');
    expect((await api(hub.url, cy, 'PUT', '/users/cy/servers/other', {})).status).toBe(201);
    const cases: Array<[string, unknown, number]> = [
      ['/users/cy/servers/gpu-big', { name: 'other' }, 409],
      ['/users/cy/servers/gpu-big', { name: '-bad-' }, 400],
      ['/users/cy/servers/gpu-big', {}, 400],
      ['/users/cy/servers/gpu-big', { colour: 'red' }, 400],
      ['/users/cy/servers/missing', { display_name: 'x' }, 404],
      ['/users/di/servers/gpu-big', { display_name: 'x' }, 404],
    ];
    for (const [path, body, status] of cases) {
      expect(await api(hub.url, cy, 'PATCH', path, body), `${path} ${JSON.stringify(body)}`).toMatchObject({ status, body: { status } });
    }
  });

  it('PATCH of the default server with a name makes it a named server, as JupyterHub 6.1 does', async () => {
    expect((await api(hub.url, cy, 'POST', '/users/cy/server', { size: 'm' })).status).toBeLessThan(300);
    await eventually(async () => ((await api(hub.url, cy, 'GET', '/users/cy')).body as { server: string | null }).server);
    expect((await api(hub.url, cy, 'DELETE', '/users/cy/server')).status).toBe(204);
    const moved = await api(hub.url, cy, 'PATCH', '/users/cy/servers/', { name: 'old-default' });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body).toMatchObject({ name: 'old-default', user_options: { size: 'm' } });
  });
});
