import type { Store } from '../db/index.js';
import type { GroupRow, UserRow } from '../db/schema.js';
import type { Requester } from '../auth/identity.js';
import type { Logger } from '../log.js';
import type { Spawner } from '../../spawners/spawner.js';
import { HttpError } from '../errors.js';
import { userDataNames } from '../credentials/names.js';
import { isPerUserTopic, topicFor, type CredentialPolicy } from '../credentials/policy.js';
import type { ClassBounds } from './bounds.js';
import type { ClassRecord } from './profiles.js';
import { boundedClasses, checkClassGrants, checkMembershipChange, type OwnedNames, type Verdict } from './policy.js';

export interface ClassGuardDeps {
  store: Store;
  spawner: Pick<Spawner, 'userVolumes'>;
  bounds: ClassBounds;
  /** credentials.policy: its per-user topic filters (`{user}`) name every user's own topics. */
  credentialDefaults: CredentialPolicy;
  log: Logger;
}

const ALL_USERS = 1_000_000_000;

/** A user a form is about to create. */
export interface NewMember {
  id?: undefined;
  name: string;
  admin: boolean;
}

function enforce(verdict: Verdict): void {
  if (!verdict.allowed) throw new HttpError(verdict.status, verdict.message);
}

/**
 * The class policy (policy.ts) fed with what the hub knows: the stored users, named by the spawner and the
 * credential brokers' own naming functions. Handlers call it before they write; the server manager before it spawns.
 */
export class ClassGuard {
  constructor(private readonly deps: ClassGuardDeps) {}

  get bounds(): ClassBounds {
    return this.deps.bounds;
  }

  /** Every user's own volumes, schema, database and topics, read at each check so a new user counts at once. */
  async ownedNames(store: Store = this.deps.store): Promise<OwnedNames> {
    const { rows } = await store.users.list({ offset: 0, limit: ALL_USERS, sort: 'id', descending: false });
    const volumes = new Map<string, string>();
    const schemas = new Map<string, string>();
    const databases = new Map<string, string>();
    const topics: Array<{ user: string; filter: string }> = [];
    const perUser = [...this.deps.credentialDefaults.mqtt.subscribe, ...this.deps.credentialDefaults.mqtt.publish].filter(isPerUserTopic);
    for (const { name, uid, legacy_name: legacyName } of rows) {
      for (const volume of this.deps.spawner.userVolumes?.({ name, uid, legacyName }) ?? []) volumes.set(volume, name);
      const data = userDataNames({ name, uid, legacyName });
      schemas.set(data.postgresSchema, name);
      databases.set(data.mongoDatabase, name);
      // A name with an MQTT wildcard gets no per-user topics at all (resolvePolicy refuses it).
      for (const filter of perUser) if (!/[+#]/.test(name)) topics.push({ user: name, filter: topicFor(filter, { name, uid }) });
    }
    return { volumes, schemas, databases, topics };
  }

  /** Throws 400 for a malformed class, 403 naming the bound for a grant beyond the bounds. */
  async checkProperties(properties: Record<string, unknown>, store: Store = this.deps.store): Promise<void> {
    enforce(checkClassGrants(properties, this.deps.bounds, await this.ownedNames(store)));
  }

  /**
   * Throws 403 naming the rule when the requester may not add `add` to (or remove `remove` from) the group. An entry
   * of `add` without an id is a user about to be created (no roles, no groups yet).
   */
  async checkMembers(requester: Requester, group: GroupRow, add: ReadonlyArray<NewMember | UserRow>, remove: readonly UserRow[], store: Store = this.deps.store): Promise<void> {
    const classAdmin = requester.scopes.get('admin:groups') === 'all';
    if (classAdmin || (!add.length && !remove.length)) return;
    const ids = add.flatMap((u) => (u.id === undefined ? [] : [u.id]));
    const [groupRoles, userRoles, userGroups] = await Promise.all([
      store.roles.rolesOf('group', [group.id]), store.roles.rolesOf('user', ids), store.users.groupsOf(ids),
    ]);
    enforce(checkMembershipChange({
      requester: { classAdmin },
      group: { name: group.name, roles: groupRoles.get(group.id) ?? [] },
      add: add.map((u) => ({
        name: u.name, admin: Boolean(u.admin),
        roles: u.id === undefined ? [] : userRoles.get(u.id) ?? [], groups: u.id === undefined ? [] : userGroups.get(u.id) ?? [],
      })),
      remove: remove.map((u) => u.name),
    }, this.deps.bounds));
  }

  /**
   * The user's classes with every grant outside the current bounds taken out. A spawn (`forSpawn`) logs what was
   * taken out; the home page, which shows the same profiles, does not repeat it at every view.
   */
  async classesFor(user: UserRow, { forSpawn = false } = {}): Promise<ClassRecord[]> {
    const rows = await this.deps.store.groups.ofUser(user.id);
    if (!rows.length) return [];
    const { classes, dropped } = boundedClasses(rows, this.deps.bounds, await this.ownedNames(), { name: user.name, uid: user.uid });
    if (forSpawn && dropped.length) this.deps.log.warn({ user: user.name, dropped }, 'class grants outside the bounds were not applied');
    return classes;
  }
}
