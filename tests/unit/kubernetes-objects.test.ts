import { describe, expect, it } from 'vitest';
import { safeSlug, serverNames, userServerSlug } from '../../spawners/kubernetes/names.js';
import { deepMerge } from '../../spawners/kubernetes/objects.js';
import { podFailure } from '../../spawners/kubernetes.js';
import { settingsFor, type Profile } from '../../spawners/kubernetes/profiles.js';

describe('Kubernetes names (KubeSpawner safe scheme)', () => {
  it('keeps DNS-safe names and hashes the others', () => {
    expect(safeSlug('alice')).toBe('alice');
    expect(safeSlug('Alice')).toMatch(/^alice---[0-9a-f]{8}$/);
    expect(safeSlug('user@email.com')).toMatch(/^user-email-com---[0-9a-f]{8}$/);
    expect(safeSlug('1st')).toMatch(/^x-1st---[0-9a-f]{8}$/);
    expect(safeSlug('a--b')).toMatch(/^a-b---[0-9a-f]{8}$/);
    expect(safeSlug('x'.repeat(60))).toHaveLength(48);
  });

  it('never maps two names to one slug in the cases that matter', () => {
    const names = ['alice', 'Alice', 'ALICE', 'alice---0000000', 'a.lice', 'a_lice', 'alice-', 'alice--'];
    expect(new Set(names.map((n) => safeSlug(n))).size).toBe(names.length);
  });

  it('joins user and server with -- and stays within 48 characters', () => {
    expect(userServerSlug('alice', '')).toBe('alice');
    expect(userServerSlug('alice', 'gpu')).toBe('alice--gpu');
    const long = userServerSlug('a'.repeat(40), 'b'.repeat(40));
    expect(long.length).toBeLessThanOrEqual(48);
    expect(long).not.toBe(userServerSlug('a'.repeat(40), 'b'.repeat(41)));
    expect(serverNames('labhub', 'bob', 'x')).toEqual({ pod: 'labhub-bob--x', secret: 'labhub-bob--x', pvc: 'labhub-home-bob' });
  });
});

describe('profile overrides', () => {
  it('deep-merges objects, replaces arrays and deletes keys set to null', () => {
    expect(deepMerge({ a: { b: 1, c: 2 }, l: [1, 2], d: 1 }, { a: { c: 3 }, l: [3], d: null })).toEqual({ a: { b: 1, c: 3 }, l: [3] });
  });

  it('applies the default profile a user may use and refuses one outside their groups', () => {
    const base = { image: 'base', resources: { limits: { memory: '1Gi', cpu: '1' } } } as never;
    const profiles: Profile[] = [
      { slug: 'gpu', displayName: 'GPU', groups: ['physics'], default: true, overrides: { image: 'gpu' } },
      { slug: 'big', displayName: 'Big', groups: [], overrides: { resources: { limits: { memory: '8Gi' } } } },
    ];
    expect(settingsFor(base, profiles, {}, []).settings).toEqual({ image: 'base', resources: { limits: { memory: '8Gi', cpu: '1' } } });
    expect(settingsFor(base, profiles, {}, ['physics']).profile?.slug).toBe('gpu');
    expect(() => settingsFor(base, profiles, { profile: 'gpu' }, [])).toThrow(/only for members of physics/);
    expect(() => settingsFor(base, profiles, { profile: 7 }, [])).toThrow(/must be a string/);
  });
});

describe('podFailure', () => {
  it('names the reason a starting pod will not become ready', () => {
    expect(podFailure({ status: { phase: 'Pending' } })).toBeNull();
    expect(podFailure({ status: { containerStatuses: [{ name: 'notebook', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }] } })).toBeNull();
    expect(podFailure({ status: { containerStatuses: [{ name: 'notebook', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "x"' } } }] } }))
      .toBe('ImagePullBackOff: Back-off pulling image "x"');
    expect(podFailure({ status: { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes' }] } })).toBe('Unschedulable: 0/3 nodes');
  });
});
