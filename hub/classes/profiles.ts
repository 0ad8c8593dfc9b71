import { z } from 'zod';
import { HttpError } from '../errors.js';
import { parseByteSize } from '../../spawners/byte-size.js';
import type { ServerProfile } from '../../spawners/spawner.js';

/**
 * A class is a hub group whose JupyterHub-compatible properties carry the server profiles its members may start:
 *   { "profiles": [{ "slug", "display_name", "description", "image", "cpu_limit", "mem_limit" }],
 *     "default_profile": "<slug>", "shared_volume": "<docker volume>" }
 * Other property keys are left alone, so groups used for other purposes keep working.
 */
const SLUG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,254}$/;

export const volumeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'expected a Docker volume name');
export const memLimit = z.union([
  z.number().int().positive(),
  z.string().regex(/^\d+(\.\d+)?\s*[kmgtKMGT]?(i?[bB])?$/, 'expected bytes or a size such as 512M or 2G'),
]);

const profileSchema = z.strictObject({
  slug: z.string().regex(SLUG, 'expected 1–63 letters, digits, ., _ or -, starting with a letter or digit'),
  display_name: z.string().min(1).max(200),
  description: z.string().max(2000).optional(),
  image: z.string().regex(IMAGE, 'expected an image reference such as labhub/notebook-debian:latest').optional(),
  cpu_limit: z.number().positive().max(1024).optional(),
  mem_limit: memLimit.optional(),
});

const classSchema = z.object({
  profiles: z.array(profileSchema).max(50).optional(),
  default_profile: z.string().regex(SLUG, 'expected the slug of one of the profiles').optional(),
  shared_volume: volumeName.optional(),
});

export type ClassProfileSpec = z.infer<typeof profileSchema>;
export type ClassSettings = z.infer<typeof classSchema>;

/** What a class's properties say about profiles, or a message naming what is wrong (for a 400). */
export function parseClassSettings(properties: Record<string, unknown>): { settings: ClassSettings } | { problem: string } {
  const result = classSchema.safeParse(properties);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const detail = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
    return { problem: `Invalid class properties: ${issue.path.join('.') || 'properties'}: ${detail}` };
  }
  const settings = result.data;
  const slugs = (settings.profiles ?? []).map((p) => p.slug);
  const duplicate = slugs.find((s, i) => slugs.indexOf(s) !== i);
  if (duplicate) return { problem: `Invalid class properties: profiles: slug ${duplicate} appears twice` };
  if (settings.default_profile !== undefined && !slugs.includes(settings.default_profile)) {
    return { problem: `Invalid class properties: default_profile: ${settings.default_profile} is not one of the class's profiles` };
  }
  return { settings };
}

export interface ClassRecord {
  name: string;
  /** The group's properties as stored (JSON text). */
  properties: string;
}

/** A profile as a user is offered it: identified across classes as `<class>/<slug>`. */
export interface OfferedProfile {
  id: string;
  className: string;
  slug: string;
  displayName: string;
  description: string;
  image?: string;
  cpuLimit?: number;
  memLimit?: number;
  isDefault: boolean;
}

export interface SharedVolume {
  volume: string;
  mountPath: string;
}

/** Settings of a stored class; a class whose stored properties are broken offers nothing rather than failing. */
function settingsOf(record: ClassRecord): ClassSettings {
  let properties: unknown;
  try {
    properties = JSON.parse(record.properties);
  } catch {
    return {};
  }
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) return {};
  const parsed = parseClassSettings(properties as Record<string, unknown>);
  return 'settings' in parsed ? parsed.settings : {};
}

/** The union of the profiles of a user's classes, in class order. */
export function offeredProfiles(classes: ClassRecord[]): OfferedProfile[] {
  return classes.flatMap((record) => {
    const settings = settingsOf(record);
    return (settings.profiles ?? []).map((p) => ({
      id: `${record.name}/${p.slug}`, className: record.name, slug: p.slug, displayName: p.display_name,
      description: p.description ?? '', image: p.image, cpuLimit: p.cpu_limit,
      memLimit: p.mem_limit === undefined ? undefined : parseByteSize(p.mem_limit), isDefault: settings.default_profile === p.slug,
    }));
  });
}

/** A class name as one path segment under the shared root: anything but letters, digits, `.`, `_`, `-` becomes `_`. */
export function sharedMountPath(root: string, className: string): string {
  return `${root.replace(/\/+$/, '')}/${className.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_')}`;
}

/**
 * The profile a start uses: the user option `profile` (`<class>/<slug>`) if one of the user's classes offers it,
 * else the default profile of the first class that has one; plus the shared volume of every class of the user,
 * read-only. A `profile` naming one of the spawner's own profiles (`spawnerProfiles`) is the spawner's to apply.
 * Undefined when classes have nothing to say (the spawner's configured defaults apply); the id is `default` when
 * only shared volumes apply.
 */
export function resolveProfile(classes: ClassRecord[], userOptions: Record<string, unknown>, sharedRoot: string, spawnerProfiles: readonly string[] = []): ServerProfile | undefined {
  const wanted = userOptions.profile;
  if (wanted !== undefined && wanted !== null && wanted !== '' && typeof wanted !== 'string') {
    throw new HttpError(400, 'user option profile must be a string "<class>/<slug>"');
  }
  const offered = offeredProfiles(classes);
  let chosen: OfferedProfile | undefined;
  const spawnersOwn = typeof wanted === 'string' && spawnerProfiles.includes(wanted);
  if (typeof wanted === 'string' && wanted !== '' && !spawnersOwn) {
    if (!/^[^/]+\/[^/]+$/.test(wanted) || wanted.length > 400) throw new HttpError(400, 'user option profile must look like "<class>/<slug>"');
    chosen = offered.find((p) => p.id === wanted);
    if (!chosen) throw new HttpError(403, `Profile ${wanted.slice(0, 200)} is not offered by any of your classes`);
  } else if (!spawnersOwn) {
    chosen = offered.find((p) => p.isDefault);
  }
  const sharedVolumes = classes.flatMap((record) => {
    const volume = settingsOf(record).shared_volume;
    return volume ? [{ volume, mountPath: sharedMountPath(sharedRoot, record.name) }] : [];
  });
  if (!chosen && !sharedVolumes.length) return undefined;
  return {
    id: chosen?.id ?? 'default',
    ...(chosen?.image !== undefined && { image: chosen.image }),
    ...(chosen?.cpuLimit !== undefined && { cpuLimit: chosen.cpuLimit }),
    ...(chosen?.memLimit !== undefined && { memLimit: chosen.memLimit }),
    ...(sharedVolumes.length && { sharedVolumes }),
  };
}

/** The profile a server was started with, from its stored user options (none when absent or unreadable). */
export function profileOption(userOptions: string): string | undefined {
  try {
    const profile = (JSON.parse(userOptions) as { profile?: unknown }).profile;
    return typeof profile === 'string' ? profile : undefined;
  } catch {
    return undefined;
  }
}
