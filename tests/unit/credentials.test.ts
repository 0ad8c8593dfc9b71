import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { MongoServerError, type Document } from 'mongodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type OpenedDatabase } from '../../hub/db/database.js';
import { createStore, type Store } from '../../hub/db/index.js';
import { createLogger } from '../../hub/log.js';
import type { AccountPlan, CredentialBroker, Delivery, IssueRequest } from '../../hub/credentials/broker.js';
import { MongoBroker, type MongoAdmin } from '../../hub/credentials/mongodb.js';
import { issueCommands, revokeCommands } from '../../hub/credentials/mqtt.js';
import { identifierSlug, userDataNames, type AccountOwner } from '../../hub/credentials/names.js';
import { PolicyError, policySchema, resolvePolicy } from '../../hub/credentials/policy.js';
import { CREDENTIALS_FILE, CredentialIssueError, CredentialService } from '../../hub/credentials/service.js';
import { scramSha256Verifier } from '../../hub/credentials/scram.js';
import { configSchema } from '../../hub/config/schema.js';

const DEFAULTS = policySchema.parse({});
const ALICE: AccountOwner = { name: 'alice', uid: 'aaaaaaaaaaaa' };

describe('credential policy', () => {
  it('defaults to least privilege: sensors in, own topics out; shared schema read-only; sensors database read-only', () => {
    const policy = resolvePolicy(DEFAULTS, [], 'alice', ALICE.uid);
    expect(policy.mqtt).toEqual({ subscribe: ['sensors/#'], publish: [`users/${ALICE.uid}/#`] });
    expect(policy.postgres).toMatchObject({ read_schemas: ['shared'], own_schema: true });
    expect(policy.mongodb).toEqual({ read_databases: ['sensors'], own_database: true });
  });

  it('lets a class override a key; several classes union their lists', () => {
    const policy = resolvePolicy(DEFAULTS, [
      { name: 'course1', properties: { credentials: { mqtt: { subscribe: ['course1/#'] }, postgres: { read_schemas: ['course1'] } } } },
      { name: 'course2', properties: { credentials: { mqtt: { subscribe: ['course2/#', 'course1/#'] } }, other: 1 } },
      { name: 'plain', properties: {} },
    ], 'bob', 'bbbbbbbbbbbb');
    expect(policy.mqtt.subscribe).toEqual(['course1/#', 'course2/#']);
    expect(policy.mqtt.publish).toEqual(['users/bbbbbbbbbbbb/#']);
    expect(policy.postgres.read_schemas).toEqual(['course1']);
  });

  it('refuses a malformed class override, naming the group and key', () => {
    expect(() => resolvePolicy(DEFAULTS, [{ name: 'bad', properties: { credentials: { postgres: { read_schemas: ['Robert"); drop'] } } } }], 'a', ALICE.uid))
      .toThrow(/group bad: property credentials\.postgres\.read_schemas\.0/);
    expect(() => resolvePolicy(DEFAULTS, [{ name: 'typo', properties: { credentials: { mqtt: { subscrbe: [] } } } }], 'a', ALICE.uid)).toThrow(PolicyError);
  });

  it('never puts a username with an MQTT wildcard into a topic filter', () => {
    const withName = policySchema.parse({ mqtt: { publish: ['users/{user}/#'] } });
    expect(() => resolvePolicy(withName, [], 'a+b', ALICE.uid)).toThrow(/wildcard/);
  });
});

describe('credentials config', () => {
  it('configures no service by default and checks each admin URL\'s scheme', () => {
    const defaults = configSchema.parse({}).credentials;
    expect(defaults).toMatchObject({ ttl: 3600, sweep_interval: 60, policy: DEFAULTS });
    expect(defaults.mqtt).toBeUndefined();
    const parsed = configSchema.parse({ credentials: { mongodb: { admin_url: 'mongodb://a:b@m:27017/' }, policy: { mqtt: { subscribe: ['lab/#'] } } } });
    expect(parsed.credentials.mongodb).toEqual({ admin_url: 'mongodb://a:b@m:27017/', required: false, authorization: 'roles' });
    expect(parsed.credentials.policy.mqtt).toEqual({ subscribe: ['lab/#'], publish: ['users/{uid}/#'] });
    expect(configSchema.safeParse({ credentials: { postgres: { admin_url: 'mqtt://x' } } }).success).toBe(false);
    expect(configSchema.safeParse({ credentials: { mqtt: { admin_url: 'mqtt://x', colour: 1 } } }).success).toBe(false);
  });
});

