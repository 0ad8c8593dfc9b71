import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../hub/config/schema.js';
import { CREDENTIALS_FILE } from '../../hub/credentials/service.js';
import { CONTAINER_SECRETS_DIR, parseDockerState } from '../../spawners/docker.js';
import { api, type HubProcess } from '../helpers/hub.js';
import { dockerSpawnerEnv, execIn } from '../helpers/containers.js';
import { ferretdbAvailable } from '../helpers/ferretdb.js';
import { requireService } from '../helpers/jupyter.js';
import { mosquittoUnavailableReason } from '../helpers/mosquitto.js';
import { postgresUnavailableReason } from '../helpers/postgres.js';
import { ACTORS, B, registerMatrix, type Credentials, type ServerSecrets } from '../helpers/isolation.js';

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

  afterAll(async () => {
    for (const c of await docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${hubId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    for (const v of (await docker.listVolumes()).Volumes ?? []) {
      if (v.Labels?.['org.labhub.hub'] === hubId) await docker.getVolume(v.Name).remove().catch(() => undefined);
    }
  });

  const world = registerMatrix({ servers: true, leases: true, volumes: true }, async () => ({
    env: await dockerSpawnerEnv(hubId, IMAGE),
    access: {
      secretsOf: containerSecrets,
      mountsOf: volumesOf,
      homeVolumeOf: async (hub, admin, user) => {
        const info = await docker.getContainer(await containerOf(hub, admin, user)).inspect();
        const home = info.Mounts.find((m) => m.Destination === homeMount && m.Type === 'volume');
        if (!home?.Name) throw new Error(`${user}'s container mounts no home volume at ${homeMount}`);
        return home.Name;
      },
    },
  }));

  it('gives A and B containers that each mount only their own home volume', async () => {
    const { hub, admin, bHomeVolume } = world();
    const [a, b] = [await volumesOf(hub, admin, ACTORS['plain user']), await volumesOf(hub, admin, B)];
    expect(b).toEqual([bHomeVolume]);
    expect(a).toHaveLength(1);
    expect(a).not.toContain(bHomeVolume);
  });
});
