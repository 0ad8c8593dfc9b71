import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../hub/config/schema.js';
import { classBounds, parseQuantity, type ClassBounds } from '../../hub/classes/bounds.js';
import { boundedClasses, checkClassGrants, checkMembershipChange, type Candidate, type OwnedNames } from '../../hub/classes/policy.js';
import { resolveProfile } from '../../hub/classes/profiles.js';
import { userDataNames } from '../../hub/credentials/names.js';
import { isPerUserTopic, resolvePolicy, topicFor } from '../../hub/credentials/policy.js';
import { filterCovers, filtersOverlap } from '../../hub/credentials/topics.js';
import { DockerSpawner } from '../../spawners/docker.js';
import { KubernetesSpawner } from '../../spawners/kubernetes.js';
import type { Spawner } from '../../spawners/spawner.js';
import { accountKey } from '../helpers/accounts.js';

/**
 * The class policy as a teacher holding only `groups!group=bio101` would try it: each attack of issue 16 item 1
 * against bounds made by the product from config, and user-owned names made by the product's own naming.
 */
const USERS = ['alice', 'bob', 'teacher'];
/** A user's account as the hub's users table gives it (name and uid). */
const account = (name: string) => ({ name, ...accountKey(name) });

function configWith(classes: Record<string, unknown> = {}, spawner: Record<string, unknown> = { kind: 'docker' }) {
  return configSchema.parse({ spawner, classes });
}

/** The names each user owns, as the hub computes them (ClassGuard.ownedNames), from the spawner and the brokers' naming. */
function ownedBy(spawner: Pick<Spawner, 'userVolumes'>, bounds = configWith()): OwnedNames {
  const perUser = [...bounds.credentials.policy.mqtt.subscribe, ...bounds.credentials.policy.mqtt.publish].filter(isPerUserTopic);
  return {
    volumes: new Map(USERS.flatMap((u) => spawner.userVolumes!(account(u)).map((v) => [v, u] as const))),
    schemas: new Map(USERS.map((u) => [userDataNames(account(u)).postgresSchema, u])),
    databases: new Map(USERS.map((u) => [userDataNames(account(u)).mongoDatabase, u])),
    topics: USERS.flatMap((u) => perUser.map((filter) => ({ user: u, filter: topicFor(filter, account(u)) }))),
  };
}

const docker = new DockerSpawner({ image: 'labhub/notebook-debian:latest', allowedImages: ['labhub/r:1'], volumes: [{ source: 'scratch-{username}', target: '/scratch' }] });
const dockerOwned = ownedBy(docker);
const bounds: ClassBounds = classBounds(configWith({ shared_volumes: ['class-bio101-materials'] }, { kind: 'docker', docker: { allowed_images: ['labhub/r:1'] } }));

function verdict(properties: Record<string, unknown>, b = bounds, owned = dockerOwned) {
  return checkClassGrants(properties, b, owned);
}

const profile = (fields: Record<string, unknown>) => ({ profiles: [{ slug: 'python', display_name: 'Python', ...fields }] });

describe('MQTT topic filters as sets', () => {
  it.each([
    ['sensors/#', 'sensors/#', true], ['sensors/#', 'sensors/lab1/+', true], ['sensors/#', 'sensors', true],
    ['sensors/+', 'sensors/a', true], ['sensors/+', 'sensors/a/b', false], ['sensors/#', '#', false],
    ['sensors/#', 'sensors2/x', false], ['sensors/+/t', 'sensors/#', false], ['+/+', '+/#', false], ['#', 'anything/at/all', true],
    ['users/{user}/#', 'users/{user}/data', true], ['users/{user}/#', 'users/bob/#', false],
  ])('%s covers %s: %s', (outer, inner, expected) => {
    expect(filterCovers(outer, inner)).toBe(expected);
  });

  it.each([
    ['#', 'users/bob/x', true], ['users/+/status', 'users/bob/#', true], ['users/bob', 'users/bob/#', true],
    ['sensors/#', 'users/bob/#', false], ['users/alice/#', 'users/bob/#', false], ['a/b', 'a/b/c', false], ['+', 'a/b', false],
  ])('%s overlaps %s: %s', (a, b, expected) => {
    expect(filtersOverlap(a, b)).toBe(expected);
  });
});

