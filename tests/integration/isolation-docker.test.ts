import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../hub/config/schema.js';
import { CREDENTIALS_FILE } from '../../hub/credentials/service.js';
import { CONTAINER_SECRETS_DIR, parseDockerState } from '../../spawners/docker.js';
import { api, HubProcess } from '../helpers/hub.js';
import { bridgeGateway, execIn } from '../helpers/containers.js';
import { ferretdbAvailable } from '../helpers/ferretdb.js';
import { requireService } from '../helpers/jupyter.js';
import { mosquittoUnavailableReason } from '../helpers/mosquitto.js';
import { postgresUnavailableReason } from '../helpers/postgres.js';
import {
  ACTORS, B, bUnchanged, isolationRolesEnv, matrixRows, prepareWorld, rowLabel, startLeaseServices,
  type Credentials, type LeaseServices, type ServerSecrets, type World,
} from '../helpers/isolation.js';

/**
 * The isolation matrix on the Docker spawner: a real hub, containers of the notebook image (jupyterhub-singleuser)
 * for B and for A, leases at real Mosquitto, PostgreSQL (SCRAM) and FerretDB. A's lease is read inside A's
 * container and used from the host, where the services listen.
 */
const IMAGE = configSchema.parse({}).spawner.docker.image;
const docker = new Docker();
const engineUp = await docker.ping().then(() => true, () => false);
const available = requireService('Docker engine', engineUp)
  && requireService(`Docker image ${IMAGE}`, await docker.getImage(IMAGE).inspect().then(() => true, () => false))
  && requireService('mosquitto with dynamic security', mosquittoUnavailableReason() === null)
  && requireService('postgres', postgresUnavailableReason() === null)
  && requireService('FerretDB', ferretdbAvailable());

async function containerOf(hub: HubProcess, admin: string, user: string): Promise<string> {
  const model = (await api(hub.url, admin, 'GET', `/users/${user}`)).body as { servers: Record<string, { state: unknown }> };
  const state = parseDockerState(model.servers['']?.state as never);
  if (!state) throw new Error(`${user}'s server has no container: ${JSON.stringify(model.servers)}`);
  return state.containerId;
}

async function volumesOf(hub: HubProcess, admin: string, user: string): Promise<string[]> {
  const info = await docker.getContainer(await containerOf(hub, admin, user)).inspect();
  return info.Mounts.filter((m) => m.Type === 'volume').map((m) => m.Name!);
}

/** What a server's container holds, read inside it as its own user. */
async function containerSecrets(hub: HubProcess, admin: string, user: string): Promise<ServerSecrets> {
  const id = await containerOf(hub, admin, user);
  const token = await execIn(id, ['printenv', 'JUPYTERHUB_API_TOKEN']);
  const file = await execIn(id, ['cat', `${CONTAINER_SECRETS_DIR}/${CREDENTIALS_FILE}`]);
  expect(token.exitCode, token.output).toBe(0);
  expect(file.exitCode, file.output).toBe(0);
  return { apiToken: token.output, credentials: JSON.parse(file.output) as Credentials };
}

describe.skipIf(!available)('isolation matrix: Docker spawner', () => {
  const hubId = `iso-${randomBytes(3).toString('hex')}`;
  const homeMount = configSchema.parse({}).spawner.docker.home_mount_path;
  const rows = matrixRows({ servers: true, leases: true, volumes: true });
  let services: LeaseServices;
  let hub: HubProcess;
  let world: World;

  beforeAll(async () => {
    services = await startLeaseServices();
    hub = new HubProcess({
      env: {
        LABHUB_SPAWNER__KIND: 'docker',
        LABHUB_SPAWNER__DOCKER__IMAGE: IMAGE,
        LABHUB_SPAWNER__DOCKER__PULL_POLICY: 'never',
        LABHUB_SPAWNER__DOCKER__HUB_ID: hubId,
        LABHUB_SPAWNER__DOCKER__MEM_LIMIT: '1g',
        // Containers reach the hub on the bridge gateway, so the hub listens there.
        LABHUB_HUB__IP: await bridgeGateway(),
        ...isolationRolesEnv(),
        ...services.hubEnv,
      },
    });
    await hub.start();
    world = await prepareWorld(hub, services, {
      secretsOf: containerSecrets,
      mountsOf: volumesOf,
      homeVolumeOf: async (h, admin, user) => {
        const info = await docker.getContainer(await containerOf(h, admin, user)).inspect();
        const home = info.Mounts.find((m) => m.Destination === homeMount && m.Type === 'volume');
        if (!home?.Name) throw new Error(`${user}'s container mounts no home volume at ${homeMount}`);
        return home.Name;
      },
    });
  }, 300_000);

  afterAll(async () => {
    await hub?.cleanup();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${hubId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    for (const v of (await docker.listVolumes()).Volumes ?? []) {
      if (v.Labels?.['org.labhub.hub'] === hubId) await docker.getVolume(v.Name).remove().catch(() => undefined);
    }
    await services?.stop();
  });

  it.each(rows.map((r) => [rowLabel(r), r] as const))('%s', async (_label, row) => {
    const outcome = await row.run(world);
    expect(outcome.held, `${rowLabel(row)}: ${outcome.detail}`).toBe(true);
  });

  it('gives A and B containers that each mount only their own home volume', async () => {
    const [a, b] = [await volumesOf(hub, world.admin, ACTORS['plain user']), await volumesOf(hub, world.admin, B)];
    expect(b).toEqual([world.bHomeVolume]);
    expect(a).toHaveLength(1);
    expect(a).not.toContain(world.bHomeVolume);
  });

  it('leaves B as B was: account, groups, server, token', async () => {
    expect(await bUnchanged(world, true)).toEqual([]);
  });
});