describe('generated names and secrets', () => {
  it('keeps safe usernames and disambiguates changed ones', () => {
    expect(identifierSlug('alice')).toBe('alice');
    expect(identifierSlug('a.b')).not.toBe(identifierSlug('a_b'));
    expect(identifierSlug('a.b')).toMatch(/^a_b_[0-9a-f]{6}$/);
  });

  it('gives PostgreSQL a SCRAM verifier, never the password', () => {
    expect(scramSha256Verifier('secret')).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
    expect(scramSha256Verifier('secret')).not.toContain('secret');
  });
});

describe('Mosquitto command sequences', () => {
  it('creates the role before the client that names it, and deletes the client (ending its sessions) first', () => {
    expect(issueCommands('labhub-a-1', 'pw', [], 'a').map((c) => c.command)).toEqual(['createRole', 'createClient']);
    expect(revokeCommands('labhub-a-1')).toEqual([{ command: 'deleteClient', username: 'labhub-a-1' }, { command: 'deleteRole', rolename: 'labhub-a-1' }]);
  });
});

/** A recording stand-in for the admin database: unit tests of the broker's command sequence only. */
function fakeMongo(fail: Record<string, MongoServerError> = {}): MongoAdmin & { commands: Document[] } {
  const commands: Document[] = [];
  return {
    commands,
    async command(command) {
      commands.push(command);
      const name = Object.keys(command)[0]!;
      if (fail[name]) throw fail[name];
      return { ok: 1 };
    },
    async dropDatabase(name) {
      commands.push({ dropDatabase: name });
    },
    async setGrant(account, grant) {
      commands.push({ setGrant: account, grant });
    },
    async close() {},
  };
}

function mongoError(code: number, message: string): MongoServerError {
  return new MongoServerError({ message, code, ok: 0 });
}

describe('MongoDB broker command sequence', () => {
  const request = (broker: MongoBroker): IssueRequest => ({
    ...broker.plan(ALICE), user: 'alice', password: 'pw', expiresAt: new Date('2030-01-01T00:00:00Z'), policy: resolvePolicy(DEFAULTS, [], 'alice', ALICE.uid),
  });

  it('drops the user\'s own database only when a deleted account is purged', async () => {
    const admin = fakeMongo();
    const broker = new MongoBroker(admin, { connectUrl: 'mongodb://mongo:27017/' });
    expect(await broker.removeUser(ALICE, { purge: false })).toEqual([]);
    expect(admin.commands).toEqual([]);
    const { mongoDatabase } = userDataNames(ALICE);
    expect(await broker.removeUser(ALICE, { purge: true })).toEqual([`MongoDB database ${mongoDatabase}`]);
    expect(admin.commands).toEqual([{ dropDatabase: mongoDatabase }]);
  });

  it('creates one admin-database user with read on the sensors database and readWrite on the user\'s own', async () => {
    const admin = fakeMongo();
    const broker = new MongoBroker(admin, { connectUrl: 'mongodb://mongo:27017/' });
    const req = request(broker);
    const delivery = await broker.issue(req);
    expect(admin.commands).toEqual([{
      createUser: req.account, pwd: 'pw',
      roles: [{ role: 'read', db: 'sensors' }, { role: 'readWrite', db: userDataNames(ALICE).mongoDatabase }],
    }]);
    expect(delivery.env.LABHUB_MONGODB_URL).toBe(`mongodb://${req.account}:pw@mongo:27017/?authSource=admin`);
    expect(delivery.env.LABHUB_MONGODB_DATABASE).toBe(userDataNames(ALICE).mongoDatabase);
  });

  it('creates the user without roles for servers that have none (FerretDB 1.x)', async () => {
    const admin = fakeMongo();
    const broker = new MongoBroker(admin, { connectUrl: 'mongodb://m/', authorization: 'none' });
    await broker.issue(request(broker));
    expect(admin.commands).toHaveLength(1);
    expect(admin.commands[0]!.roles).toEqual([]);
  });

  it('behind the gate, writes the grant before the user exists and deletes it before the user goes', async () => {
    const admin = fakeMongo();
    const broker = new MongoBroker(admin, { connectUrl: 'mongodb://gate/', authorization: 'gate' });
    const req = request(broker);
    await broker.issue(req);
    expect(admin.commands.map((c) => Object.keys(c)[0])).toEqual(['setGrant', 'createUser']);
    expect(admin.commands[0]).toEqual({ setGrant: req.account, grant: { read: ['sensors'], write: [userDataNames(ALICE).mongoDatabase] } });
    expect(admin.commands[1]!.roles).toEqual([]);
    admin.commands.length = 0;
    await broker.revoke({ account: req.account, revokeData: {} });
    expect(admin.commands.map((c) => Object.keys(c)[0])).toEqual(['setGrant', 'dropUser', 'killAllSessionsByPattern']);
    expect(admin.commands[0]).toEqual({ setGrant: req.account, grant: null });
  });

  it('revokes by dropping the user, then killing its sessions; "not found" and servers without session killing count as done', async () => {
    const admin = fakeMongo({ dropUser: mongoError(11, 'User not found'), killAllSessionsByPattern: mongoError(59, 'no such command') });
    const broker = new MongoBroker(admin, { connectUrl: 'mongodb://mongo:27017/' });
    await broker.revoke({ account: 'labhub-alice-1', revokeData: {} });
    expect(admin.commands).toEqual([
      { dropUser: 'labhub-alice-1' },
      { killAllSessionsByPattern: [{ users: [{ user: 'labhub-alice-1', db: 'admin' }] }] },
    ]);
  });

  it('reports any other failure, so the lease stays for the sweeper', async () => {
    const broker = new MongoBroker(fakeMongo({ dropUser: mongoError(13, 'not authorized') }), { connectUrl: 'mongodb://m/' });
    await expect(broker.revoke({ account: 'x', revokeData: {} })).rejects.toThrow(/not authorized/);
  });
});

