import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type OpenedDatabase } from '../../hub/db/database.js';
import { createStore, type Store } from '../../hub/db/index.js';
import type { UserRow } from '../../hub/db/schema.js';
import { USER_UID } from '../../hub/db/user-uid.js';
import { identifierSlug, userDataNames } from '../../hub/credentials/names.js';
import { policySchema, resolvePolicy } from '../../hub/credentials/policy.js';
import { oauthClientId } from '../../hub/servers/naming.js';
import { singleUserEnvironment } from '../../hub/servers/environment.js';
import { containerName, homeVolumeName } from '../../spawners/docker.js';
import { serverNames } from '../../spawners/kubernetes/names.js';
import { homeDirName, uidDirName } from '../../spawners/local.js';

/** Every name the hub and its spawners derive for one account (default and `lab` servers), by namespace. */
function derivedNames(user: UserRow): Record<string, string[]> {
  const key = { name: user.name, uid: user.uid, legacyName: user.legacy_name };
  const data = userDataNames(key);
  const k8s = [serverNames('labhub', key, ''), serverNames('labhub', key, 'lab')];
  return {
    postgresRoles: [data.postgresOwner],
    postgresSchemas: [data.postgresSchema],
    mongoDatabases: [data.mongoDatabase],
    dockerContainers: [containerName('labhub', key, ''), containerName('labhub', key, 'lab')],
    dockerVolumes: [homeVolumeName('labhub', key)],
    podsAndSecrets: k8s.flatMap((n) => [n.pod, n.secret]),
    claims: k8s.map((n) => n.pvc),
    localDirectories: [homeDirName(key), uidDirName(key)],
    oauthClients: [oauthClientId(user.uid, ''), oauthClientId(user.uid, 'lab')],
    mqttTopics: resolvePolicy(policySchema.parse({}), [], user.name, user.uid).mqtt.publish,
  };
}

/** No name is shared within a namespace (a directory may share its text with a schema: they never meet). */
function expectDisjoint(a: Record<string, string[]>, b: Record<string, string[]>): void {
  const shared = Object.entries(a).flatMap(([namespace, names]) => names.filter((n) => b[namespace]!.includes(n)).map((n) => `${namespace}: ${n}`));
  expect(shared).toEqual([]);
}

describe('one identity per account', () => {
  let opened: OpenedDatabase;
  let store: Store;

  beforeEach(async () => {
    opened = openDatabase({ sqlitePath: ':memory:' });
    await migrate(opened.db, opened.dialect);
    store = createStore(opened.db);
  });
  afterEach(() => opened.close());

  it('gives each account a well-formed, unique uid', async () => {
    const users = [await store.users.create('one'), ...(await store.users.createMany(['two', 'three'], false))];
    for (const u of users) expect(u.uid).toMatch(USER_UID);
    expect(new Set(users.map((u) => u.uid)).size).toBe(3);
    expect(users.every((u) => u.legacy_name === null)).toBe(true);
  });

  it('alice.smith and alice_smith_634258 share no derived name, though their slugs are equal', async () => {
    expect(identifierSlug('alice.smith')).toBe('alice_smith_634258');
    const first = await store.users.create('alice.smith');
    const second = await store.users.create('alice_smith_634258');
    expectDisjoint(derivedNames(first), derivedNames(second));
  });

  it('a deleted account\'s successor of the same name shares no derived name with it', async () => {
    const old = await store.users.create('eve');
    await store.users.delete(old.id);
    const successor = await store.users.create('eve');
    expect(successor.uid).not.toBe(old.uid);
    expectDisjoint(derivedNames(old), derivedNames(successor));
  });

  it('a renamed account keeps its uid, so its data follows it', async () => {
    const user = await store.users.create('bob');
    const renamed = await store.users.update(user.id, { name: 'robert' });
    expect(renamed.uid).toMatch(USER_UID);
    expect(renamed.uid).toBe(user.uid);
  });

  it('user j\'s server smith and user j-smith\'s default server get different OAuth client ids', async () => {
    const j = await store.users.create('j');
    const jSmith = await store.users.create('j-smith');
    // What each server is told its client id is (and uses as its cookie name).
    const clientOf = (user: UserRow, server: string) => singleUserEnvironment({
      user: user.name, uid: user.uid, server, apiToken: 't', hubConnectUrl: 'http://hub:8081', accessScopes: [], clientAllowedScopes: [],
    }).JUPYTERHUB_CLIENT_ID;
    expect(clientOf(j, 'smith')).not.toBe(clientOf(jSmith, ''));
    expect(clientOf(j, 'smith')).toBe(oauthClientId(j.uid, 'smith'));
    // The prefix jupyterhub-singleuser expects stays.
    expect(clientOf(j, 'smith')).toMatch(/^jupyterhub-user-/);
  });

  it('no new account can take a name an account from before uids kept, whatever the two are called', async () => {
    const fresh = await store.users.create('newcomer');
    // Legacy accounts named like the newcomer, like its uid, and like the uid-derived names themselves.
    for (const legacyName of ['newcomer', fresh.uid, `u_${fresh.uid}`, `home_${fresh.uid}`, `-${fresh.uid}`, `@${fresh.uid}`]) {
      const legacy = { ...fresh, id: 0, uid: 'aaaaaaaaaaaa', name: legacyName, legacy_name: legacyName };
      expectDisjoint(derivedNames(fresh), derivedNames(legacy));
    }
  });
});
