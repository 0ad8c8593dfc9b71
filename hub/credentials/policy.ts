import { z } from 'zod';

/**
 * What a server's accounts may do. The config gives the defaults (least privilege); a class (a hub group) may
 * override any key in its group property `credentials`, e.g.
 *   {"credentials": {"mqtt": {"subscribe": ["sensors/#", "teaching/#"]}, "postgres": {"read_schemas": ["shared", "course1"]}}}
 * A key set by several of the user's groups is the union of their values. In MQTT topics `{uid}` stands for the
 * account's immutable id (the default publish topic, so a later account of the same name never gets the topic) and
 * `{user}` for the username.
 */
const topic = z.string().min(1).max(256).refine((t) => !t.includes('\u0000'), 'expected an MQTT topic filter');
const identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case identifier of letters, digits and _');
const databaseName = z.string().regex(/^[A-Za-z0-9_-]{1,63}$/, 'expected a database name of letters, digits, _ or -');

export const policySchema = z.strictObject({
  mqtt: z.strictObject({
    /** Topic filters the account may subscribe to (and receive from). */
    subscribe: z.array(topic).default(['sensors/#']),
    /** Topic filters the account may publish to (and subscribe to, to read its own messages back). */
    publish: z.array(topic).default(['users/{uid}/#']),
  }).prefault({}),
  postgres: z.strictObject({
    /** Schemas the account may read (SELECT on every table, now and later). */
    read_schemas: z.array(identifier).default(['shared']),
    /** A schema of the user's own (`home_<uid>`), kept across servers, where the account may do anything. */
    own_schema: z.boolean().default(true),
    /** Concurrent connections per account. */
    connection_limit: z.number().int().min(1).max(1000).default(10),
  }).prefault({}),
  mongodb: z.strictObject({
    /** Databases the account may read. */
    read_databases: z.array(databaseName).default(['sensors']),
    /** A database of the user's own (`home_<uid>`) the account may read and write. */
    own_database: z.boolean().default(true),
  }).prefault({}),
});

export type CredentialPolicy = z.infer<typeof policySchema>;

/** A class's `credentials` property, and the ceiling an admin sets for it (`classes.credentials`): any key may be left out. */
export const policyOverrideSchema = z.strictObject({
  mqtt: policySchema.shape.mqtt.unwrap().partial().optional(),
  postgres: policySchema.shape.postgres.unwrap().partial().optional(),
  mongodb: policySchema.shape.mongodb.unwrap().partial().optional(),
});

export interface ClassProperties {
  name: string;
  properties: Record<string, unknown>;
}

/** Thrown when a group's `credentials` property does not fit the schema; the message names the group and the key. */
export class PolicyError extends Error {
  override name = 'PolicyError';
}

/** The policy for a user in these groups: config defaults, then every group's overrides merged (lists unioned). */
export function resolvePolicy(defaults: CredentialPolicy, classes: ClassProperties[], user: string, uid: string): CredentialPolicy {
  const merged = structuredClone(defaults) as Record<string, Record<string, unknown>>;
  const overridden = new Set<string>();
  for (const group of classes) {
    if (group.properties.credentials === undefined) continue;
    const parsed = policyOverrideSchema.safeParse(group.properties.credentials);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new PolicyError(`group ${group.name}: property credentials.${issue.path.join('.')}: ${issue.message}`);
    }
    for (const [service, values] of Object.entries(parsed.data)) {
      for (const [key, value] of Object.entries(values ?? {})) {
        const slot = `${service}.${key}`;
        const target = merged[service]!;
        if (Array.isArray(value)) {
          const previous = overridden.has(slot) ? (target[key] as string[]) : [];
          target[key] = [...new Set([...previous, ...value])];
        } else if (typeof value === 'boolean') {
          target[key] = overridden.has(slot) ? Boolean(target[key]) || value : value;
        } else {
          target[key] = overridden.has(slot) ? Math.max(Number(target[key]), Number(value)) : value;
        }
        overridden.add(slot);
      }
    }
  }
  const policy = merged as unknown as CredentialPolicy;
  policy.mqtt.subscribe = policy.mqtt.subscribe.map((t) => topicFor(t, { name: user, uid }));
  policy.mqtt.publish = policy.mqtt.publish.map((t) => topicFor(t, { name: user, uid }));
  return policy;
}

/** Whether a topic filter names a per-user topic (it is filled in for each user), such as the default `users/{uid}/#`. */
export const isPerUserTopic = (filter: string) => filter.includes('{user}') || filter.includes('{uid}');

/**
 * `{user}` and `{uid}` in a topic filter. A username with an MQTT wildcard (`+`, `#`) would widen the filter to other
 * users' topics, so such a name is refused rather than substituted (a uid never has one).
 */
export function topicFor(filter: string, owner: { name: string; uid: string }): string {
  if (filter.includes('{user}') && /[+#]/.test(owner.name)) {
    throw new PolicyError(`username ${owner.name} contains an MQTT wildcard (+ or #) and cannot name a topic`);
  }
  return filter.replaceAll('{user}', owner.name).replaceAll('{uid}', owner.uid);
}
