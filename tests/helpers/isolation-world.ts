/**
 * The world of the isolation matrix (tests/helpers/isolation.ts): users A (in four roles) and B, B's class, groups,
 * servers, token, kernel and leases on a real hub, and the real services the leases are issued at.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { expect } from 'vitest';
import { identifierSlug } from '../../hub/credentials/names.js';
import { serverPrefix } from '../../hub/servers/naming.js';
import { api, Browser, eventually, HubProcess } from './hub.js';
import { startFerretDb, type FerretDbServer } from './ferretdb.js';
import { startMongoGate, type GateProcess } from './mongo-gate.js';
import { startMosquitto, type MosquittoBroker } from './mosquitto.js';
import { startPostgres, type PostgresCluster } from './postgres.js';


/** The target. */
export const B = 'bea';
/** A class B is in (taught by the teacher of B's class), a class B is not in, a group B is in that no actor manages. */
export const CLASS_OF_B = 'bio101';
export const OTHER_CLASS = 'chem201';
export const GROUP_OF_B = 'lab-bea';
/** The group the config's sharing role is given to (the role makes it); B and every actor are in it. */
const SHARERS = 'sharers';
/** B's named server, started once and stopped, so it exists. */
export const B_NAMED = 'lab2';
export const PASSWORD = 'isolation-password-1';
/** Issue 16 item 4: a dotted name, and the name the product's identifier slug makes of it (itself a legal username). */
export const DOTTED = `${B}.smith`;
export const SLUG_NAMED = identifierSlug(DOTTED);
/** Issue 16 item 6: a user named `<B>-<B's named server>`, whose default server's OAuth client id is that server's. */
export const CLIENT_NAMED = `${B}-${B_NAMED}`;

export const ACTORS = {
  'plain user': 'ann',
  'teacher of B\'s class': 'tia',
  'teacher of another class': 'tom',
  'admin:users holder': 'hal',
} as const;
export type ActorRole = keyof typeof ACTORS;
export const ROLES = Object.keys(ACTORS) as ActorRole[];

/**
 * The actors' powers, from config: a teacher holds `groups!group=<class>` (what a class manager's token carried in
 * the audit), `read:audit!group=<class>` and `read:usage!group=<class>` (their class's audit records and usage) and
 * `admin:quotas!group=<class>` (a filtered quota power, which must not work), the helpdesk account `admin:users`;
 * everyone may share their own servers.
 */
export function isolationRolesEnv(): Record<string, string> {
  return {
    LABHUB_ROLES: JSON.stringify([
      {
        name: 'teacher-bio101', users: [ACTORS['teacher of B\'s class']],
        scopes: [`groups!group=${CLASS_OF_B}`, `read:audit!group=${CLASS_OF_B}`, `read:usage!group=${CLASS_OF_B}`, `admin:quotas!group=${CLASS_OF_B}`],
      },
      {
        name: 'teacher-chem201', users: [ACTORS['teacher of another class']],
        scopes: [`groups!group=${OTHER_CLASS}`, `read:audit!group=${OTHER_CLASS}`, `read:usage!group=${OTHER_CLASS}`, `admin:quotas!group=${OTHER_CLASS}`],
      },
      { name: 'helpdesk', scopes: ['admin:users'], users: [ACTORS['admin:users holder']] },
      // Everyone may share their own servers, as a lab that turns sharing on would allow: the power under test.
      { name: 'sharers', scopes: ['shares!user'], groups: [SHARERS] },
    ]),
    LABHUB_ALLOW_NAMED_SERVERS: 'true',
  };
}

export interface Credentials {
  mongodb: { url: string; username: string; password: string; database: string };
  mqtt: { url: string; username: string; password: string; subscribe: string[]; publish: string[] };
  postgres: { url: string; username: string; password: string; schema: string };
}

