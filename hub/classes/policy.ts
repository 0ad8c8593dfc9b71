import { parseByteSize } from '../../spawners/byte-size.js';
import { policyOverrideSchema, topicFor } from '../credentials/policy.js';
import { filterCovers, filtersOverlap } from '../credentials/topics.js';
import type { ClassBounds } from './bounds.js';
import { parseClassSettings, type ClassRecord } from './profiles.js';

/**
 * "May this class grant this?" and "may this requester change these members?", as pure functions of the request,
 * the admin's bounds (bounds.ts) and the names that belong to users (OwnedNames). Every write of a group's
 * properties or members asks here first, and every spawn applies only what passes here (boundedClasses), so a
 * grant written before the bounds, or one the admin has since narrowed, never reaches a server.
 */

/** Names that belong to one user each, from the product's own naming (the spawner, the credential brokers). */
export interface OwnedNames {
  /** Volume or claim name → the user whose own (home) volume it is. */
  volumes: ReadonlyMap<string, string>;
  /** PostgreSQL schema → its user. */
  schemas: ReadonlyMap<string, string>;
  /** MongoDB database → its user. */
  databases: ReadonlyMap<string, string>;
  /** Every user's own topic filters (the per-user ones of credentials.policy, filled in for that user). */
  topics: ReadonlyArray<{ user: string; filter: string }>;
}

export type Verdict = { allowed: true } | { allowed: false; status: 400 | 403; message: string };

type Path = Array<string | number>;

/** One grant outside the bounds: where it is, why, and what applying the class without it means. */
interface Violation {
  path: Path;
  message: string;
  /** Spawn time: `undefined` removes the grant, a value replaces it (a limit cut to its bound, a flag turned off). */
  replacement?: number | boolean;
}

/** Databases of MongoDB itself (users and their password hashes, the oplog, cluster metadata). */
const SYSTEM_DATABASES = new Set(['admin', 'local', 'config']);

/** Whom a class's grants are applied to: `{user}` and `{uid}` in its topic filters are filled from these. */
export interface Member {
  name: string;
  uid: string;
}

/**
 * Stands for "the member" in `{user}` and `{uid}` at write time: no username or uid equals it (neither has control
 * characters), so a filter that reaches a real user's own topics is caught whoever the members turn out to be.
 */
const ANY_MEMBER: Member = { name: '\u0001member', uid: '\u0001member' };

const ALLOWED: Verdict = { allowed: true };
const refused = (status: 400 | 403, message: string): Verdict => ({ allowed: false, status, message });

function cpus(n: number): string {
  return `${n} CPU${n === 1 ? '' : 's'}`;
}

function bytes(n: number): string {
  for (const [unit, size] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) if (n >= size && n % size === 0) return `${n / size}${unit}`;
  return `${n} bytes`;
}

const listed = (values: readonly string[]) => (values.length ? values.join(', ') : 'none');

/**
 * The grants of one class's properties that lie outside the bounds. `member` is whom they are applied to (spawn
 * time); at write time it is any member at all. Assumes the properties have the right shape (parseClassSettings).
 */
function violations(properties: Record<string, unknown>, bounds: ClassBounds, owned: OwnedNames, member: Member): Violation[] {
  const found: Violation[] = [];
  const parsed = parseClassSettings(properties);
  const settings = 'settings' in parsed ? parsed.settings : {};
  (settings.profiles ?? []).forEach((profile, i) => {
    const where = `profile ${profile.slug}`;
    if (profile.image !== undefined && !bounds.images.includes(profile.image)) {
      found.push({ path: ['profiles', i, 'image'], message: `${where}: image ${profile.image} is not in the images classes may use (classes.images: ${listed(bounds.images)})` });
    }
    if (profile.cpu_limit !== undefined && profile.cpu_limit > bounds.maxCpuLimit) {
      found.push({ path: ['profiles', i, 'cpu_limit'], replacement: bounds.maxCpuLimit, message: `${where}: cpu_limit ${profile.cpu_limit} is above the most a class may set, ${cpus(bounds.maxCpuLimit)} (classes.max_cpu_limit)` });
    }
    if (profile.mem_limit !== undefined && parseByteSize(profile.mem_limit) > bounds.maxMemLimit) {
      found.push({ path: ['profiles', i, 'mem_limit'], replacement: bounds.maxMemLimit, message: `${where}: mem_limit ${profile.mem_limit} is above the most a class may set, ${bytes(bounds.maxMemLimit)} (classes.max_mem_limit)` });
    }
  });
  const volume = settings.shared_volume;
  if (volume !== undefined) {
    const owner = owned.volumes.get(volume);
    if (owner !== undefined) found.push({ path: ['shared_volume'], message: `shared_volume ${volume} is the home of user ${owner}; no class may mount a user's own volume` });
    else if (!bounds.sharedVolumes.includes(volume)) found.push({ path: ['shared_volume'], message: `shared_volume ${volume} is not in the volumes classes may mount (classes.shared_volumes: ${listed(bounds.sharedVolumes)})` });
  }
  const credentials = policyOverrideSchema.safeParse(properties.credentials ?? {});
  if (credentials.success) found.push(...credentialViolations(credentials.data, bounds, owned, member));
  return found;
}

