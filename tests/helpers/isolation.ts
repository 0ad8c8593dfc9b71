/**
 * The cross-user isolation matrix (issue 16): users A and B, A in four roles, every way A could reach B's resources
 * (REST API, pages, proxy, OAuth flow, leased credentials, class properties), written as data so a failure names
 * its row. Each tests/integration/isolation-<spawner>.test.ts calls `registerMatrix` with one spawner kind: the world
 * (users, servers, leases) is in isolation-world.ts, the rows in isolation-rows.ts.
 *
 * Every row is an attempt by A that must be refused: an API answer in 400–499 with JupyterHub's `{status, message}`,
 * a page in 400–499 (or a redirect to the login), a notebook server that sends A to the hub's login or refuses, a
 * broker that refuses. A few cells are powers a role holds by design (an `admin:users` holder reads B's model);
 * those are `permitted` rows, which must answer 2xx and show none of B's secrets.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HubProcess } from './hub.js';
import { matrixRows, rowLabel, type MatrixOptions } from './isolation-rows.js';
import {
  bUnchanged, isolationRolesEnv, prepareWorld, startLeaseServices, type LeaseServices, type SpawnerAccess, type World,
} from './isolation-world.js';

export { ACTORS, B, type Credentials, type ServerSecrets } from './isolation-world.js';

/**
 * Registers the matrix in the calling describe: the lease services, a hub with the spawner environment `prepare`
 * gives (started in beforeAll, with the actors' roles), the world, one test per row, then the check that B is as it
 * was. Returns the world for the file's own spawner-level tests.
 */
export function registerMatrix(
  options: MatrixOptions,
  prepare: () => Promise<{ env: Record<string, string>; access: SpawnerAccess }>,
): () => World {
  let services: LeaseServices | undefined;
  let hub: HubProcess | undefined;
  let world: World | undefined;
  beforeAll(async () => {
    services = await startLeaseServices();
    const { env, access } = await prepare();
    hub = new HubProcess({ env: { ...env, ...isolationRolesEnv(), ...services.hubEnv } });
    await hub.start();
    world = await prepareWorld(hub, services, access);
  }, 300_000);
  afterAll(async () => {
    await hub?.cleanup();
    await services?.stop();
  });

  it.each(matrixRows(options).map((r) => [rowLabel(r), r] as const))('%s', async (_label, row) => {
    const outcome = await row.run(world!);
    expect(outcome.held, `${rowLabel(row)}: ${outcome.detail}`).toBe(true);
  });

  it('leaves B as B was: account, groups, server, token', async () => {
    expect(await bUnchanged(world!, true)).toEqual([]);
  });
  return () => world!;
}
