import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { connectAsync, type MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynsecClient } from '../../hub/credentials/dynsec-client.js';
import { userDataNames } from '../../hub/credentials/names.js';
import { accountOf } from '../helpers/accounts.js';
import { api, Browser, eventually, HubProcess, REPO } from '../helpers/hub.js';
import { asRendered } from '../helpers/pages.js';
import { UNISOLATED_MONGODB_WARNING } from '../../hub/credentials/mongodb-warning.js';
import { freePort } from '../helpers/ports.js';
import { requireService } from '../helpers/jupyter.js';
import { MongoClient } from 'mongodb';
import { ferretdbAvailable, startFerretDb, type FerretDbServer } from '../helpers/ferretdb.js';
import { mosquittoUnavailableReason, startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { postgresUnavailableReason, startPostgres, type PostgresCluster } from '../helpers/postgres.js';

/**
 * Credential brokers end to end: a real hub (local spawner, a few-line Python server), real Mosquitto with the
 * dynamic-security plugin and a real PostgreSQL 15. The run's shared cluster trusts every login, which would hide
 * whether a password works: this file starts its own cluster and requires SCRAM passwords of every role but postgres.
 */
const TINY = resolve(REPO, 'tests/fixtures/tiny-singleuser.py');
const available = requireService('mosquitto with dynamic security', mosquittoUnavailableReason() === null)
  && requireService('postgres', postgresUnavailableReason() === null);

const NOTEBOOK_IMAGE = 'labhub/notebook-debian:latest';
function imagePresent(): boolean {
  try {
    execFileSync('docker', ['image', 'inspect', NOTEBOOK_IMAGE], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a Python script in the notebook image with host networking (the test's services listen on the host's
 * 127.0.0.1); resolves with its stdout.
 */
function runInNotebookImage(dockerArgs: string[], script: string): Promise<string> {
  return new Promise<string>((resolvePromise, reject) => {
    execFile('docker', ['run', '--rm', '--network', 'host', ...dockerArgs, NOTEBOOK_IMAGE, 'python3', '-c', script], { timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolvePromise(stdout)));
  });
}

interface Credentials {
  mongodb: { url: string; username: string; password: string; database: string };
  mqtt: { url: string; username: string; password: string; subscribe: string[]; publish: string[] };
  postgres: { url: string; username: string; password: string; schema: string };
}

interface Lease { id: number; service: string; account: string; status: string; server_name: string; user: string }

let broker: MosquittoBroker;
let cluster: PostgresCluster;
let admin: pg.Client;
let sensorApp: MqttClient;

async function adminSql(text: string, values: unknown[] = []) {
  return admin.query(text, values);
}

beforeAll(async () => {
  if (!available) return;
  [broker, cluster] = await Promise.all([startMosquitto(), startPostgres({ database: 'lab' })]);
  writeFileSync(join(cluster.dir, 'data/pg_hba.conf'), [
    'local all all trust', 'host all postgres 127.0.0.1/32 trust', 'host all all 127.0.0.1/32 scram-sha-256', '',
  ].join('\n'));
  admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  await adminSql('select pg_reload_conf()');
  await adminSql('create schema shared; create table shared.readings (sensor text, value real); insert into shared.readings values ($$x$$, 21.5)');
  // The lab's sensor gateway: an account that may publish sensor readings, made with the admin's own commands.
  const dynsec = new DynsecClient({ url: broker.url, ...broker.admin, timeoutMs: 5000 });
  const created = await dynsec.send([
    { command: 'createRole', rolename: 'sensor-writer', acls: [{ acltype: 'publishClientSend', topic: 'sensors/#', priority: 0, allow: true }] },
    { command: 'createClient', username: 'sensor-app', password: 'sensor-pw', roles: [{ rolename: 'sensor-writer' }] },
  ]);
  expect(created.filter((r) => r.error)).toEqual([]);
  await dynsec.close();
  sensorApp = await connectAsync(broker.url, { username: 'sensor-app', password: 'sensor-pw', reconnectPeriod: 0, protocolVersion: 5 });
});

afterAll(async () => {
  await sensorApp?.endAsync(true);
  await admin?.end();
  await Promise.all([broker?.stop(), cluster?.stop()]);
});

function credentialHub(extra: Record<string, string> = {}): HubProcess {
  return new HubProcess({
    env: {
      LABHUB_SPAWNER__CMD: JSON.stringify(['python3', TINY]), LABHUB_SPAWNER__ALLOW_ROOT: 'true', LABHUB_AUTHENTICATOR__KIND: 'dummy',
      LABHUB_CREDENTIALS__MQTT__ADMIN_URL: broker.adminUrl, LABHUB_CREDENTIALS__MQTT__REQUIRED: 'true',
      LABHUB_CREDENTIALS__POSTGRES__ADMIN_URL: cluster.url, LABHUB_CREDENTIALS__POSTGRES__REQUIRED: 'true',
      LABHUB_CREDENTIALS__SWEEP_INTERVAL: '1',
      ...extra,
    },
  });
}

async function adminToken(hub: HubProcess, users: string[]): Promise<string> {
  expect((await hub.cli(['users', 'add', 'admin', '--admin'])).status).toBe(0);
  const token = (await hub.cli(['token', 'admin'])).stdout.trim();
  expect((await api(hub.url, token, 'POST', '/users', { usernames: users })).status).toBe(201);
  return token;
}

/** The credentials as the server received them: the JSON file in its secrets dir, checked against its environment. */
async function serverCredentials(hub: HubProcess, token: string, user: string): Promise<Credentials> {
  const model = (await api(hub.url, token, 'GET', `/users/${user}`)).body as { servers: Record<string, { state: { pid: number } }> };
  const environ = new Map(readFileSync(`/proc/${model.servers['']!.state.pid}/environ`, 'utf8').split('\0').map((kv) => {
    const eq = kv.indexOf('=');
    return [kv.slice(0, eq), kv.slice(eq + 1)] as const;
  }));
  const dir = environ.get('LABHUB_SECRETS_DIR')!;
  const file = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as Credentials;
  expect(environ.get('LABHUB_MQTT_USERNAME')).toBe(file.mqtt.username);
  expect(environ.get('LABHUB_MQTT_PASSWORD')).toBe(file.mqtt.password);
  expect(environ.get('LABHUB_MQTT_URL')).toBe(broker.url);
  expect(environ.get('LABHUB_POSTGRES_URL')).toBe(file.postgres.url);
  expect(environ.get('PGUSER')).toBe(file.postgres.username);
  return file;
}

function mqttAs(c: Credentials['mqtt']): Promise<MqttClient> {
  return connectAsync(broker.url, { username: c.username, password: c.password, reconnectPeriod: 0, protocolVersion: 5, connectTimeout: 5000 });
}

async function pgAs(c: Credentials['postgres']): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: c.url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function leases(hub: HubProcess, token: string, user: string): Promise<Lease[]> {
  const res = await api(hub.url, token, 'GET', `/users/${user}/credentials`);
  expect(res.status).toBe(200);
  return res.body as Lease[];
}

describe.skipIf(!available)('per-server credentials for MQTT and PostgreSQL', () => {
  let hub: HubProcess;
  let token = '';
  let alice: Credentials;
  let bob: Credentials;

  beforeAll(async () => {
    hub = credentialHub();
    await hub.start();
    token = await adminToken(hub, ['alice', 'bob']);
    for (const user of ['alice', 'bob']) expect((await api(hub.url, token, 'POST', `/users/${user}/server`)).status).toBe(201);
    [alice, bob] = [await serverCredentials(hub, token, 'alice'), await serverCredentials(hub, token, 'bob')];
  });
  afterAll(() => hub?.cleanup());

  it('gives each server its own accounts, listed by the admin API without secrets', async () => {
    expect(alice.mqtt.username).not.toBe(bob.mqtt.username);
    expect(alice.postgres.username).not.toBe(bob.postgres.username);
    // Publishing goes under the account's own uid-named topic, not its name: a later account of the name never gets it.
    expect(alice.mqtt.publish).toEqual([expect.stringMatching(/^users\/[a-z2-7]{12}\/#$/)]);
    expect(alice.mqtt.publish).not.toEqual(bob.mqtt.publish);
    const listed = await leases(hub, token, 'alice');
    expect(listed.map((l) => [l.service, l.account, l.status]).sort()).toEqual([
      ['mqtt', alice.mqtt.username, 'active'], ['postgres', alice.postgres.username, 'active'],
    ]);
    const raw = JSON.stringify(listed);
    expect(raw).not.toContain(alice.mqtt.password);
    expect(raw).not.toContain(alice.postgres.password);
    const sqlite = new SQLite(hub.sqlitePath, { readonly: true });
    const dump = JSON.stringify(sqlite.prepare('select * from credential_leases').all());
    sqlite.close();
    expect(dump).not.toContain(alice.mqtt.password);
    expect(dump).not.toContain(alice.postgres.password);
    expect(hub.output).not.toContain(alice.mqtt.password);
    expect(hub.output).not.toContain(alice.postgres.password);
  });

  it('MQTT: alice receives sensors/x, cannot publish there, cannot subscribe to bob\'s topic, may publish under her own', async () => {
    const client = await mqttAs(alice.mqtt);
    try {
      expect((await client.subscribeAsync('sensors/#', { qos: 1 }))[0]!.qos).toBe(1);
      await expect(client.subscribeAsync(bob.mqtt.publish[0]!, { qos: 1 })).rejects.toThrow(/Not authorized/);
      const received = new Promise<string>((r) => client.on('message', (topic, payload) => topic === 'sensors/x' && r(payload.toString())));
      await sensorApp.publishAsync('sensors/x', '21.5', { qos: 1 });
      expect(await received).toBe('21.5');
      await expect(client.publishAsync('sensors/x', 'forged', { qos: 1 })).rejects.toThrow(/not authori[sz]ed|135/i);
      await expect(client.publishAsync(alice.mqtt.publish[0]!.replace('#', 'notes'), 'mine', { qos: 1 })).resolves.toBeDefined();
    } finally {
      await client.endAsync(true);
    }
  });

  it('PostgreSQL: alice reads the shared schema, cannot write it, works in her own schema, cannot read bob\'s', async () => {
    const bobClient = await pgAs(bob.postgres);
    await bobClient.query('create table notes (text text)');
    await bobClient.end();
    const client = await pgAs(alice.postgres);
    try {
      expect((await client.query('select value from shared.readings')).rows).toEqual([{ value: 21.5 }]);
      await expect(client.query(`insert into shared.readings values ('y', 1)`)).rejects.toThrow(/permission denied for table readings/);
      await client.query('create table results (n int)');
      await client.query('insert into results values (1)');
      expect((await client.query('select current_schema() as s')).rows[0]).toEqual({ s: alice.postgres.schema });
      await expect(client.query(`select * from ${bob.postgres.schema}.notes`)).rejects.toThrow(/permission denied for schema/);
      await expect(client.query('create table public.sneaky (n int)')).rejects.toThrow(/permission denied for schema public/);
    } finally {
      await client.end();
    }
    await expect(pgAs({ ...alice.postgres, url: alice.postgres.url.replace(alice.postgres.password, 'wrong') })).rejects.toThrow(/password authentication failed/);
  });

  it.skipIf(!requireService(`Docker image ${NOTEBOOK_IMAGE}`, available && imagePresent()))(
    'labhub_datalab in the notebook image gives ready clients from the injected variables', async () => {
      const script = [
        'import labhub_datalab as lab',
        'print(next(lab.sensors(timeout=20)), flush=True)',
        'conn = lab.postgres()',
        'cur = conn.cursor(); cur.execute("select value from shared.readings"); print(cur.fetchall())',
      ].join('\n');
      const run = runInNotebookImage(Object.entries({
        LABHUB_MQTT_URL: alice.mqtt.url, LABHUB_MQTT_USERNAME: alice.mqtt.username, LABHUB_MQTT_PASSWORD: alice.mqtt.password,
        LABHUB_MQTT_SUBSCRIBE: alice.mqtt.subscribe.join(','), LABHUB_POSTGRES_URL: alice.postgres.url,
      }).flatMap(([k, v]) => ['-e', `${k}=${v}`]), script);
      let finished = false;
      void run.finally(() => (finished = true)).catch(() => undefined);
      while (!finished) {
        await sensorApp.publishAsync('sensors/lab', '19.0', { qos: 1 });
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(await run).toBe("('sensors/lab', b'19.0')\n[(21.5,)]\n");
    }, 90_000);

  it('after alice\'s server stops, her credentials no longer connect and her open sessions are closed', async () => {
    const mqttSession = await mqttAs(alice.mqtt);
    const mqttClosed = new Promise<void>((r) => mqttSession.once('close', () => r()));
    const pgSession = await pgAs(alice.postgres);
    const pgEnded = new Promise<void>((r) => pgSession.once('end', () => r()));
    expect((await api(hub.url, token, 'DELETE', '/users/alice/server')).status).toBe(204);
    await mqttClosed;
    await pgEnded;
    await expect(mqttAs(alice.mqtt)).rejects.toThrow(/not authori[sz]ed|bad user name or password/i);
    await expect(pgAs(alice.postgres)).rejects.toThrow(/password authentication failed|does not exist/);
    expect(await leases(hub, token, 'alice')).toEqual([]);
    expect((await adminSql('select 1 from pg_roles where rolname = $1', [alice.postgres.username])).rowCount).toBe(0);
    // Her work stays in her schema, now owned by her persistent owner role; bob is untouched.
    expect((await adminSql(`select n from ${alice.postgres.schema}.results`)).rows).toEqual([{ n: 1 }]);
    const stillBob = await mqttAs(bob.mqtt);
    await stillBob.endAsync(true);
  });

  it('a new server gets fresh accounts that still own the user\'s earlier tables', async () => {
    expect((await api(hub.url, token, 'POST', '/users/alice/server')).status).toBe(201);
    const again = await serverCredentials(hub, token, 'alice');
    expect(again.postgres.username).not.toBe(alice.postgres.username);
    const client = await pgAs(again.postgres);
    await client.query('insert into results values (2)');
    expect((await client.query('select count(*)::int as n from results')).rows).toEqual([{ n: 2 }]);
    await client.end();
    alice = again;
  });

  it('the admin API revokes a user\'s leases; bad ids are 4xx JSON', async () => {
    const [mqttLease] = (await leases(hub, token, 'alice')).filter((l) => l.service === 'mqtt');
    const wrongUser = await api(hub.url, token, 'DELETE', `/users/bob/credentials/${mqttLease!.id}`);
    expect(wrongUser).toMatchObject({ status: 404, body: { status: 404 } });
    expect((await api(hub.url, token, 'DELETE', '/users/alice/credentials/abc')).body).toMatchObject({ status: 400 });
    expect((await api(hub.url, token, 'GET', '/users/nobody/credentials')).status).toBe(404);
    expect((await api(hub.url, token, 'DELETE', `/users/alice/credentials/${mqttLease!.id}`)).status).toBe(204);
    await expect(mqttAs(alice.mqtt)).rejects.toThrow(/not authori[sz]ed|bad user name or password/i);
    expect((await leases(hub, token, 'alice')).map((l) => l.service)).toEqual(['postgres']);
    expect((await api(hub.url, token, 'DELETE', '/users/alice/credentials')).status).toBe(204);
    await expect(pgAs(alice.postgres)).rejects.toThrow(/password authentication failed|does not exist/);
    const all = await api(hub.url, token, 'GET', '/credentials');
    expect((all.body as Lease[]).map((l) => l.user)).toEqual(['bob', 'bob']);
  });

  it('deleting a user revokes the user\'s credentials', async () => {
    expect((await api(hub.url, token, 'DELETE', '/users/bob')).status).toBe(204);
    await expect(mqttAs(bob.mqtt)).rejects.toThrow(/not authori[sz]ed|bad user name or password/i);
    expect((await adminSql('select 1 from pg_roles where rolname = $1', [bob.postgres.username])).rowCount).toBe(0);
    expect((await api(hub.url, token, 'GET', '/credentials')).body).toEqual([]);
  });
});

describe.skipIf(!available)('per-account names at PostgreSQL, and what deleting an account leaves', () => {
  // alice.smith's name slug is alice_smith_634258, itself a legal username: names from names made them share a schema.
  const [first, second] = ['alice.smith', 'alice_smith_634258'];
  let hub: HubProcess;
  let token = '';
  let creds: Credentials;

  const schemaOwner = async (schema: string) =>
    (await adminSql('select nspowner::regrole::text as owner from pg_namespace where nspname = $1', [schema])).rows[0] as { owner: string } | undefined;

  beforeAll(async () => {
    hub = credentialHub();
    await hub.start();
    token = await adminToken(hub, [first, second]);
    for (const user of [first, second]) expect((await api(hub.url, token, 'POST', `/users/${user}/server`)).status).toBe(201);
    creds = await serverCredentials(hub, token, first);
    const client = await pgAs(creds.postgres);
    await client.query('create table private (secret text)');
    await client.query(`insert into private values ('mine')`);
    await client.end();
  });
  afterAll(() => hub?.cleanup());

  it('the second account has its own schema and cannot read or write the first\'s tables', async () => {
    const other = await serverCredentials(hub, token, second);
    expect(other.postgres.schema).not.toBe(creds.postgres.schema);
    const client = await pgAs(other.postgres);
    try {
      await expect(client.query(`select * from ${creds.postgres.schema}.private`)).rejects.toThrow(/permission denied/);
      await expect(client.query(`insert into ${creds.postgres.schema}.private values ('x')`)).rejects.toThrow(/permission denied/);
      expect((await client.query('select count(*)::int as n from pg_tables where schemaname = current_schema()')).rows).toEqual([{ n: 0 }]);
    } finally {
      await client.end();
    }
  });

  it('deleting an account drops its owner role and keeps its schema for the admin; a new account of the name starts empty', async () => {
    const ownerBefore = (await schemaOwner(creds.postgres.schema))!.owner;
    expect((await api(hub.url, token, 'DELETE', `/users/${first}`)).status).toBe(204);
    expect((await adminSql('select 1 from pg_roles where rolname = $1', [ownerBefore])).rowCount).toBe(0);
    expect((await schemaOwner(creds.postgres.schema))!.owner).toBe('postgres');
    expect((await adminSql(`select secret from ${creds.postgres.schema}.private`)).rows).toEqual([{ secret: 'mine' }]);

    expect((await api(hub.url, token, 'POST', `/users/${first}`)).status).toBe(201);
    expect((await api(hub.url, token, 'POST', `/users/${first}/server`)).status).toBe(201);
    const successor = await serverCredentials(hub, token, first);
    expect(successor.postgres.schema).not.toBe(creds.postgres.schema);
    const client = await pgAs(successor.postgres);
    try {
      await expect(client.query(`select * from ${creds.postgres.schema}.private`)).rejects.toThrow(/permission denied/);
      expect((await client.query('select count(*)::int as n from pg_tables where schemaname = current_schema()')).rows).toEqual([{ n: 0 }]);
    } finally {
      await client.end();
    }
    creds = successor;
  });

  it('deleting with purge=true drops the schema too; a bad purge value is a 400', async () => {
    expect((await api(hub.url, token, 'DELETE', `/users/${first}?purge=maybe`)).body).toMatchObject({ status: 400 });
    expect((await api(hub.url, token, 'DELETE', `/users/${first}?purge=true`)).status).toBe(204);
    expect(await schemaOwner(creds.postgres.schema)).toBeUndefined();
    await expect(pgAs(creds.postgres)).rejects.toThrow(/password authentication failed|does not exist/);
    expect(hub.output).toMatch(/"removed":\[[^\]]*PostgreSQL schema/);
  });
});

describe.skipIf(!available)('a data service that is down', () => {
  const slow = `import time, runpy; time.sleep(1); runpy.run_path(${JSON.stringify(TINY)}, run_name="__main__")`;
  let deadMqtt = '';
  const hubs: HubProcess[] = [];
  beforeAll(async () => {
    deadMqtt = `mqtt://labhub-admin:secret-admin-pw@127.0.0.1:${await freePort()}`;
  });
  afterAll(() => Promise.all(hubs.map((h) => h.cleanup())));

  async function hubWithMqtt(required: boolean): Promise<{ hub: HubProcess; token: string }> {
    const hub = credentialHub({
      LABHUB_SPAWNER__CMD: JSON.stringify(['python3', '-c', slow]),
      LABHUB_CREDENTIALS__MQTT__ADMIN_URL: deadMqtt, LABHUB_CREDENTIALS__MQTT__REQUIRED: String(required),
      LABHUB_CREDENTIALS__TIMEOUT: '2',
    });
    hubs.push(hub);
    await hub.start();
    return { hub, token: await adminToken(hub, ['erin']) };
  }

  async function spawnEvents(hub: HubProcess, token: string): Promise<Array<{ message: string; failed?: boolean; ready?: boolean }>> {
    const started = api(hub.url, token, 'POST', '/users/erin/server');
    const stream = await eventually(async () => {
      const res = await fetch(`${hub.url}/hub/api/users/erin/server/progress`, { headers: { authorization: `token ${token}` } });
      return res.status === 200 ? res.text() : null;
    }, 20_000, 20);
    await started;
    return stream.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)) as { message: string });
  }

  async function leasesByService(hub: HubProcess, token: string): Promise<Record<string, Lease & { last_error: string | null }>> {
    return Object.fromEntries((await leases(hub, token, 'erin')).map((l) => [l.service, l as Lease & { last_error: string | null }]));
  }

  it('optional: the server starts without it, and its progress says so', async () => {
    const { hub, token } = await hubWithMqtt(false);
    const events = await spawnEvents(hub, token);
    expect(events.map((e) => e.message)).toEqual(expect.arrayContaining([
      'Issuing MQTT credentials', expect.stringMatching(/^MQTT credentials unavailable \(cannot connect to Mosquitto: .+\); starting without them$/),
      'Issuing PostgreSQL credentials',
    ]));
    expect(events.at(-1)).toMatchObject({ ready: true });
    // The MQTT lease was recorded before the broker was asked; it cannot be revoked while the broker is down, so
    // it stays listed as being revoked, with the reason, until the sweeper succeeds.
    expect(await leasesByService(hub, token)).toMatchObject({
      postgres: { status: 'active' }, mqtt: { status: 'revoking', last_error: expect.stringMatching(/^cannot connect to Mosquitto/) },
    });
    expect(hub.output).not.toContain('secret-admin-pw');
  });

  it('required: the spawn fails with a clear message; the lease waits for the broker to be revoked', async () => {
    const { hub, token } = await hubWithMqtt(true);
    const events = await spawnEvents(hub, token);
    expect(events.at(-1)).toMatchObject({ failed: true });
    expect(events.at(-1)!.message).toMatch(/^Spawn failed: could not issue MQTT credentials: cannot connect to Mosquitto: /);
    expect(events.at(-1)!.message).not.toContain('secret-admin-pw');
    expect(Object.keys(await leasesByService(hub, token))).toEqual(['mqtt']);
    expect(hub.output).not.toContain('secret-admin-pw');
  });
});

describe.skipIf(!available)('a hub killed between issuing credentials and starting the server', () => {
  // The server takes a moment before it listens, so the kill lands while the spawn is in flight.
  const slow = `import time, runpy; time.sleep(1.5); runpy.run_path(${JSON.stringify(TINY)}, run_name="__main__")`;
  let hub: HubProcess;
  let token = '';
  beforeAll(async () => {
    hub = credentialHub({ LABHUB_SPAWNER__CMD: JSON.stringify(['python3', '-c', slow]) });
    await hub.start();
    token = await adminToken(hub, ['carol']);
  });
  afterAll(() => hub?.cleanup());

  function leaseRows(): Array<{ id: number; service: string; account: string; status: string }> {
    const sqlite = new SQLite(hub.sqlitePath, { readonly: true });
    try {
      return sqlite.prepare('select id, service, account, status from credential_leases').all() as Array<{ id: number; service: string; account: string; status: string }>;
    } finally {
      sqlite.close();
    }
  }

  async function mqttAccounts(): Promise<string[]> {
    const dynsec = new DynsecClient({ url: broker.url, ...broker.admin, timeoutMs: 5000 });
    const [listed] = await dynsec.send([{ command: 'listClients', verbose: false }]);
    await dynsec.close();
    return ((listed!.data as { clients: string[] }).clients).filter((c) => c.startsWith('labhub-carol-'));
  }

  async function postgresAccounts(): Promise<string[]> {
    return (await adminSql(`select rolname from pg_roles where rolname like 'lh\\_carol\\_%'`)).rows.map((r: { rolname: string }) => r.rolname);
  }

  it('finds on restart every lease in use or revoked, and no account at a service that no lease accounts for', async () => {
    void fetch(`${hub.url}/hub/api/users/carol/server`, { method: 'POST', headers: { authorization: `token ${token}` } }).catch(() => undefined);
    await eventually(async () => leaseRows().filter((l) => l.status === 'active').length === 2, 15_000, 5);
    hub.kill9();
    const issued = leaseRows();
    expect(issued.map((l) => l.service).sort()).toEqual(['mqtt', 'postgres']);
    // While the hub is down the accounts exist: exactly the ones its DB recorded before they were created.
    expect(await mqttAccounts()).toEqual(issued.filter((l) => l.service === 'mqtt').map((l) => l.account));
    expect(await postgresAccounts()).toEqual(issued.filter((l) => l.service === 'postgres').map((l) => l.account));

    await hub.start();
    const server = (await api(hub.url, token, 'GET', '/users/carol')).body as { servers: Record<string, { ready: boolean }> };
    const running = server.servers['']?.ready === true;
    const after = leaseRows();
    for (const lease of after) expect(lease.status).toBe(running ? 'active' : 'revoked');
    const unrevoked = after.filter((l) => l.status !== 'revoked');
    expect(await mqttAccounts()).toEqual(unrevoked.filter((l) => l.service === 'mqtt').map((l) => l.account));
    expect(await postgresAccounts()).toEqual(unrevoked.filter((l) => l.service === 'postgres').map((l) => l.account));
    expect(hub.output).toMatch(running ? /reconciled servers after start/ : /credential sweep|credentials revoked/);
  });
});

describe.skipIf(!requireService('FerretDB', ferretdbAvailable()))('MongoDB leases against FerretDB 1.24 (users and SCRAM logins; authorization: none)', () => {
  let ferret: FerretDbServer;
  let hub: HubProcess;
  let token = '';
  beforeAll(async () => {
    ferret = await startFerretDb();
    hub = new HubProcess({
      env: {
        LABHUB_SPAWNER__CMD: JSON.stringify(['python3', TINY]), LABHUB_SPAWNER__ALLOW_ROOT: 'true', LABHUB_AUTHENTICATOR__KIND: 'dummy',
        LABHUB_CREDENTIALS__MONGODB__ADMIN_URL: ferret.adminUrl, LABHUB_CREDENTIALS__MONGODB__REQUIRED: 'true',
        LABHUB_CREDENTIALS__MONGODB__AUTHORIZATION: 'none',
      },
    });
    await hub.start();
    token = await adminToken(hub, ['dora']);
  });
  afterAll(async () => {
    await hub?.cleanup();
    await ferret?.stop();
  });

  const mongoAs = (url: string) => new MongoClient(url, { serverSelectionTimeoutMS: 3000 });

  it('tells the admin, at start and on the leases page, that nothing keeps these leases apart', async () => {
    expect(hub.output).toContain(UNISOLATED_MONGODB_WARNING);
    const browser = new Browser(hub.url);
    await browser.login('admin', 'any password: the dummy authenticator');
    const page = await (await browser.navigate('/hub/admin/leases')).text();
    expect(page).toContain('Not isolated:');
    expect(page).toContain(asRendered(UNISOLATED_MONGODB_WARNING));
  });

  it('issues a user that logs in with SCRAM and writes its own database; after stop the login is refused', async () => {
    expect((await api(hub.url, token, 'POST', '/users/dora/server')).status).toBe(201);
    const model = (await api(hub.url, token, 'GET', '/users/dora')).body as { servers: Record<string, { state: { pid: number } }> };
    const environ = readFileSync(`/proc/${model.servers['']!.state.pid}/environ`, 'utf8').split('\0');
    const secretsDir = environ.find((kv) => kv.startsWith('LABHUB_SECRETS_DIR='))!.split('=')[1]!;
    const { mongodb } = JSON.parse(readFileSync(join(secretsDir, 'credentials.json'), 'utf8')) as Credentials;
    expect(environ).toContain(`LABHUB_MONGODB_URL=${mongodb.url}`);
    expect(mongodb.database).toBe(userDataNames(accountOf(hub, 'dora')).mongoDatabase);
    const client = mongoAs(mongodb.url);
    await client.db(mongodb.database).collection('notes').insertOne({ n: 1 });
    expect(await client.db(mongodb.database).collection('notes').countDocuments()).toBe(1);
    await client.close();

    if (requireService(`Docker image ${NOTEBOOK_IMAGE}`, imagePresent())) {
      // The module finds the account through the secrets dir alone (root in the container: the dir is the hub's, 0700).
      const script = 'import labhub_datalab as lab\nc = lab.credentials("mongodb")\nprint(lab.mongo()[c["database"]].notes.count_documents({}))';
      expect(await runInNotebookImage(['--user', '0', '-v', `${secretsDir}:/secrets:ro`, '-e', 'LABHUB_SECRETS_DIR=/secrets'], script)).toBe('1\n');
    }

    expect((await api(hub.url, token, 'DELETE', '/users/dora/server')).status).toBe(204);
    expect(await leases(hub, token, 'dora')).toEqual([]);
    const refused = mongoAs(mongodb.url);
    await expect(refused.db(mongodb.database).collection('notes').countDocuments()).rejects.toThrow(/Authentication failed/);
    await refused.close();
  });
});