type Override = ReturnType<typeof policyOverrideSchema.parse>;

function credentialViolations(grant: Override, bounds: ClassBounds, owned: OwnedNames, member: Member): Violation[] {
  const found: Violation[] = [];
  const ceiling = bounds.credentials;
  for (const kind of ['subscribe', 'publish'] as const) {
    const key = `credentials.mqtt.${kind}`;
    (grant.mqtt?.[kind] ?? []).forEach((filter, i) => {
      const path = ['credentials', 'mqtt', kind, i];
      if (!ceiling.mqtt[kind].some((c) => filterCovers(c, filter))) {
        found.push({ path, message: `${key}: topic filter ${filter} is wider than the ceiling classes may grant (classes.${key}: ${listed(ceiling.mqtt[kind])})` });
        return;
      }
      let filled: string;
      try {
        filled = topicFor(filter, member);
      } catch (err) {
        found.push({ path, message: `${key}: ${(err as Error).message}` });
        return;
      }
      const reached = owned.topics.find((t) => t.user !== member.name && filtersOverlap(filled, t.filter));
      if (reached) found.push({ path, message: `${key}: topic filter ${filter} reaches ${reached.filter}, user ${reached.user}'s own topics; no class may grant them` });
    });
  }
  (grant.postgres?.read_schemas ?? []).forEach((schema, i) => {
    const path = ['credentials', 'postgres', 'read_schemas', i];
    const owner = owned.schemas.get(schema);
    if (owner !== undefined) found.push({ path, message: `credentials.postgres.read_schemas: ${schema} is user ${owner}'s own schema; no class may grant it` });
    else if (!ceiling.postgres.read_schemas.includes(schema)) {
      found.push({ path, message: `credentials.postgres.read_schemas: ${schema} is not in the schemas classes may grant (classes.credentials.postgres.read_schemas: ${listed(ceiling.postgres.read_schemas)})` });
    }
  });
  (grant.mongodb?.read_databases ?? []).forEach((database, i) => {
    const path = ['credentials', 'mongodb', 'read_databases', i];
    const owner = owned.databases.get(database);
    if (SYSTEM_DATABASES.has(database)) found.push({ path, message: `credentials.mongodb.read_databases: ${database} is a MongoDB system database; no class may grant it` });
    else if (owner !== undefined) found.push({ path, message: `credentials.mongodb.read_databases: ${database} is user ${owner}'s own database; no class may grant it` });
    else if (!ceiling.mongodb.read_databases.includes(database)) {
      found.push({ path, message: `credentials.mongodb.read_databases: ${database} is not in the databases classes may grant (classes.credentials.mongodb.read_databases: ${listed(ceiling.mongodb.read_databases)})` });
    }
  });
  if (grant.postgres?.own_schema && !ceiling.postgres.own_schema) {
    found.push({ path: ['credentials', 'postgres', 'own_schema'], replacement: false, message: 'credentials.postgres.own_schema: classes may not grant own schemas (classes.credentials.postgres.own_schema: false)' });
  }
  if (grant.mongodb?.own_database && !ceiling.mongodb.own_database) {
    found.push({ path: ['credentials', 'mongodb', 'own_database'], replacement: false, message: 'credentials.mongodb.own_database: classes may not grant own databases (classes.credentials.mongodb.own_database: false)' });
  }
  const connections = grant.postgres?.connection_limit;
  if (connections !== undefined && connections > ceiling.postgres.connection_limit) {
    found.push({
      path: ['credentials', 'postgres', 'connection_limit'], replacement: ceiling.postgres.connection_limit,
      message: `credentials.postgres.connection_limit: ${connections} is above the most a class may grant, ${ceiling.postgres.connection_limit} (classes.credentials.postgres.connection_limit)`,
    });
  }
  return found;
}

/**
 * Whether properties may be stored on a class: the right shape (else 400), and every grant within the bounds
 * (else 403 naming the first bound hit). The same for admins and class managers: the bounds are what any server
 * may receive; an admin changes them in the configuration, not through a class.
 */
