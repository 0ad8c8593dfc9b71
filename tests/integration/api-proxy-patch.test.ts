/**
 * `PATCH /hub/api/proxy` against a real hub and a second real proxy (`labhub proxy`): the hub moves its whole table
 * to the new proxy and drives it from then on; a bad body, a proxy that does not answer or refuses the token, and a
 * requester without the `proxy` scope change nothing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, HubProcess, LABHUB } from '../helpers/hub.js';
import { apiCall, validateResponse } from '../helpers/openapi.js';
import { freePort } from '../helpers/ports.js';

const NEW_TOKEN = 'second-proxy-token-0123456789abcdef';

interface SecondProxy {
  child: ChildProcess;
  port: number;
  apiUrl: string;
}

/** `labhub proxy` on free ports, with its own API token, answering before this resolves. */
async function startSecondProxy(): Promise<SecondProxy> {
  const [port, apiPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [LABHUB, 'proxy', '--ip', '127.0.0.1', '--port', String(port), '--api-port', String(apiPort)], {
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: NEW_TOKEN }, stdio: 'ignore',
  });
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await eventually(() => fetch(`${apiUrl}/api/routes`, { headers: { authorization: `token ${NEW_TOKEN}` } }).then((r) => r.ok), 15_000, 100);
  return { child, port, apiUrl };
}