/** What a running server holds: its hub API token (its OAuth client secret) and its leased credentials. */
export interface ServerSecrets {
  apiToken: string;
  credentials?: Credentials;
}

export interface World {
  hub: HubProcess;
  admin: string;
  tokens: Record<string, string>;
  browsers: Record<string, Browser>;
  /** B's own API token and its id. */
  bToken: { token: string; id: string };
  /** Name B's home storage has on this spawner (Docker volume, PVC), from the product. */
  bHomeVolume: string;
  /** An invitation link the admin made for B before B's password was set (which should have ended it). */
  bStaleInvitation: string;
  /** Present when servers run (proxy, OAuth and lease rows). */
  servers?: {
    bKernel: string;
    bSecrets: ServerSecrets;
    /** A's own running server (the plain user's). */
    aSecrets: ServerSecrets;
  };
  services?: LeaseServices;
  /** What a user's running default server holds, read where the spawner puts it. */
  secretsOf?: (user: string) => Promise<ServerSecrets>;
  /** Volumes (Docker) or claims (Kubernetes) a user's running default server mounts; absent for the local spawner. */
  mountsOf?: (user: string) => Promise<string[]>;
}

/** A user's token for the hub API, and a browser logged in as them. */
async function setUpUsers(hub: HubProcess): Promise<Pick<World, 'admin' | 'tokens' | 'browsers' | 'bStaleInvitation'>> {
  const add = async (args: string[]) => {
    const res = await hub.cli(args, `${PASSWORD}\n`);
    if (res.status !== 0) throw new Error(`labhub ${args.join(' ')}: ${res.stderr}`);
  };
  await add(['users', 'add', 'admin', '--admin', '--password-stdin']);
  for (const name of [B, ACTORS['plain user'], 'cy', DOTTED, SLUG_NAMED, CLIENT_NAMED]) await add(['users', 'add', name, '--password-stdin']);
  // The config roles made the teachers and the helpdesk account; they get passwords to log in.
  for (const role of ROLES.slice(1)) await add(['users', 'passwd', ACTORS[role], '--password-stdin']);
  const admin = (await hub.cli(['token', 'admin'])).stdout.trim();
  const invitation = new URL(((await must(api(hub.url, admin, 'POST', `/users/${B}/invitation`), 201)).body as { url: string }).url);
  await add(['users', 'passwd', B, '--password-stdin']);
  const tokens: Record<string, string> = {};
  const browsers: Record<string, Browser> = {};
  for (const name of [B, ...ROLES.map((r) => ACTORS[r])]) {
    tokens[name] = (await hub.cli(['token', name])).stdout.trim();
    browsers[name] = new Browser(hub.url);
    const home = await browsers[name].login(name, PASSWORD);
    if (home.status !== 200) throw new Error(`${name} could not log in: ${home.status}`);
  }
  for (const [group, users] of [[CLASS_OF_B, [B]], [OTHER_CLASS, ['cy']], [GROUP_OF_B, [B]]] as const) {
    await must(api(hub.url, admin, 'POST', `/groups/${group}`, { users }), 201);
  }
  await must(api(hub.url, admin, 'POST', `/groups/${SHARERS}/users`, { users: [B, ...ROLES.map((r) => ACTORS[r])] }), 200);
  return { admin, tokens, browsers, bStaleInvitation: invitation.pathname + invitation.search };
}

/** B's own token, made by B. */
async function bOwnToken(hub: HubProcess, tokens: Record<string, string>): Promise<World['bToken']> {
  const made = await must(api(hub.url, tokens[B]!, 'POST', `/users/${B}/tokens`, { note: 'B\'s own' }), 201);
  const body = made.body as { token: string; id: string };
  return { token: body.token, id: body.id };
}

