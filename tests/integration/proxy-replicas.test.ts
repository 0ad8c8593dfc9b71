/**
 * Two proxy instances behind one address (a small TCP round-robin balancer that skips an instance that refuses
 * connections), driven by one hub with `proxy.api_urls`: both get every route, a restarted instance is re-synced,
 * and losing one instance drops no user. Requests through the shared address use a new connection each, as a
 * browser does after the connection it had to a lost instance is cut.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type Hub } from '../../hub/app.js';
import { loadConfig } from '../../hub/config/load.js';
import { createLogger } from '../../hub/log.js';
import { startProxy, type RunningProxy } from '../../proxy/main.js';
import { InstantSpawner } from '../../spawners/instant.js';
import { api, eventually } from '../helpers/hub.js';
import { freePort } from '../helpers/ports.js';
import { request } from '../helpers/proxy.js';

const PROXY_TOKEN = 'replica-test-proxy-token-0123456789';
const API_TOKEN = 'replica-test-api-token-123';
const quiet = createLogger('test.replicas', { level: 'silent' });

interface Instance {
  port: number;
  apiPort: number;
  running: RunningProxy | null;
}

/** Round-robin over the instances; a refused connection is retried on the next one, as a load balancer does. */
function startBalancer(instances: Instance[]): Promise<net.Server> {
  let next = 0;
  const server = net.createServer((client) => {
    const attempt = (tries: number) => {
      const instance = instances[next++ % instances.length]!;
      const upstream = net.connect(instance.port, '127.0.0.1');
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        client.pipe(upstream).pipe(client);
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
        client.once('close', () => upstream.destroy());
      });
      upstream.once('error', () => (tries > 1 && !connected ? attempt(tries - 1) : client.destroy()));
    };
    client.pause();
    attempt(instances.length);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function startInstance(instance: Instance): Promise<void> {
  instance.running = await startProxy({ ip: '127.0.0.1', port: instance.port, apiPort: instance.apiPort, authToken: PROXY_TOKEN, log: quiet });
}

describe('two proxy instances kept consistent by the hub', () => {
  const spawner = new InstantSpawner();
  const instances: Instance[] = [];
  let balancer: net.Server;
  let hub: Hub;
  let base = '';
  let dataDir = '';

  /** The server that answers `/user/<name>/` through each instance on its own port. */
  const reachable = async (name: string) =>
    Promise.all(instances.map((i) => fetch(`http://127.0.0.1:${i.port}/user/${name}/api`).then((r) => r.status, () => 0)));

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'labhub-replicas-'));
    for (let i = 0; i < 2; i++) instances.push({ port: await freePort(), apiPort: await freePort(), running: null });
    await Promise.all(instances.map(startInstance));
    balancer = await startBalancer(instances);
    base = `http://127.0.0.1:${(balancer.address() as net.AddressInfo).port}`;
    const config = loadConfig({
      env: {
        LABHUB_DATA_DIR: dataDir, LABHUB_IP: '127.0.0.1', LABHUB_PORT: String((balancer.address() as net.AddressInfo).port),
        LABHUB_HUB__PORT: String(await freePort()), LABHUB_PROXY__MODE: 'external', LABHUB_PROXY__AUTH_TOKEN: PROXY_TOKEN,
        LABHUB_PROXY__API_URLS: JSON.stringify(instances.map((i) => `http://127.0.0.1:${i.apiPort}`)),
        LABHUB_PROXY__CHECK_INTERVAL: '0.5',
        LABHUB_SERVICES: `[{name: tester, admin: true, api_token: ${API_TOKEN}}]`,
      },
    });
    hub = await startHub(config, { spawner, log: quiet });
    expect((await api(base, API_TOKEN, 'POST', '/users', { usernames: ['ann', 'ben', 'cy'] })).status).toBe(201);
  });

  afterAll(async () => {
    await hub?.close();
    await spawner.stopAll();
    await Promise.all(instances.map((i) => i.running?.close()));
    balancer?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('puts every route on both instances', async () => {
    expect((await api(base, API_TOKEN, 'POST', '/users/ann/server')).status).toBe(201);
    expect(await reachable('ann')).toEqual([200, 200]);
    for (let i = 0; i < 6; i++) expect((await request(base, '/user/ann/api')).status).toBe(200);
    expect((await request(base, '/hub/api/')).status).toBe(200);
  });

  it('drops no user while an instance is down, and re-syncs it when it is back', async () => {
    await instances[1]!.running!.close();
    instances[1]!.running = null;
    // Through the shared address every request still lands, on the instance that is left.
    for (let i = 0; i < 6; i++) expect((await request(base, '/user/ann/api')).status).toBe(200);
    // A server started meanwhile gets its route on the live instance.
    expect((await api(base, API_TOKEN, 'POST', '/users/ben/server')).status).toBe(201);
    expect((await fetch(`http://127.0.0.1:${instances[0]!.port}/user/ben/api`)).status).toBe(200);

    // Back with an empty table, like a restarted replica: the hub's check re-syncs it, ben's route included.
    await startInstance(instances[1]!);
    expect(await eventually(async () => ((await reachable('ben'))[1] === 200 ? true : null), 15_000)).toBe(true);
    expect(await reachable('ann')).toEqual([200, 200]);
    expect((await fetch(`http://127.0.0.1:${instances[1]!.port}/hub/api/`)).status).toBe(200);
  });

  it('refuses PATCH /proxy with 409: which of several instances it would replace is ambiguous', async () => {
    const res = await api(base, API_TOKEN, 'PATCH', '/proxy', { api_url: `http://127.0.0.1:${instances[0]!.apiPort}`, auth_token: PROXY_TOKEN });
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ status: 409, message: expect.stringContaining('proxy.api_urls') });
    expect((await api(base, API_TOKEN, 'POST', '/users/cy/server')).status).toBe(201);
    expect(await reachable('cy')).toEqual([200, 200]);
  });

  it('removes routes from both instances', async () => {
    expect((await api(base, API_TOKEN, 'DELETE', '/users/ann/server')).status).toBe(204);
    for (const instance of instances) expect(instance.running!.routes.get('/user/ann')).toBeUndefined();
    expect(instances.every((i) => i.running!.routes.get('/user/ben') !== undefined)).toBe(true);
  });
});
