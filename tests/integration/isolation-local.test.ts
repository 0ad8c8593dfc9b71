import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'vitest';
import { configSchema } from '../../hub/config/schema.js';
import { CREDENTIALS_FILE } from '../../hub/credentials/service.js';
import { homeVolumeName } from '../../spawners/docker.js';
import { accountOf } from '../helpers/accounts.js';
import { api, type HubProcess } from '../helpers/hub.js';
import { ferretdbAvailable } from '../helpers/ferretdb.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';
import { mosquittoUnavailableReason } from '../helpers/mosquitto.js';
import { postgresUnavailableReason } from '../helpers/postgres.js';
import { registerMatrix, type Credentials, type ServerSecrets } from '../helpers/isolation.js';

/**
 * The isolation matrix on the local spawner: a real hub, real jupyterhub-singleuser 5.x servers, leases at real
 * Mosquitto, PostgreSQL (SCRAM) and FerretDB.
 */
const singleuser = findSingleuser(5);
const available = requireService('jupyterhub-singleuser 5.x', singleuser !== null)
  && requireService('mosquitto with dynamic security', mosquittoUnavailableReason() === null)
  && requireService('postgres', postgresUnavailableReason() === null)
  && requireService('FerretDB', ferretdbAvailable());

/** A local server's secrets, as that server's own process holds them. */
async function localSecrets(hub: HubProcess, admin: string, user: string): Promise<ServerSecrets> {
  const model = (await api(hub.url, admin, 'GET', `/users/${user}`)).body as { servers: Record<string, { state: { pid: number } }> };
  const environ = new Map(readFileSync(`/proc/${model.servers['']!.state.pid}/environ`, 'utf8').split('\0').map((kv) => {
    const eq = kv.indexOf('=');
    return [kv.slice(0, eq), kv.slice(eq + 1)] as const;
  }));
  const credentials = JSON.parse(readFileSync(join(environ.get('LABHUB_SECRETS_DIR')!, CREDENTIALS_FILE), 'utf8')) as Credentials;
  return { apiToken: environ.get('JUPYTERHUB_API_TOKEN')!, credentials };
}

describe.skipIf(!available)('isolation matrix: local spawner', () => {
  registerMatrix({ servers: true, leases: true, volumes: false }, async () => ({
    env: {
      LABHUB_SPAWNER__CMD: JSON.stringify([singleuser]),
      // The test runs as root without system accounts for these users: servers run as the hub's user.
      LABHUB_SPAWNER__ALLOW_ROOT: 'true',
    },
    access: {
      secretsOf: localSecrets,
      // The local spawner mounts no volumes; a class naming B's Docker home volume is the same attempt on any hub.
      homeVolumeOf: async (hub, _admin, user) => homeVolumeName(configSchema.parse({}).spawner.docker.hub_id, accountOf(hub, user)),
    },
  }));
});
