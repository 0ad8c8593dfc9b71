import { describe, expect, it } from 'vitest';
import { offeredProfiles, parseClassSettings, resolveProfile, sharedMountPath } from '../../hub/classes/profiles.js';
import { HttpError } from '../../hub/errors.js';

const bio = {
  name: 'bio101',
  properties: JSON.stringify({
    profiles: [
      { slug: 'python', display_name: 'Python', image: 'labhub/notebook-debian:latest', cpu_limit: 1, mem_limit: '2G' },
      { slug: 'big', display_name: 'Big', cpu_limit: 4, mem_limit: 8 * 1024 ** 3 },
    ],
    default_profile: 'python', shared_volume: 'class-bio101-materials', other: 'kept',
  }),
};
const chem = { name: 'chem 201', properties: JSON.stringify({ profiles: [{ slug: 'r', display_name: 'R', image: 'labhub/r:1' }], default_profile: 'r' }) };
const plain = { name: 'staff', properties: '{}' };

function refusal(fn: () => unknown): { status: number; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof HttpError) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('class properties', () => {
  it('accepts the documented shape and leaves other keys alone', () => {
    expect(parseClassSettings(JSON.parse(bio.properties) as Record<string, unknown>)).toMatchObject({ settings: { default_profile: 'python' } });
    expect(parseClassSettings({ anything: [1, 2] })).toEqual({ settings: {} });
  });

  it.each([
    [{ profiles: [{ slug: 'a b', display_name: 'x' }] }, /profiles\.0\.slug/],
    [{ profiles: [{ slug: 'a', display_name: 'x', mem_limit: 'lots' }] }, /mem_limit/],
    [{ profiles: [{ slug: 'a', display_name: 'x', cpu_limit: -1 }] }, /cpu_limit/],
    [{ profiles: [{ slug: 'a', display_name: 'x', gpu: 1 }] }, /unknown field\(s\) gpu/],
    [{ profiles: [{ slug: 'a', display_name: 'x' }, { slug: 'a', display_name: 'y' }] }, /appears twice/],
    [{ profiles: [{ slug: 'a', display_name: 'x' }], default_profile: 'b' }, /default_profile: b is not one/],
    [{ shared_volume: '../etc' }, /shared_volume/],
    [{ profiles: 'python' }, /profiles/],
  ])('refuses %j with a problem naming the field', (properties, message) => {
    const parsed = parseClassSettings(properties as Record<string, unknown>);
    expect('problem' in parsed ? parsed.problem : '').toMatch(message);
  });
});

describe('profiles offered to a user', () => {
  it('is the union of their classes, identified as <class>/<slug>, with memory in bytes', () => {
    const offered = offeredProfiles([bio, chem, plain]);
    expect(offered.map((p) => p.id)).toEqual(['bio101/python', 'bio101/big', 'chem 201/r']);
    expect(offered[0]).toMatchObject({ memLimit: 2 * 1024 ** 3, cpuLimit: 1, isDefault: true });
  });

  it('ignores a class whose stored properties are broken', () => {
    expect(offeredProfiles([{ name: 'x', properties: '{not json' }, { name: 'y', properties: '{"profiles": 3}' }])).toEqual([]);
  });
});

describe('resolving the profile of a start', () => {
  it('uses the chosen profile and mounts every class volume read-only under the shared root', () => {
    expect(resolveProfile([bio, chem], { profile: 'chem 201/r' }, '/home/jovyan/shared')).toEqual({
      id: 'chem 201/r', image: 'labhub/r:1',
      sharedVolumes: [{ volume: 'class-bio101-materials', mountPath: '/home/jovyan/shared/bio101' }],
    });
  });

  it('falls back to the default profile of the first class that has one', () => {
    expect(resolveProfile([bio, chem], {}, '/s')).toMatchObject({ id: 'bio101/python', image: 'labhub/notebook-debian:latest', cpuLimit: 1, memLimit: 2 * 1024 ** 3 });
    expect(resolveProfile([chem, bio], {}, '/s')?.id).toBe('chem 201/r');
  });

  it('leaves the spawner defaults alone when classes say nothing', () => {
    expect(resolveProfile([plain], {}, '/s')).toBeUndefined();
    expect(resolveProfile([], {}, '/s')).toBeUndefined();
  });

  it('refuses profiles the user\'s classes do not offer (403) and malformed ones (400)', () => {
    expect(refusal(() => resolveProfile([bio], { profile: 'chem 201/r' }, '/s')).status).toBe(403);
    expect(refusal(() => resolveProfile([], { profile: 'bio101/python' }, '/s')).status).toBe(403);
    expect(refusal(() => resolveProfile([bio], { profile: 'python' }, '/s')).status).toBe(400);
    expect(refusal(() => resolveProfile([bio], { profile: 7 }, '/s')).status).toBe(400);
  });

  it('leaves a profile the spawner itself offers (KubeSpawner-style slug) to the spawner, with the class volumes', () => {
    const resolved = resolveProfile([bio], { profile: 'gpu' }, '/s', ['gpu', 'cpu']);
    expect(resolved).toEqual({ id: 'default', sharedVolumes: [{ volume: 'class-bio101-materials', mountPath: '/s/bio101' }] });
    expect(refusal(() => resolveProfile([bio], { profile: 'tpu' }, '/s', ['gpu'])).status).toBe(400);
  });

  it('makes one safe path segment of any class name', () => {
    expect(sharedMountPath('/home/jovyan/shared/', 'chem 201')).toBe('/home/jovyan/shared/chem_201');
    expect(sharedMountPath('/r', '..')).toBe('/r/_');
    expect(sharedMountPath('/r', 'é')).toBe('/r/_');
  });
});
