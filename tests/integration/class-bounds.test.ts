import { randomBytes } from 'node:crypto';
import SQLite from 'better-sqlite3';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userDataNames } from '../../hub/credentials/names.js';
import { accountOf } from '../helpers/accounts.js';
import { bridgeGateway, removeHubObjects } from '../helpers/containers.js';
import { api, Browser, eventually, HubProcess, xsrfFromHtml } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';

/**
 * Issue 16 item 1 against a real hub with the Docker spawner: a teacher whose only power is `groups!group=bio101`
 * tries each escalation of the audit through the REST API and is refused with a 4xx naming the bound, while changes
 * within the bounds go through; a class written straight into the DB before the bounds existed is started without
 * its out-of-bounds grants.
 */
const IMAGE = 'labhub/notebook-debian:latest';
const docker = new Docker();
const engineUp = await docker.ping().then(() => true, () => false);
const ready = requireService('Docker engine', engineUp)
  && requireService(`Docker image ${IMAGE}`, await docker.getImage(IMAGE).inspect().then(() => true, () => false));

type Answer = { status: number; body: unknown };
const messageOf = (res: Answer) => (res.body as { message?: string }).message ?? '';

describe.skipIf(!ready)('class bounds on a real hub', () => {
  const hubId = `test-${randomBytes(4).toString('hex')}`;
  const materials = `${hubId}-bio101-materials`;
  let hub: HubProcess;
  let admin = '';
  let teacher = '';
  let registrar = '';
  /** alice's home volume, found by the labels the spawner gives it (not by restating its name). */
  let aliceHome = '';

  const properties = async () => ((await api(hub.url, admin, 'GET', '/groups/bio101')).body as { properties: Record<string, unknown> }).properties;
  const members = async () => ((await api(hub.url, admin, 'GET', '/groups/bio101')).body as { users: string[] }).users;
  const containerOf = async (user: string) => (await docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${hubId}`, `org.labhub.user=${user}`] } }))[0];

  async function runServer(user: string): Promise<void> {
    const started = await api(hub.url, admin, 'POST', `/users/${user}/server`);
    expect([201, 202], JSON.stringify(started.body)).toContain(started.status);
    await eventually(async () => ((await api(hub.url, admin, 'GET', `/users/${user}`)).body as { servers: Record<string, { ready: boolean }> }).servers['']?.ready, 90_000);
  }

  beforeAll(async () => {
    hub = new HubProcess({
      env: {
        LABHUB_SPAWNER__KIND: 'docker', LABHUB_SPAWNER__DOCKER__IMAGE: IMAGE, LABHUB_SPAWNER__DOCKER__PULL_POLICY: 'never',
        LABHUB_SPAWNER__DOCKER__HUB_ID: hubId, LABHUB_SPAWNER__DOCKER__MEM_LIMIT: '1g',
        // Containers reach the hub on the bridge's address, so the hub listens there.
        LABHUB_HUB__IP: await bridgeGateway(),
        LABHUB_AUTHENTICATOR__KIND: 'dummy', LABHUB_AUTHENTICATOR__PASSWORD: 'test-password',
        LABHUB_CLASSES__SHARED_VOLUMES: JSON.stringify([materials]),
        LABHUB_CLASSES__MAX_CPU_LIMIT: '1',
        LABHUB_CLASSES__MEMBER_GROUPS: '[students]',
        LABHUB_CLASSES__CREDENTIALS__POSTGRES__READ_SCHEMAS: '[shared, course1]',
        LABHUB_ROLES: JSON.stringify([
          { name: 'teacher-bio101', scopes: ['groups!group=bio101'], users: ['tia'] },
          { name: 'registrar', scopes: ['admin:users', 'groups'], users: ['reggie'] },
        ]),
      },
    });
    await hub.start();
    expect((await hub.cli(['users', 'add', 'root', '--admin'])).status).toBe(0);
    admin = (await hub.cli(['token', 'root'])).stdout.trim();
    teacher = (await hub.cli(['token', 'tia'])).stdout.trim();
    registrar = (await hub.cli(['token', 'reggie'])).stdout.trim();
    expect((await api(hub.url, admin, 'POST', '/users', { usernames: ['alice', 'bob', 'carl'] })).status).toBe(201);
    expect((await api(hub.url, admin, 'POST', '/groups/students', { users: ['alice', 'bob'] })).status).toBe(201);
    expect((await api(hub.url, admin, 'POST', '/groups/bio101', { users: ['alice'] })).status).toBe(201);
    // alice's home exists once her server has run; its name is the spawner's business, its labels say whose it is.
    await runServer('alice');
    expect((await api(hub.url, admin, 'DELETE', '/users/alice/server')).status).toBe(204);
    const volumes = (await docker.listVolumes({ filters: { label: [`org.labhub.hub=${hubId}`, 'org.labhub.user=alice'] } })).Volumes ?? [];
    expect(volumes).toHaveLength(1);
    aliceHome = volumes[0]!.Name;
  }, 180_000);

  afterAll(async () => {
    for (const user of ['alice', 'carl']) await api(hub.url, admin, 'DELETE', `/users/${user}/server`).catch(() => undefined);
    await hub.cleanup();
    await removeHubObjects(hubId);
  });

  it('refuses each escalation of a teacher with a 4xx naming the bound, and stores nothing', async () => {
    const before = await properties();
    const profile = (fields: Record<string, unknown>) => ({ profiles: [{ slug: 'python', display_name: 'Python', ...fields }], default_profile: 'python' });
    const attempts: Array<[string, Record<string, unknown>, RegExp]> = [
      ['alice\'s home as shared_volume', { shared_volume: aliceHome }, new RegExp(`shared_volume ${aliceHome} is the home of user alice`)],
      ['a volume the admin did not list', { shared_volume: 'some-other-volume' }, /not in the volumes classes may mount \(classes\.shared_volumes/],
      ['an image outside the allowed list', profile({ image: 'evil/x:1' }), /image evil\/x:1 is not in the images classes may use \(classes\.images/],
      ['alice\'s schema', { credentials: { postgres: { read_schemas: [userDataNames(accountOf(hub, 'alice')).postgresSchema] } } }, /is user alice's own schema/],
      ['mqtt.subscribe #', { credentials: { mqtt: { subscribe: ['#'] } } }, /topic filter # is wider than the ceiling classes may grant \(classes\.credentials\.mqtt\.subscribe/],
      ['Mongo admin', { credentials: { mongodb: { read_databases: ['admin'] } } }, /admin is a MongoDB system database/],
      ['cpu_limit 1024', profile({ cpu_limit: 1024 }), /cpu_limit 1024 is above the most a class may set, 1 CPU \(classes\.max_cpu_limit\)/],
    ];
    for (const [what, body, message] of attempts) {
      const res = await api(hub.url, teacher, 'PUT', '/groups/bio101/properties', body);
      expect(res.status, what).toBe(403);
      expect(res.body, what).toMatchObject({ status: 403, message: expect.stringMatching(message) });
    }
    const malformed = await api(hub.url, teacher, 'PUT', '/groups/bio101/properties', { credentials: { mqtt: { subscribe: 'sensors/#' } } });
    expect(malformed.body).toMatchObject({ status: 400, message: expect.stringMatching(/credentials\.mqtt\.subscribe/) });
    expect(await properties()).toEqual(before);
  });

  it('refuses members a teacher may not add: an admin, a user outside classes.member_groups, themself', async () => {
    for (const [who, message] of [
      ['root', /root is an admin; a class manager cannot add admins/],
      ['carl', /carl is not in the groups a class manager may add users from \(classes\.member_groups: students\)/],
      ['tia', /tia holds roles \(teacher-bio101\)/],
    ] as const) {
      const res = await api(hub.url, teacher, 'POST', '/groups/bio101/users', { users: ['bob', who] });
      expect(res.body, who).toMatchObject({ status: 403, message: expect.stringMatching(message) });
    }
    expect(await members()).toEqual(['alice']);
    // PATCH /users/{name} with groups is another way into a class: the same rule holds for a manager of all groups.
    const patched = await api(hub.url, registrar, 'PATCH', '/users/carl', { groups: ['bio101'] });
    expect(patched.body).toMatchObject({ status: 403, message: expect.stringMatching(/classes\.member_groups/) });
    expect(await members()).toEqual(['alice']);
  });

  it('lets a teacher make changes within the bounds', async () => {
    const within = {
      profiles: [{ slug: 'python', display_name: 'Python', image: IMAGE, cpu_limit: 0.5, mem_limit: '512M' }], default_profile: 'python',
      shared_volume: materials,
      credentials: { mqtt: { subscribe: ['sensors/lab1/#'] }, postgres: { read_schemas: ['course1'] }, mongodb: { read_databases: ['sensors'] } },
    };
    const put = await api(hub.url, teacher, 'PUT', '/groups/bio101/properties', within);
    expect(put.status, messageOf(put)).toBe(200);
    expect(await properties()).toEqual(within);
    expect((await api(hub.url, teacher, 'POST', '/groups/bio101/users', { users: ['bob'] })).status).toBe(200);
    expect(await members()).toEqual(['alice', 'bob']);
    expect((await api(hub.url, teacher, 'DELETE', '/groups/bio101/users', { users: ['bob'] })).status).toBe(200);
    const patched = await api(hub.url, registrar, 'PATCH', '/users/bob', { groups: ['students', 'bio101'] });
    expect(patched.status, `${messageOf(patched)}\n${hub.output.slice(-3000)}`).toBe(200);
    expect(await members()).toEqual(['alice', 'bob']);
  });

  it('shows the bounds on the admin class page and a refused change\'s message there', async () => {
    const browser = new Browser(hub.url);
    await browser.login('root', 'test-password');
    const page = await (await browser.navigate('/hub/admin/classes/bio101')).text();
    expect(page).toContain('classes.shared_volumes');
    expect(page).toContain(materials);
    expect(page).toMatch(/classes\.member_groups[\s\S]*students/);
    const body = new URLSearchParams({ _xsrf: xsrfFromHtml(page), default_profile: 'python', shared_volume: aliceHome }).toString();
    const refused = await browser.navigate('/hub/admin/classes/bio101/settings', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(await refused.text()).toContain(`shared_volume ${aliceHome} is the home of user alice`);
    expect((await properties()).shared_volume).toBe(materials);
  });

  it('starts a class stored before the bounds (straight into the DB) without its out-of-bounds grants', async () => {
    const stored = {
      profiles: [{ slug: 'python', display_name: 'Python', image: 'evil/x:1', cpu_limit: 1024 }], default_profile: 'python',
      shared_volume: aliceHome, credentials: { mqtt: { subscribe: ['#'] }, mongodb: { read_databases: ['admin'] } },
    };
    const db = new SQLite(hub.sqlitePath);
    try {
      db.prepare('UPDATE groups SET properties = ? WHERE name = ?').run(JSON.stringify(stored), 'bio101');
      const ids = db.prepare('SELECT (SELECT id FROM users WHERE name = ?) AS user_id, (SELECT id FROM groups WHERE name = ?) AS group_id').get('carl', 'bio101');
      db.prepare('INSERT INTO user_groups (user_id, group_id) VALUES (@user_id, @group_id)').run(ids);
    } finally {
      db.close();
    }
    await runServer('carl');
    const info = await docker.getContainer((await containerOf('carl'))!.Id).inspect();
    expect(info.Config.Image).toBe(IMAGE);
    expect(info.HostConfig.NanoCpus).toBe(1e9);
    expect(info.Mounts.map((m) => m.Name)).not.toContain(aliceHome);
    expect(hub.output).toMatch(/class grants outside the bounds were not applied/);
    // carl's home page offers the class as the spawn applies it, not as it was stored.
    const browser = new Browser(hub.url);
    await browser.login('carl', 'test-password');
    const home = await (await browser.navigate('/hub/home')).text();
    expect(home).toContain('Python');
    expect(home).not.toContain('evil/x:1');
    expect(home).not.toContain('1024 CPU');
  }, 120_000);
});