describe('PATCH /proxy moves the hub to another proxy', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy' } });
  let second: SecondProxy;
  let admin = '';
  let plain = '';
  const patch = (body: unknown, token = admin) => apiCall(hub.url, 'PATCH', '/proxy', { token, body });
  /** A proxy's whole table, read from its own API. */
  const tableOf = async (apiUrl: string, token: string) =>
    Object.keys(await (await fetch(`${apiUrl}/api/routes`, { headers: { authorization: `token ${token}` } })).json() as object).sort();
  const firstApi = () => `http://127.0.0.1:${hub.apiPort}`;

  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'admin', '--admin'])).status).toBe(0);
    admin = (await hub.cli(['token', 'admin'])).stdout.trim();
    expect((await apiCall(hub.url, 'POST', '/users', { token: admin, body: { usernames: ['dora', 'eli', 'fay'] } })).status).toBe(201);
    plain = (await hub.cli(['token', 'eli'])).stdout.trim();
    expect([201, 202]).toContain((await apiCall(hub.url, 'POST', '/users/dora/server', { token: admin })).status);
    second = await startSecondProxy();
  });

  afterAll(async () => {
    second?.child.kill('SIGTERM');
    await hub.cleanup();
  });

  it('needs the proxy scope', async () => {
    const res = await patch({ api_url: second.apiUrl, auth_token: NEW_TOKEN }, plain);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ status: 403, message: expect.stringContaining('proxy') });
    expect(await tableOf(second.apiUrl, NEW_TOKEN)).toEqual([]);
  });

  it('answers 400 JSON to a body it cannot take, and keeps its proxy', async () => {
    const bodies: unknown[] = [
      undefined, '[]', '"x"', { frob: 1 },
      { api_url: 'ftp://127.0.0.1:1', auth_token: 't' }, { api_url: 'not a url', auth_token: 't' }, { api_url: 5, auth_token: 't' },
      { api_url: 'http://user:pw@127.0.0.1:1', auth_token: 't' }, { api_url: 'http://127.0.0.1:1/?x=1', auth_token: 't' },
      { api_url: 'http://127.0.0.1:1/#x', auth_token: 't' },
      { auth_token: '' }, { auth_token: 'two words' }, { auth_token: 'line\nbreak' }, { auth_token: 5 },
      { api_url: second.apiUrl, port: '1', auth_token: NEW_TOKEN },
      { port: '70000', auth_token: 't' }, { port: '0', auth_token: 't' }, { port: 'eighty', auth_token: 't' },
      { ip: 'evil.example/x', auth_token: 't' }, { protocol: 'ftp', auth_token: 't' },
      // Another address without a token of its own: the hub's current proxy token is not sent there.
      { api_url: second.apiUrl },
    ];
    for (const body of bodies) {
      const res = await patch(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body, JSON.stringify(body)).toEqual({ status: 400, message: expect.any(String) });
    }
    expect(await tableOf(second.apiUrl, NEW_TOKEN)).toEqual([]);
    expect(await tableOf(firstApi(), hub.proxyToken())).toEqual(['/', '/user/dora']);
  });

  it('answers 502 JSON when the new proxy does not answer or refuses the token, and keeps driving the one that works', async () => {
    const dead = await patch({ api_url: `http://127.0.0.1:${await freePort()}`, auth_token: NEW_TOKEN });
    expect(dead.status).toBe(502);
    expect(dead.body).toEqual({ status: 502, message: expect.stringContaining('keeps using') });
    expect(dead.text).not.toContain(NEW_TOKEN);
    const refused = await patch({ api_url: second.apiUrl, auth_token: 'not-the-second-proxy-token' });
    expect(refused.status).toBe(502);
    expect(refused.body).toMatchObject({ status: 502 });
    expect(await tableOf(second.apiUrl, NEW_TOKEN)).toEqual([]);
    // A server started now gets its route on the first proxy: the hub's client did not move.
    expect([201, 202]).toContain((await apiCall(hub.url, 'POST', '/users/eli/server', { token: admin })).status);
    expect(await tableOf(firstApi(), hub.proxyToken())).toEqual(['/', '/user/dora', '/user/eli']);
  });

  it('moves the table (api_url and auth_token, as JupyterHub reads them) and users reach their servers through it', async () => {
    const res = await patch({ api_url: second.apiUrl, auth_token: NEW_TOKEN });
    expect(res.status).toBe(200);
    expect(validateResponse('patch', '/proxy', 200, res.body)).toEqual([]);
    expect(await tableOf(second.apiUrl, NEW_TOKEN)).toEqual(['/', '/user/dora', '/user/eli']);
    const through = `http://127.0.0.1:${second.port}`;
    const served = await fetch(`${through}/user/dora/lab`);
    expect(served.status).toBe(200);
    expect(await served.json()).toMatchObject({ server: 'instant', path: expect.stringContaining('/user/dora/lab') });
    expect((await fetch(`${through}/hub/api/`)).status).toBe(200);

    // GET /proxy now reads the new proxy; servers started and stopped from now on change it, not the old one.
    expect([201, 202]).toContain((await apiCall(hub.url, 'POST', '/users/fay/server', { token: admin })).status);
    expect((await apiCall(hub.url, 'DELETE', '/users/dora/server', { token: admin })).status).toBe(204);
    expect(await tableOf(second.apiUrl, NEW_TOKEN)).toEqual(['/', '/user/eli', '/user/fay']);
    expect(await tableOf(firstApi(), hub.proxyToken())).toEqual(['/', '/user/dora', '/user/eli']);
    const listed = await apiCall(hub.url, 'GET', '/proxy', { token: admin });
    expect(validateResponse('get', '/proxy', 200, listed.body)).toEqual([]);
    expect(Object.keys(listed.body as object).sort()).toEqual(['/', '/user/eli/', '/user/fay/']);
  });

  it('watches the new proxy: a route it loses is put back', async () => {
    const removed = await fetch(`${second.apiUrl}/api/routes/`, { method: 'DELETE', headers: { authorization: `token ${NEW_TOKEN}` } });
    expect(removed.status).toBe(204);
    expect(await eventually(async () => (await tableOf(second.apiUrl, NEW_TOKEN)).includes('/'), 15_000)).toBe(true);
  });

  it('moves back with the spec\'s ip, port and protocol', async () => {
    const res = await patch({ ip: '127.0.0.1', port: String(hub.apiPort), protocol: 'http', auth_token: hub.proxyToken() });
    expect(res.status).toBe(200);
    expect(await tableOf(firstApi(), hub.proxyToken())).toEqual(['/', '/user/eli', '/user/fay']);
    expect((await fetch(`${hub.url}/user/fay/lab`)).status).toBe(200);
  });

  it('back at its configured address, the hub starts its managed proxy again when it dies', async () => {
    expect(spawnSync('fuser', ['-k', '-KILL', `${hub.apiPort}/tcp`]).status).toBe(0);
    expect(await eventually(() => fetch(`${hub.url}/user/fay/lab`).then((r) => r.status === 200), 20_000)).toBe(true);
    expect(await tableOf(firstApi(), hub.proxyToken())).toEqual(['/', '/user/eli', '/user/fay']);
  });

  it('keeps the tokens it was given out of its output', () => {
    expect(hub.output).not.toContain(NEW_TOKEN);
    expect(hub.output).not.toContain('not-the-second-proxy-token');
  });
});