export function checkClassGrants(properties: Record<string, unknown>, bounds: ClassBounds, owned: OwnedNames): Verdict {
  const shape = parseClassSettings(properties);
  if ('problem' in shape) return refused(400, shape.problem);
  if (properties.credentials !== undefined) {
    const credentials = policyOverrideSchema.safeParse(properties.credentials);
    if (!credentials.success) {
      const issue = credentials.error.issues[0]!;
      const detail = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
      return refused(400, `Invalid class properties: credentials.${issue.path.join('.')}: ${detail}`);
    }
  }
  const [first] = violations(properties, bounds, owned, ANY_MEMBER);
  return first ? refused(403, first.message) : ALLOWED;
}

/** A copy of `value` with the violating grants removed or replaced; list entries are removed from the back. */
function repaired(value: Record<string, unknown>, found: Violation[]): Record<string, unknown> {
  const copy = structuredClone(value);
  const index = (v: Violation) => { const last = v.path.at(-1); return typeof last === 'number' ? last : -1; };
  const ordered = [...found].sort((a, b) => index(b) - index(a));
  for (const { path, replacement } of ordered) {
    let parent: unknown = copy;
    for (const key of path.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[key];
    const last = path.at(-1)!;
    if (replacement !== undefined) (parent as Record<string | number, unknown>)[last] = replacement;
    else if (Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1);
    else delete (parent as Record<string | number, unknown>)[last];
  }
  return copy;
}

/**
 * The member's classes as a spawn may apply them: every grant outside the current bounds taken out (a limit cut to
 * its bound), whenever and by whomever it was written. `dropped` says what was taken out, for the log.
 */
export function boundedClasses(classes: readonly ClassRecord[], bounds: ClassBounds, owned: OwnedNames, member: Member): { classes: ClassRecord[]; dropped: string[] } {
  const dropped: string[] = [];
  const out = classes.map((record) => {
    let properties: unknown;
    try {
      properties = JSON.parse(record.properties);
    } catch {
      return { ...record, properties: '{}' };
    }
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) return { ...record, properties: '{}' };
    const value = properties as Record<string, unknown>;
    if (value.credentials !== undefined && !policyOverrideSchema.safeParse(value.credentials).success) {
      dropped.push(`class ${record.name}: credentials are malformed`);
      delete value.credentials;
    }
    const found = violations(value, bounds, owned, member);
    dropped.push(...found.map((v) => `class ${record.name}: ${v.message}`));
    return { ...record, properties: JSON.stringify(found.length ? repaired(value, found) : value) };
  });
  return { classes: out, dropped };
}

/** A user a membership change would add, as the policy needs to see them. */
export interface Candidate {
  name: string;
  admin: boolean;
  /** Roles held directly (from the configuration); the built-in `user` role is not one. */
  roles: readonly string[];
  /** Groups the user is in now. */
  groups: readonly string[];
}

export interface MembershipChange {
  /** An admin of classes holds unfiltered admin:groups; anyone else who may write members is a class manager. */
  requester: { classAdmin: boolean };
  group: { name: string; roles: readonly string[] };
  add: readonly Candidate[];
  remove: readonly string[];
}

/**
 * Whether a requester may make this membership change. An admin of classes may add anyone (what a membership
 * grants is bounded anyway). A class manager may not change the members of a group that carries roles (joining it
 * grants the roles' scopes), may remove members, and may add only users who are neither admins nor holders of
 * roles and who are already in one of classes.member_groups. The requester is no exception: a teacher who is not
 * in those groups cannot add themself, so managing a class never makes its manager a member of it.
 */
export function checkMembershipChange(change: MembershipChange, bounds: ClassBounds): Verdict {
  if (change.requester.classAdmin || (!change.add.length && !change.remove.length)) return ALLOWED;
  const { group } = change;
  if (group.roles.length) {
    return refused(403, `${group.name} carries roles (${group.roles.join(', ')}) that its members receive; only an admin (unfiltered admin:groups) changes its members`);
  }
  for (const user of change.add) {
    if (user.admin) return refused(403, `${user.name} is an admin; a class manager cannot add admins to a class`);
    if (user.roles.length) return refused(403, `${user.name} holds roles (${user.roles.join(', ')}); a class manager cannot add users with roles of their own to a class`);
    if (!user.groups.some((g) => bounds.memberGroups.includes(g))) {
      return refused(403, `${user.name} is not in the groups a class manager may add users from (classes.member_groups: ${listed(bounds.memberGroups)})`);
    }
  }
  return ALLOWED;
}
