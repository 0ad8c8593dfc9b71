import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase } from '../../hub/db/database.js';
import { createStore } from '../../hub/db/index.js';
import { api, HubProcess } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { createDatabase, databaseUrl } from '../helpers/postgres.js';
import { describeIf, itIf } from '../helpers/only-for.js';

/**
 * The hub keeps resolved tokens in memory (hub/auth/requester-cache.ts). Whatever changes what a token may do must
 * reach the very next request with it: revocation, expiry, deleting, demoting or renaming its owner, group and
 * role membership, on this hub or on another hub sharing the PostgreSQL DB. Each case first uses the token twice,
 * so that the second answer came from the cache, then changes something and checks the next answer at once.
 */
const postgresUrl = inject('postgresUrl');
const hasPostgres = requireService('PostgreSQL', postgresUrl !== null);

const ROLES = (readers: string[]) => `[{name: readers, scopes: ['read:users'], users: [${readers.join(', ')}], groups: [reading-group]}]`;
const baseEnv = { LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy' };

const dialects = [
  { name: 'sqlite', skip: false, dbName: undefined },
  { name: 'postgres', skip: !hasPostgres, dbName: `cache_${Date.now()}_${Math.floor(Math.random() * 1e6)}` },
];

for (const dialect of dialects) describe.skipIf(dialect.skip)(`token cache on ${dialect.name}`, () => {
  const dbEnv: Record<string, string> = dialect.dbName ? { LABHUB_DB_URL: databaseUrl(postgresUrl!, dialect.dbName) } : {};
  const hub = new HubProcess({ env: { ...baseEnv, ...dbEnv, LABHUB_ROLES: ROLES(['frank']) } });
  let admin = '';

  const as = (token: string, method: string, path: string, body?: unknown) => api(hub.url, token, method, path, body);
  const adminCall = (method: string, path: string, body?: unknown) => as(admin, method, path, body);

  async function newUser(name: string, admin = false): Promise<void> {
    const res = await adminCall('POST', `/users/${name}`, { admin });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }

  async function tokenFor(name: string, extra: Record<string, unknown> = {}): Promise<{ token: string; id: string }> {
    const res = await adminCall('POST', `/users/${name}/tokens`, extra);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { token: string; id: string };
  }

  /** Two 200s in a row for the same request: the second one is answered with the cached requester. */
  async function warm(token: string, path: string): Promise<void> {
    for (let i = 0; i < 2; i++) expect((await as(token, 'GET', path)).status).toBe(200);
  }

  beforeAll(async () => {
    if (dialect.dbName) await createDatabase(postgresUrl!, dialect.dbName);
    await hub.start();
    const added = await hub.cli(['users', 'add', 'root-admin', '--admin']);
    expect(added.status, added.stderr).toBe(0);
    admin = (await hub.cli(['token', 'root-admin'])).stdout.trim();
    await newUser('alice');
  });
  afterAll(async () => {
    await hub.cleanup();
  });

  it('a revoked token is refused by the next request', async () => {
    const { token, id } = await tokenFor('alice');
    await warm(token, '/user');
    expect((await adminCall('DELETE', `/users/alice/tokens/${id}`)).status).toBe(204);
    expect((await as(token, 'GET', '/user')).status).toBe(403);
  });

  it('an expired token is refused by the next request', async () => {
    const { token } = await tokenFor('alice', { expires_in: 2 });
    await warm(token, '/user');
    await new Promise((r) => setTimeout(r, 2100));
    expect((await as(token, 'GET', '/user')).status).toBe(403);
  });

  it('a deleted user\'s token is refused by the next request', async () => {
    await newUser('bob');
    const { token } = await tokenFor('bob');
    await warm(token, '/user');
    expect((await adminCall('DELETE', '/users/bob')).status).toBe(204);
    expect((await as(token, 'GET', '/user')).status).toBe(403);
  });

  it('a demoted admin\'s token loses the admin scopes at the next request', async () => {
    await newUser('carol', true);
    const { token } = await tokenFor('carol');
    await warm(token, '/users/alice');
    expect((await adminCall('PATCH', '/users/carol', { admin: false })).status).toBe(200);
    expect([403, 404]).toContain((await as(token, 'GET', '/users/alice')).status);
    expect((await as(token, 'POST', '/users/mallory')).status).toBe(403);
  });

  it('leaving a group loses the scopes of the group\'s role at the next request', async () => {
    await newUser('dave');
    expect((await adminCall('POST', '/groups/reading-group/users', { users: ['dave'] })).status).toBe(200);
    const { token } = await tokenFor('dave');
    await warm(token, '/users/alice');
    expect((await adminCall('DELETE', '/groups/reading-group/users', { users: ['dave'] })).status).toBe(200);
    expect([403, 404]).toContain((await as(token, 'GET', '/users/alice')).status);
  });

  it('a renamed user\'s token follows the new name at the next request', async () => {
    await newUser('erin');
    const { token } = await tokenFor('erin');
    await warm(token, '/users/erin');
    expect((await adminCall('PATCH', '/users/erin', { name: 'erin-renamed' })).status).toBe(200);
    const me = await as(token, 'GET', '/users/erin-renamed');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ name: 'erin-renamed' });
  });

  itIf(dialect.dbName === undefined)('a role change written to the DB by another process reaches the next request', async () => {
    const { token } = await tokenFor('frank');
    await warm(token, '/users/alice');
    // What the CLI or another hub does: a write to the state DB, without this hub's knowledge.
    const other = openDatabase({ sqlitePath: hub.sqlitePath });
    try {
      await createStore(other.db).roles.replaceAll([{ name: 'readers', description: '', scopes: ['read:users'], members: [] }]);
    } finally {
      await other.close();
    }
    expect([403, 404]).toContain((await as(token, 'GET', '/users/alice')).status);
  });

  itIf(dialect.dbName === undefined)('repeated requests write nothing to the DB within the activity resolution', async () => {
    const { token } = await tokenFor('alice');
    const db = new SQLite(hub.sqlitePath, { readonly: true });
    try {
      const version = () => db.pragma('data_version', { simple: true }) as number;
      const before = version();
      // The first use records activity for the token and its user; nothing after it within 30 s does.
      expect((await as(token, 'GET', '/users/alice')).status).toBe(200);
      const afterFirst = version();
      expect(afterFirst).not.toBe(before);
      for (let i = 0; i < 20; i++) expect((await as(token, 'GET', '/users/alice')).status).toBe(200);
      expect(version()).toBe(afterFirst);
      // What decides is the stored time, not this process's memory: a restarted hub does not write it again either.
      await hub.stop();
      await hub.start();
      const afterRestart = version();
      expect((await as(token, 'GET', '/users/alice')).status).toBe(200);
      expect(version()).toBe(afterRestart);
    } finally {
      db.close();
    }
  });

  describeIf(dialect.dbName !== undefined)('with a second hub on the same PostgreSQL', () => {
    const second = new HubProcess({ env: { ...baseEnv, ...dbEnv, LABHUB_ROLES: ROLES([]) } });

    afterAll(async () => {
      await second.cleanup();
    });

    it('a revocation and a role change made through the other hub reach this hub\'s next request', async () => {
      const frank = await tokenFor('frank');
      const alice = await tokenFor('alice');
      await warm(frank.token, '/users/alice');
      await warm(alice.token, '/user');
      // The second hub's config leaves frank out of the readers role: it rewrites the roles when it starts.
      await second.start();
      expect([403, 404]).toContain((await as(frank.token, 'GET', '/users/alice')).status);
      expect((await api(second.url, admin, 'DELETE', `/users/alice/tokens/${alice.id}`)).status).toBe(204);
      expect((await as(alice.token, 'GET', '/user')).status).toBe(403);
    });
  });
});