describe('bounds from the configuration', () => {
  it('default to the spawner\'s images and limits, no shared volumes, the credential defaults as ceiling, no member groups', () => {
    const b = classBounds(configWith({}, { kind: 'docker', docker: { image: 'lab/base:1', allowed_images: ['lab/r:1'], cpu_limit: 1.5, mem_limit: '3g' } }));
    expect(b).toMatchObject({ images: ['lab/base:1', 'lab/r:1'], sharedVolumes: [], maxCpuLimit: 1.5, maxMemLimit: 3 * 1024 ** 3, memberGroups: [] });
    expect(b.credentials).toEqual(configWith().credentials.policy);
    const kube = classBounds(configWith({}, { kind: 'kubernetes', kubernetes: { image: 'lab/k:1', resources: { limits: { cpu: '500m', memory: '2Gi' } } } }));
    expect(kube).toMatchObject({ images: ['lab/k:1'], maxCpuLimit: 0.5, maxMemLimit: 2 * 1024 ** 3 });
    expect(classBounds(configWith())).toMatchObject({ maxCpuLimit: 2, maxMemLimit: 4 * 1024 ** 3 });
    expect(parseQuantity('1.5G')).toBe(1.5e9);
  });

  it('take what the admin sets, key by key for the credentials ceiling', () => {
    const b = classBounds(configWith({ images: ['x/y:1'], max_cpu_limit: 8, max_mem_limit: '16G', credentials: { postgres: { read_schemas: ['shared', 'course1'] } }, member_groups: ['students'] }));
    expect(b).toMatchObject({ images: ['x/y:1'], maxCpuLimit: 8, maxMemLimit: 16 * 1024 ** 3, memberGroups: ['students'] });
    expect(b.credentials.postgres.read_schemas).toEqual(['shared', 'course1']);
    expect(b.credentials.mqtt.subscribe).toEqual(['sensors/#']);
    expect(() => configWith({ shared_volumes: ['../etc'] })).toThrow();
  });
});

