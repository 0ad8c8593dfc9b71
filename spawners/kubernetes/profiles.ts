import { HttpError } from '../../hub/errors.js';
import { parseQuantity } from '../../hub/classes/bounds.js';
import type { ReservedResources, ServerProfile } from '../spawner.js';
import { deepMerge, type PodSettings } from './objects.js';

/** A choice users make with the user option `profile` (KubeSpawner's profile_list), optionally limited to groups. */
export interface Profile {
  slug: string;
  displayName: string;
  description?: string;
  default?: boolean;
  /** Groups (classes) whose members may choose it; empty: everyone. */
  groups: string[];
  /** Deep-merged over the spawner's settings: objects key by key, `null` deletes, arrays replace. */
  overrides: Record<string, unknown>;
}

function chosenSlug(userOptions: Record<string, unknown>): string | undefined {
  const wanted = userOptions.profile;
  if (wanted === undefined || wanted === null || wanted === '') return undefined;
  if (typeof wanted !== 'string') throw new HttpError(400, 'user option profile must be a string');
  return wanted;
}

function mayUse(profile: Profile, groups: readonly string[]): boolean {
  return profile.groups.length === 0 || profile.groups.some((g) => groups.includes(g));
}

/** Refuses a profile that does not exist, with HttpError(400), before anything starts. */
export function checkProfileOption(profiles: readonly Profile[], userOptions: Record<string, unknown>): void {
  const slug = chosenSlug(userOptions);
  if (slug !== undefined && !profiles.some((p) => p.slug === slug)) {
    throw new HttpError(400, `Profile ${JSON.stringify(slug.slice(0, 100))} does not exist. Choose one of: ${profiles.map((p) => p.slug).join(', ') || '(none configured)'}.`);
  }
}

/**
 * The settings for this user's pod: the base settings with the chosen profile merged over them. Without a choice,
 * the default (else the first) profile the user's groups allow; a chosen profile they do not allow is refused (403).
 */
export function settingsFor(base: PodSettings, profiles: readonly Profile[], userOptions: Record<string, unknown>, groups: readonly string[]): { settings: PodSettings; profile?: Profile } {
  checkProfileOption(profiles, userOptions);
  const slug = chosenSlug(userOptions);
  let profile: Profile | undefined;
  if (slug === undefined) {
    const usable = profiles.filter((p) => mayUse(p, groups));
    profile = usable.find((p) => p.default) ?? usable[0];
  } else {
    profile = profiles.find((p) => p.slug === slug)!;
    if (!mayUse(profile, groups)) throw new HttpError(403, `Profile ${profile.slug} is only for members of ${profile.groups.join(', ')}.`);
  }
  return profile ? { settings: deepMerge(base, profile.overrides), profile } : { settings: base };
}

/** Whether the hub resolved a class profile (`<class>/<slug>`), which replaces any choice among the spawner's own. */
export function isClassProfile(profile: ServerProfile | undefined): boolean {
  return profile?.id.includes('/') ?? false;
}

/**
 * A class profile the hub resolved (SpawnRequest.profile) over the pod's settings: its image, CPU and memory as
 * limits and requests, and its shared volumes as read-only mounts of existing claims of the same name.
 */
export function withClassProfile(settings: PodSettings, profile: ServerProfile | undefined): PodSettings {
  if (!profile) return settings;
  const quantities: Record<string, string> = {
    ...(profile.cpuLimit !== undefined && { cpu: String(profile.cpuLimit) }),
    ...(profile.memLimit !== undefined && { memory: String(profile.memLimit) }),
  };
  const volumes = (profile.sharedVolumes ?? []).map(({ volume, mountPath }) => ({
    name: `class-${volume}`.slice(0, 63).replace(/[^a-z0-9-]/g, '-').replace(/-+$/, ''), claimName: volume, mountPath, readOnly: true,
  }));
  return {
    ...settings,
    ...(profile.image !== undefined && { image: profile.image }),
    resources: {
      ...settings.resources,
      ...(Object.keys(quantities).length && {
        limits: { ...settings.resources.limits, ...quantities },
        requests: { ...settings.resources.requests, ...quantities },
      }),
    },
    volumes: [...settings.volumes, ...volumes],
  };
}

/** GPU resource names as device plugins register them (`nvidia.com/gpu`, `amd.com/gpu`, `gpu.intel.com/i915`…). */
const GPU_RESOURCE = /(^|[./])gpu([./]|$)/;

/** What a pod's resources reserve, for accounting: requests where set, else limits (which Kubernetes then requests). */
export function reservedResources(resources: PodSettings['resources']): ReservedResources {
  const pick = (name: string) => resources.requests?.[name] ?? resources.limits?.[name];
  const cpu = parseQuantity(pick('cpu'));
  const memBytes = parseQuantity(pick('memory'));
  const gpuNames = new Set([...Object.keys(resources.limits ?? {}), ...Object.keys(resources.requests ?? {})].filter((k) => GPU_RESOURCE.test(k)));
  const gpus = [...gpuNames].reduce((sum, k) => sum + (parseQuantity(pick(k)) ?? 0), 0);
  return { ...(cpu !== undefined && { cpu }), ...(memBytes !== undefined && { memBytes }), ...(gpus > 0 && { gpus }) };
}