/** A broker whose service can be switched off, to drive the lease logic (unit test: no real service here). */
class SwitchableBroker implements CredentialBroker {
  readonly service = 'mqtt' as const;
  up = true;
  accounts = new Set<string>();
  plan({ name: user }: AccountOwner): AccountPlan {
    return { account: `acct-${user}-${this.accounts.size}-${Math.random().toString(36).slice(2, 6)}`, revokeData: {} };
  }
  async issue(request: IssueRequest): Promise<Delivery> {
    if (!this.up) throw new Error('cannot connect to Mosquitto: connect ECONNREFUSED');
    this.accounts.add(request.account);
    return { env: { LABHUB_MQTT_USERNAME: request.account, LABHUB_MQTT_PASSWORD: request.password }, file: { username: request.account } };
  }
  async renew(): Promise<void> {
    if (!this.up) throw new Error('down');
  }
  async revoke(plan: AccountPlan): Promise<void> {
    if (!this.up) throw new Error('cannot connect to Mosquitto: connect ECONNREFUSED');
    this.accounts.delete(plan.account);
  }
  async close(): Promise<void> {}
}

describe('lease lifecycle', () => {
  let opened: OpenedDatabase;
  let store: Store;
  let broker: SwitchableBroker;
  let logged: string;
  const log = () => {
    const stream = new PassThrough();
    stream.on('data', (d: Buffer) => (logged += d.toString()));
    return createLogger('test', { level: 'info', pretty: false, destination: stream });
  };

  beforeEach(async () => {
    opened = openDatabase({ sqlitePath: ':memory:' });
    await migrate(opened.db, opened.dialect);
    store = createStore(opened.db);
    broker = new SwitchableBroker();
    logged = '';
  });
  afterEach(() => opened.close());

  async function serverRow(status: 'starting' | 'running' | 'stopped') {
    const user = await store.users.create('alice');
    const row = (await store.servers.beginStart(user.id, '', {}, 'test'))!;
    if (status === 'running') await store.servers.markRunning(row.id, 'http://x', {});
    if (status === 'stopped') await store.servers.markStopped(row.id, null);
    return row;
  }

  function service(required: boolean, ttlMs = 60_000) {
    return new CredentialService({ store, log: log() }, [{ broker, required }], { ttlMs, sweepIntervalMs: 60_000, defaults: DEFAULTS, retryDelaysMs: [1] });
  }

  it('issues a lease per service, recorded without the password, delivered as env and a JSON file', async () => {
    const row = await serverRow('starting');
    const messages: string[] = [];
    const creds = await service(true).issueForServer({ user: ALICE, serverId: row.id, serverName: '', classes: [], progress: (m) => messages.push(m) });
    const [lease] = await store.leases.unrevokedOfServer(row.id);
    expect(lease).toMatchObject({ status: 'active', service: 'mqtt', account: creds.env.LABHUB_MQTT_USERNAME });
    expect(JSON.stringify(lease)).not.toContain(creds.env.LABHUB_MQTT_PASSWORD);
    expect(JSON.parse(creds.secretFiles[CREDENTIALS_FILE]!)).toEqual({ mqtt: { username: lease!.account } });
    expect(messages).toEqual(['Issuing MQTT credentials']);
  });

  it('fails the spawn when a required service is down, and goes on with a message when it is optional', async () => {
    const row = await serverRow('starting');
    broker.up = false;
    const issue = (required: boolean, progress: (m: string) => void = () => undefined) =>
      service(required).issueForServer({ user: ALICE, serverId: row.id, serverName: '', classes: [], progress });
    await expect(issue(true)).rejects.toThrow(CredentialIssueError);
    await expect(issue(true)).rejects.toThrow(/^could not issue MQTT credentials: cannot connect to Mosquitto/);
    const messages: string[] = [];
    expect(await issue(false, (m) => messages.push(m))).toEqual({ env: {}, secretFiles: {} });
    expect(messages.at(-1)).toMatch(/^MQTT credentials unavailable \(cannot connect to Mosquitto.*\); starting without them$/);
  });

  it('retries a revocation that fails, records and logs it, and the sweeper finishes it once the service is back', async () => {
    const row = await serverRow('running');
    const credentials = service(true);
    await credentials.issueForServer({ user: ALICE, serverId: row.id, serverName: '', classes: [], progress: () => undefined });
    broker.up = false;
    await store.servers.markStopped(row.id, null);
    expect(await credentials.revokeServer(row.id)).toHaveLength(1);
    const [failed] = await store.leases.unrevokedOfUser('alice');
    expect(failed).toMatchObject({ status: 'revoking', revoke_failures: 1, last_error: 'cannot connect to Mosquitto: connect ECONNREFUSED' });
    expect(logged).toMatch(/credential revocation failed; the sweeper will retry/);
    expect(broker.accounts.size).toBe(1);
    broker.up = true;
    expect(await credentials.sweep()).toMatchObject({ revoked: 1, failed: 0 });
    expect(broker.accounts.size).toBe(0);
    expect(await store.leases.unrevokedOfUser('alice')).toEqual([]);
  });

  it('renews leases of running servers past half their life and revokes expired or orphaned ones', async () => {
    const row = await serverRow('running');
    const credentials = service(true, 1000);
    await credentials.issueForServer({ user: ALICE, serverId: row.id, serverName: '', classes: [], progress: () => undefined });
    const [before] = await store.leases.unrevokedOfServer(row.id);
    await new Promise((r) => setTimeout(r, 600));
    expect(await credentials.sweep()).toMatchObject({ renewed: 1, revoked: 0 });
    const [after] = await store.leases.unrevokedOfServer(row.id);
    expect(Date.parse(after!.expires_at)).toBeGreaterThan(Date.parse(before!.expires_at));
    await store.servers.markStopped(row.id, null);
    expect(await credentials.sweep()).toMatchObject({ revoked: 1 });
    expect(broker.accounts.size).toBe(0);
  });

  it('revokes a lease whose account was never confirmed (a hub killed mid-issue) once its server is not starting', async () => {
    const row = await serverRow('starting');
    await store.leases.create({ userName: 'alice', serverId: row.id, serverName: '', service: 'mqtt', account: 'acct-left', revokeData: {}, expiresAt: new Date(Date.now() + 60_000).toISOString() });
    const credentials = service(true);
    expect(await credentials.sweep()).toMatchObject({ revoked: 0 });
    await store.servers.markStopped(row.id, null);
    expect(await credentials.sweep()).toMatchObject({ revoked: 1 });
  });
});

describe('labhub_datalab in the notebook images', () => {
  it('is copied into both images and on their Python path', () => {
    for (const image of ['notebook-debian', 'notebook']) {
      const dockerfile = readFileSync(join(resolve(import.meta.dirname, '../../images'), image, 'Dockerfile'), 'utf8');
      expect(dockerfile, image).toMatch(/^COPY python\/labhub_datalab \/opt\/labhub\/python\/labhub_datalab$/m);
      expect(dockerfile, image).toMatch(/PYTHONPATH=\/opt\/labhub\/python/);
      expect(dockerfile, image).toMatch(/^COPY --chown=\S+ python\/examples /m);
    }
  });
});