describe('what a class may grant', () => {
  it('allows grants within the bounds', () => {
    expect(verdict({
      ...profile({ image: 'labhub/r:1', cpu_limit: 2, mem_limit: '4G' }), default_profile: 'python', shared_volume: 'class-bio101-materials',
      credentials: { mqtt: { subscribe: ['sensors/lab1/#'], publish: ['users/{uid}/results/#'] }, postgres: { read_schemas: ['shared'], connection_limit: 5 }, mongodb: { read_databases: ['sensors'] } },
      colour: 'green',
    })).toEqual({ allowed: true });
  });

  it.each([
    ['another user\'s home volume as shared_volume', { shared_volume: docker.userVolumes(account('bob'))[0] }, /home of user bob/],
    ['another user\'s templated volume', { shared_volume: docker.userVolumes(account('bob'))[1] }, /home of user bob/],
    ['a volume the admin did not list', { shared_volume: 'someone-elses-data' }, /not in the volumes classes may mount \(classes\.shared_volumes/],
    ['an image outside the list', profile({ image: 'evil/x' }), /image evil\/x is not in the images classes may use \(classes\.images/],
    ['cpu_limit 1024', profile({ cpu_limit: 1024 }), /cpu_limit 1024 is above the most a class may set, 2 CPUs \(classes\.max_cpu_limit\)/],
    ['a memory limit above the bound', profile({ mem_limit: '1T' }), /mem_limit 1T is above .* \(classes\.max_mem_limit\)/],
    ['another user\'s schema', { credentials: { postgres: { read_schemas: [userDataNames(account('bob')).postgresSchema] } } }, /is user bob's own schema/],
    ['a schema beyond the ceiling', { credentials: { postgres: { read_schemas: ['payroll'] } } }, /payroll is not in the schemas classes may grant \(classes\.credentials\.postgres\.read_schemas/],
    ['MQTT subscribe #', { credentials: { mqtt: { subscribe: ['#'] } } }, /topic filter # is wider than the ceiling classes may grant \(classes\.credentials\.mqtt\.subscribe/],
    ['MQTT + above the ceiling', { credentials: { mqtt: { subscribe: ['+/#'] } } }, /wider than the ceiling/],
    ['publishing to another user\'s topics', { credentials: { mqtt: { publish: [topicFor(configWith().credentials.policy.mqtt.publish[0]!, account('bob'))] } } }, /wider than the ceiling/],
    ['Mongo admin database', { credentials: { mongodb: { read_databases: ['admin'] } } }, /admin is a MongoDB system database/],
    ['another user\'s Mongo database', { credentials: { mongodb: { read_databases: [userDataNames(account('bob')).mongoDatabase] } } }, /user bob's own database/],
    ['more connections than the ceiling', { credentials: { postgres: { connection_limit: 1000 } } }, /classes\.credentials\.postgres\.connection_limit/],
  ])('refuses %s with a 403 naming the bound', (_, properties, message) => {
    const result = verdict(properties);
    expect(result.allowed).toBe(false);
    expect(result).toMatchObject({ status: 403, message: expect.stringMatching(message) });
  });

  it('refuses a user\'s home even when the admin lists it, and a Kubernetes home claim as a shared claim', () => {
    const home = docker.userVolumes(account('alice'))[0]!;
    expect(verdict({ shared_volume: home }, classBounds(configWith({ shared_volumes: [home] })))).toMatchObject({ status: 403, message: expect.stringMatching(/home of user alice/) });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const kube = new KubernetesSpawner({ kubeConfig, namespace: 'lab', pod: { image: 'x' } });
    const claim = kube.userVolumes(account('bob'))[0]!;
    expect(verdict({ shared_volume: claim }, classBounds(configWith({ shared_volumes: [claim] })), ownedBy(kube))).toMatchObject({ status: 403, message: expect.stringMatching(/home of user bob/) });
  });

  it('refuses a topic filter within a wide ceiling when it reaches another user\'s own topics, and a schema the admin listed that is a user\'s', () => {
    const wide = classBounds(configWith({ credentials: { mqtt: { subscribe: ['#'] }, postgres: { read_schemas: ['shared', userDataNames(account('bob')).postgresSchema] } } }));
    expect(verdict({ credentials: { mqtt: { subscribe: ['sensors/#'] } } }, wide)).toEqual({ allowed: true });
    expect(verdict({ credentials: { mqtt: { subscribe: ['users/+/status'] } } }, wide)).toMatchObject({ status: 403, message: expect.stringMatching(/reaches users\/\w+\/#, user \w+'s own topics/) });
    expect(verdict({ credentials: { postgres: { read_schemas: [userDataNames(account('bob')).postgresSchema] } } }, wide)).toMatchObject({ status: 403, message: expect.stringMatching(/user bob's own schema/) });
  });

  it('answers 400 for a malformed class or credentials property', () => {
    expect(verdict({ shared_volume: '/etc' })).toMatchObject({ status: 400, message: expect.stringMatching(/shared_volume/) });
    expect(verdict({ credentials: { mqtt: { subscribe: 'sensors/#' } } })).toMatchObject({ status: 400, message: expect.stringMatching(/credentials\.mqtt\.subscribe/) });
    expect(verdict({ credentials: { vault: {} } })).toMatchObject({ status: 400, message: expect.stringMatching(/unknown field\(s\) vault/) });
  });
});

describe('what a spawn applies', () => {
  it('takes out every grant beyond the current bounds, whenever it was written, and keeps the rest', () => {
    const stored = {
      name: 'bio101',
      properties: JSON.stringify({
        profiles: [{ slug: 'python', display_name: 'Python', image: 'evil/x', cpu_limit: 1024, mem_limit: '512M' }], default_profile: 'python',
        shared_volume: docker.userVolumes(account('bob'))[0],
        credentials: {
          mqtt: { subscribe: ['#', 'sensors/lab1/#'], publish: ['users/{uid}/#'] },
          postgres: { read_schemas: [userDataNames(account('bob')).postgresSchema, 'shared'] }, mongodb: { read_databases: ['admin'] },
        },
      }),
    };
    const { classes, dropped } = boundedClasses([stored], bounds, dockerOwned, account('teacher'));
    expect(dropped).toHaveLength(6);
    const resolved = resolveProfile(classes, {}, '/home/jovyan/shared');
    expect(resolved).toEqual({ id: 'bio101/python', cpuLimit: 2, memLimit: 512 * 1024 ** 2 });
    const policy = resolvePolicy(configWith().credentials.policy, classes.map((c) => ({ name: c.name, properties: JSON.parse(c.properties) as Record<string, unknown> })), 'teacher', account('teacher').uid);
    expect(policy.mqtt).toEqual({ subscribe: ['sensors/lab1/#'], publish: [topicFor('users/{uid}/#', account('teacher'))] });
    expect(policy.postgres.read_schemas).toEqual(['shared']);
    expect(policy.mongodb.read_databases).toEqual([]);
  });

  it('leaves a class within the bounds as it is', () => {
    const fine = { name: 'chem', properties: JSON.stringify({ ...profile({ cpu_limit: 1 }), shared_volume: 'class-bio101-materials' }) };
    expect(boundedClasses([fine], bounds, dockerOwned, account('alice'))).toEqual({ classes: [fine], dropped: [] });
  });
});

describe('who a class manager may add', () => {
  const student = (name: string, extra: Partial<Candidate> = {}): Candidate => ({ name, admin: false, roles: [], groups: ['students'], ...extra });
  const withStudents = classBounds(configWith({ member_groups: ['students'] }));
  const manager = { classAdmin: false };
  const change = (add: Candidate[], extra: { remove?: string[]; roles?: string[]; requester?: { classAdmin: boolean } } = {}) =>
    checkMembershipChange({ requester: extra.requester ?? manager, group: { name: 'bio101', roles: extra.roles ?? [] }, add, remove: extra.remove ?? [] }, withStudents);

  it('allows adding users of classes.member_groups and removing anyone', () => {
    expect(change([student('alice')])).toEqual({ allowed: true });
    expect(change([], { remove: ['root'] })).toEqual({ allowed: true });
  });

  it.each([
    ['an admin', student('root', { admin: true }), /root is an admin; a class manager cannot add admins/],
    ['a user outside the allowed set', student('bob', { groups: ['staff'] }), /bob is not in the groups a class manager may add users from \(classes\.member_groups: students\)/],
    ['a user holding roles', student('helpdesk', { roles: ['user-admins'] }), /holds roles \(user-admins\)/],
    ['themself, not being in the allowed set', student('teacher', { groups: ['bio101'] }), /teacher is not in the groups/],
  ])('refuses %s', (_, candidate, message) => {
    expect(change([student('alice'), candidate])).toMatchObject({ allowed: false, status: 403, message: expect.stringMatching(message) });
  });

  it('refuses any change to a group that carries roles, and nobody is addable when no member group is set', () => {
    expect(change([student('alice')], { roles: ['graders'] })).toMatchObject({ status: 403, message: expect.stringMatching(/carries roles \(graders\)/) });
    expect(checkMembershipChange({ requester: manager, group: { name: 'bio101', roles: [] }, add: [student('alice')], remove: [] }, bounds))
      .toMatchObject({ status: 403, message: expect.stringMatching(/classes\.member_groups: none/) });
  });

  it('lets an admin of classes add anyone', () => {
    expect(change([student('root', { admin: true, groups: [] })], { requester: { classAdmin: true }, roles: ['graders'] })).toEqual({ allowed: true });
  });
});
