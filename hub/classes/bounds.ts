import { z } from 'zod';
import type { LabHubConfig } from '../config/schema.js';
import { policyOverrideSchema, type CredentialPolicy } from '../credentials/policy.js';
import { parseByteSize } from '../../spawners/byte-size.js';
import { memLimit, volumeName } from './profiles.js';

/**
 * `classes:` in the configuration: what any class may grant its members. Only an admin sets these (the config file
 * or LABHUB_CLASSES__… variables); a class manager's writes are checked against them, and so are an admin's.
 */
export const classesConfigSchema = z.strictObject({
  /** Images a class profile may name; default the spawner's image (Docker: and its allowed_images). */
  images: z.array(z.string().min(1)).optional(),
  /** Docker volumes (Kubernetes: PVC claims) a class may mount as its shared_volume. A user's home never is. */
  shared_volumes: z.array(volumeName).default([]),
  /** Most CPUs a profile may set; default the spawner's own cpu limit, else 2. */
  max_cpu_limit: z.number().positive().max(1024).optional(),
  /** Most memory a profile may set; default the spawner's own memory limit, else 4G. */
  max_mem_limit: memLimit.optional(),
  /** The most a class's `credentials` property may grant, key by key; a key left out is credentials.policy's. */
  credentials: policyOverrideSchema.prefault({}),
  /** A class manager (not an admin) may add only users already in one of these groups, e.g. [students]. */
  member_groups: z.array(z.string().min(1)).default([]),
});

export interface ClassBounds {
  images: string[];
  sharedVolumes: string[];
  maxCpuLimit: number;
  /** Bytes. */
  maxMemLimit: number;
  /** The ceiling of a class's `credentials` property. */
  credentials: CredentialPolicy;
  memberGroups: string[];
}

const FALLBACK_CPUS = 2;
const FALLBACK_MEMORY = 4 * 1024 ** 3;

const QUANTITY_POWERS: Record<string, number> = {
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6,
};

/** A Kubernetes quantity (`500m`, `2`, `2Gi`) as a number of base units; undefined when unset. */
export function parseQuantity(quantity: string | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)([a-zA-Z]*)$/.exec(quantity);
  const power = m ? QUANTITY_POWERS[m[2]!] : undefined;
  if (power === undefined) throw new Error(`invalid Kubernetes quantity ${JSON.stringify(quantity)}`);
  return Number(m![1]) * power;
}

/** The spawner's own image(s) and limits, which a class may use or stay under unless the admin says otherwise. */
function spawnerDefaults(config: LabHubConfig): { images: string[]; cpu?: number; memory?: number } {
  const { kind, docker, kubernetes } = config.spawner;
  if (kind === 'kubernetes') {
    const limits = kubernetes.resources.limits ?? {};
    return { images: [kubernetes.image], cpu: parseQuantity(limits.cpu), memory: parseQuantity(limits.memory) };
  }
  return {
    images: [docker.image, ...docker.allowed_images], cpu: docker.cpu_limit,
    memory: docker.mem_limit === undefined ? undefined : parseByteSize(docker.mem_limit),
  };
}

/** The bounds in force: the admin's `classes:` section with its defaults filled in. */
export function classBounds(config: LabHubConfig): ClassBounds {
  const own = config.classes;
  const spawner = spawnerDefaults(config);
  const policy = config.credentials.policy;
  const ceiling = own.credentials;
  return {
    images: [...new Set(own.images ?? spawner.images)],
    sharedVolumes: [...own.shared_volumes],
    maxCpuLimit: own.max_cpu_limit ?? spawner.cpu ?? FALLBACK_CPUS,
    maxMemLimit: own.max_mem_limit !== undefined ? parseByteSize(own.max_mem_limit) : spawner.memory ?? FALLBACK_MEMORY,
    credentials: {
      mqtt: { ...policy.mqtt, ...ceiling.mqtt },
      postgres: { ...policy.postgres, ...ceiling.postgres },
      mongodb: { ...policy.mongodb, ...ceiling.mongodb },
    },
    memberGroups: [...own.member_groups],
  };
}