/** A kernel in B's running server, started by B with B's token. */
async function bKernel(hub: HubProcess, bToken: string): Promise<string> {
  const res = await fetch(`${hub.url}${serverPrefix(B, '')}api/kernels`, {
    method: 'POST', headers: { authorization: `token ${bToken}`, 'content-type': 'application/json' }, body: '{}',
  });
  if (res.status !== 201) throw new Error(`B could not start a kernel: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

async function must(p: Promise<Awaited<ReturnType<typeof api>>>, status: number): Promise<Awaited<ReturnType<typeof api>>> {
  const res = await p;
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  return res;
}

export async function startAndWait(hub: HubProcess, admin: string, user: string, server = ''): Promise<void> {
  const path = server ? `/users/${user}/servers/${server}` : `/users/${user}/server`;
  const res = await api(hub.url, admin, 'POST', path);
  expect([201, 202], JSON.stringify(res.body)).toContain(res.status);
  await eventually(async () => ((await api(hub.url, admin, 'GET', `/users/${user}`)).body as { servers: Record<string, { ready: boolean }> }).servers[server]?.ready, 90_000);
}

export interface SpawnerAccess {
  /** What user's running default server holds, read where that spawner puts it. */
  secretsOf(hub: HubProcess, admin: string, user: string): Promise<ServerSecrets>;
  /** The name of B's home storage, from what the spawner made for B's running server. */
  homeVolumeOf(hub: HubProcess, admin: string, user: string): Promise<string>;
  mountsOf?(hub: HubProcess, admin: string, user: string): Promise<string[]>;
}

/**
 * Everything the matrix needs on a started hub: the users and groups, B's named server (started and stopped, so it
 * exists), B's and A's running servers with their leases, B's data in B's lease, B's token and a kernel of B's.
 */
export async function prepareWorld(hub: HubProcess, services: LeaseServices, access: SpawnerAccess): Promise<World> {
  const users = await setUpUsers(hub);
  const a = ACTORS['plain user'];
  // B's named server runs too: item 6's row needs B logged in to it.
  await Promise.all([B, a, DOTTED, SLUG_NAMED].map((user) => startAndWait(hub, users.admin, user)));
  await startAndWait(hub, users.admin, B, B_NAMED);
  const [bSecrets, aSecrets] = [await access.secretsOf(hub, users.admin, B), await access.secretsOf(hub, users.admin, a)];
  // A's lease is the one the hub lists for A's server.
  const listed = (await api(hub.url, users.admin, 'GET', `/users/${a}/credentials`)).body as Array<{ account: string }>;
  expect(listed.map((l) => l.account).sort()).toEqual(Object.values(aSecrets.credentials!).map((c) => c.username).sort());
  await bUsesItsLease(bSecrets.credentials!);
  await bUsesItsLease((await access.secretsOf(hub, users.admin, DOTTED)).credentials!);
  const bToken = await bOwnToken(hub, users.tokens);
  return {
    hub, ...users, bToken,
    bHomeVolume: await access.homeVolumeOf(hub, users.admin, B),
    servers: { bKernel: await bKernel(hub, bToken.token), bSecrets, aSecrets },
    services,
    secretsOf: (user) => access.secretsOf(hub, users.admin, user),
    ...(access.mountsOf ? { mountsOf: (user: string) => access.mountsOf!(hub, users.admin, user) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The real services leases are issued at: Mosquitto with dynamic security, PostgreSQL with SCRAM, and FerretDB
// 1.24 (TEST-ENV.md: no MongoDB server installs here) behind LabHub's mongo-gate, since FerretDB authorizes nothing.

export interface LeaseServices {
  broker: MosquittoBroker;
  cluster: PostgresCluster;
  ferret: FerretDbServer;
  gate: GateProcess;
  admin: pg.Client;
  /** Hub environment that makes every service required. */
  hubEnv: Record<string, string>;
  stop(): Promise<void>;
}

export async function startLeaseServices(): Promise<LeaseServices> {
  const [broker, cluster, ferret] = await Promise.all([startMosquitto(), startPostgres({ database: 'lab' }), startFerretDb()]);
  // The run's shared clusters trust every login, which would let A log in as anyone: passwords are checked here.
  writeFileSync(join(cluster.dir, 'data/pg_hba.conf'), [
    'local all all trust', 'host all postgres 127.0.0.1/32 trust', 'host all all 127.0.0.1/32 scram-sha-256', '',
  ].join('\n'));
  const gate = await startMongoGate(ferret.adminUrl);
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  await admin.query('select pg_reload_conf()');
  await admin.query('create schema shared');
  return {
    broker, cluster, ferret, gate, admin,
    hubEnv: {
      LABHUB_CREDENTIALS__MQTT__ADMIN_URL: broker.adminUrl, LABHUB_CREDENTIALS__MQTT__REQUIRED: 'true',
      LABHUB_CREDENTIALS__POSTGRES__ADMIN_URL: cluster.url, LABHUB_CREDENTIALS__POSTGRES__REQUIRED: 'true',
      LABHUB_CREDENTIALS__MONGODB__ADMIN_URL: ferret.adminUrl, LABHUB_CREDENTIALS__MONGODB__REQUIRED: 'true',
      LABHUB_CREDENTIALS__MONGODB__AUTHORIZATION: 'gate', LABHUB_CREDENTIALS__MONGODB__CONNECT_URL: gate.url,
    },
    async stop() {
      await admin.end().catch(() => undefined);
      await gate.stop();
      await Promise.all([broker.stop(), cluster.stop(), ferret.stop()]);
    },
  };
}

/** B uses B's own lease: a table in B's schema, a document in B's database, a subscriber on B's topics. */
async function bUsesItsLease(c: Credentials): Promise<void> {
  const client = new pg.Client({ connectionString: c.postgres.url });
  await client.connect();
  await client.query(`create table ${c.postgres.schema}.notes (text text); insert into ${c.postgres.schema}.notes values ('B''s note')`);
  await client.end();
  const mongo = new MongoClient(c.mongodb.url, { serverSelectionTimeoutMS: 5000 });
  await mongo.db(c.mongodb.database).collection('notes').insertOne({ text: 'B\'s note' });
  await mongo.close();
}

/**
 * After the matrix: B's account, server, token and groups are as they were. A refused attempt that still changed
 * something shows up here.
 */
export async function bUnchanged(w: World, serverRunning: boolean): Promise<string[]> {
  const problems: string[] = [];
  const model = await api(w.hub.url, w.admin, 'GET', `/users/${B}`);
  const user = model.body as { admin: boolean; groups: string[]; servers: Record<string, { ready: boolean }> };
  if (model.status !== 200) return [`B is gone: ${model.status}`];
  if (user.admin) problems.push('B became an admin');
  if ([...user.groups].sort().join() !== [CLASS_OF_B, GROUP_OF_B, SHARERS].sort().join()) problems.push(`B's groups changed: ${user.groups.join()}`);
  const shares = await api(w.hub.url, w.admin, 'GET', `/shares/${B}`);
  if ((shares.body as { items?: unknown[] }).items?.length !== 0) problems.push(`B's servers are shared: ${JSON.stringify(shares.body).slice(0, 200)}`);
  if (serverRunning && !user.servers['']?.ready) problems.push('B\'s server is no longer running');
  if (user.servers.mine) problems.push('a named server was created for B');
  const tokens = await api(w.hub.url, w.admin, 'GET', `/users/${B}/tokens`);
  if (!(tokens.body as { api_tokens: Array<{ id: string }> }).api_tokens.some((t) => t.id === w.bToken.id)) problems.push('B\'s token was deleted');
  if (serverRunning && (await fetch(`${w.hub.url}${serverPrefix(B, '')}api/status`, { headers: { authorization: `token ${w.bToken.token}` } })).status !== 200) {
    problems.push('B can no longer use B\'s server');
  }
  return problems;
}

