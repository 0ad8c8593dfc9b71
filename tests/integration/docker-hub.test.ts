import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { dockerSpawnerEnv, removeHubObjects } from '../helpers/containers.js';

/**
 * The Docker spawner as a deployment uses it: `labhub start` with `spawner.kind: docker` from config, a real engine,
 * the notebook-debian image. Crash recovery: kill -9 of the hub with a container running, and an orphan container
 * created behind the hub's back, removed at the next start.
 */
const IMAGE = 'labhub/notebook-debian:latest';
const docker = new Docker();
const engineUp = await docker.ping().then(() => true, () => false);
const ready = requireService('Docker engine', engineUp)
  && requireService(`Docker image ${IMAGE}`, await docker.getImage(IMAGE).inspect().then(() => true, () => false));

describe.skipIf(!ready)('labhub start with the Docker spawner', () => {
  const hubId = `test-${randomBytes(4).toString('hex')}`;
  let hub: HubProcess;
  let token = '';

  beforeAll(async () => {
    hub = new HubProcess({
      env: {
        ...(await dockerSpawnerEnv(hubId, IMAGE)), LABHUB_AUTHENTICATOR__KIND: 'dummy',
        LABHUB_SPAWNER__DOCKER__MEM_LIMIT: '512m', LABHUB_SPAWNER__DOCKER__CPU_LIMIT: '0.5', LABHUB_USAGE__SAMPLE_INTERVAL: '1',
      },
    });
    await hub.start();
    expect((await hub.cli(['users', 'add', 'admin', '--admin'])).status).toBe(0);
    token = (await hub.cli(['token', 'admin'])).stdout.trim();
    expect((await api(hub.url, token, 'POST', '/users', { usernames: ['dora'] })).status).toBe(201);
  });

  afterAll(async () => {
    await api(hub.url, token, 'DELETE', '/users/dora/server').catch(() => undefined);
    await hub.cleanup();
    await removeHubObjects(hubId);
  });

  it('starts a container from config, reachable through the proxy', async () => {
    const started = await api(hub.url, token, 'POST', '/users/dora/server');
    expect([201, 202], JSON.stringify(started.body)).toContain(started.status);
    await eventually(async () => ((await api(hub.url, token, 'GET', '/users/dora')).body as { servers: Record<string, { ready: boolean }> }).servers['']?.ready, 60_000);
    const res = await fetch(`${hub.url}/user/dora/api`);
    expect(res.status).toBe(200);
    expect(await res.json()).toHaveProperty('version');
  });

  it('accounts what the container reserved and measures what it uses and its home', async () => {
    type Usage = {
      running: Array<{ requested: { cpu: number; memory_bytes: number }; measured: { cpu_seconds: number; memory_bytes: number; memory_peak_bytes: number } | null }>;
      home_storage: { bytes: number } | null;
    };
    const usage = async () => (await api(hub.url, token, 'GET', '/users/dora/usage')).body as Usage;
    const measured = await eventually(async () => {
      const u = await usage();
      return u.running[0]?.measured?.memory_bytes && u.home_storage ? u : null;
    }, 30_000);
    expect(measured.running[0]!.requested).toEqual({ cpu: 0.5, memory_bytes: 512 * 2 ** 20, gpus: 0 });
    const m = measured.running[0]!.measured!;
    expect(m.cpu_seconds).toBeGreaterThan(0);
    expect(m.memory_bytes).toBeGreaterThan(1024 * 1024);
    expect(m.memory_bytes).toBeLessThanOrEqual(512 * 2 ** 20);
    expect(m.memory_peak_bytes).toBeGreaterThanOrEqual(m.memory_bytes);
    // The home volume holds at least what the image's entrypoint wrote there; the engine counts it in bytes.
    expect(measured.home_storage!.bytes).toBeGreaterThanOrEqual(0);
    const metrics = await (await fetch(`${hub.url}/hub/metrics`, { headers: { authorization: `token ${token}` } })).text();
    expect(Number(/^labhub_usage_server_seconds_total\{class=""\} (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^labhub_usage_memory_used_gib_seconds_total\{class=""\} \d/m);
    expect(metrics).toMatch(/^labhub_home_storage_bytes \d/m);
  });

  it('refuses an image that is not allowed with 400 before creating anything', async () => {
    expect((await api(hub.url, token, 'POST', '/users', { usernames: ['eve'] })).status).toBe(201);
    const res = await api(hub.url, token, 'POST', '/users/eve/server', { image: 'evil/image:latest' });
    expect(res.status).toBe(400);
    expect((res.body as { message: string }).message).toMatch(/not allowed/);
  });

  it('survives kill -9 of the hub and removes an orphan container at the next start', async () => {
    hub.kill9();
    const orphan = await docker.createContainer({
      Image: IMAGE, name: `labhub-orphan-${hubId}`, Cmd: ['sleep', '600'],
      Labels: { 'org.labhub.hub': hubId, 'org.labhub.user': 'ghost', 'org.labhub.server': '' },
    });
    await hub.start();
    await eventually(async () => !(await docker.listContainers({ all: true })).some((c) => c.Id === orphan.id), 15_000);
    const user = await api(hub.url, token, 'GET', '/users/dora');
    expect((user.body as { servers: Record<string, { ready: boolean }> }).servers['']?.ready).toBe(true);
    // The run goes on through the restart: one run, still open.
    expect(((await api(hub.url, token, 'GET', '/users/dora/usage')).body as { running: unknown[] }).running).toHaveLength(1);
    expect((await fetch(`${hub.url}/user/dora/api`)).status).toBe(200);
  });

  it('stops the server and removes its container, keeping the home volume', async () => {
    expect((await api(hub.url, token, 'DELETE', '/users/dora/server')).status).toBe(204);
    const left = await docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${hubId}`] } });
    expect(left).toEqual([]);
    // The home volume is named from dora's account id and labelled with her name.
    const volumes = (await docker.listVolumes({ filters: { label: [`org.labhub.hub=${hubId}`, 'org.labhub.user=dora'] } })).Volumes ?? [];
    expect(volumes).toHaveLength(1);
  });
});
