import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../hub/config/load.js';
import { createLogger } from '../../hub/log.js';
import { createKubernetesSpawner } from '../../spawners/kubernetes/config.js';
import { safeSlug, serverNames } from '../../spawners/kubernetes/names.js';
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

  it('names pods from the uid and the server, within a 63-character DNS label', () => {
    const bob = { uid: 'bbbbbbbbbbbb' };
    expect(serverNames('labhub', bob, 'x')).toEqual({ pod: 'labhub--bbbbbbbbbbbb--x', secret: 'labhub--bbbbbbbbbbbb--x', pvc: 'labhub-home--bbbbbbbbbbbb' });
    const long = serverNames('labhub', bob, 'b'.repeat(63)).pod;
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).not.toBe(serverNames('labhub', bob, 'b'.repeat(62)).pod);
    expect(serverNames('labhub', { ...bob, legacyName: 'bob' }, '').pvc).toBe(`labhub-home-${safeSlug('bob')}`);
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

  it('waits out the kubelet\'s Secret cache that has not synced yet, and fails at once on a Secret that is missing', () => {
    const waiting = (message: string) => ({ status: { containerStatuses: [{ name: 'notebook', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'CreateContainerConfigError', message } } }] } });
    expect(podFailure(waiting('failed to sync secret cache: timed out waiting for the condition'))).toBeNull();
    expect(podFailure(waiting('failed to sync configmap cache: timed out waiting for the condition'))).toBeNull();
    expect(podFailure(waiting('secret "labhub-x" not found'))).toBe('CreateContainerConfigError: secret "labhub-x" not found');
  });
});

describe('spawner.kubernetes config', () => {
  it('maps snake_case keys into the pod, and profile overrides (null deletes) over them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'labhub-k8s-config-'));
    writeFileSync(join(dir, 'kubeconfig'), 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n');
    writeFileSync(join(dir, 'config.yaml'), `
hub: {connect_url: "http://labhub-hub:8081"}
spawner:
  kind: kubernetes
  kubernetes:
    kubeconfig: ${join(dir, 'kubeconfig')}
    namespace: lab
    node_selector: {pool: users}
    tolerations: [{key: dedicated, operator: Equal, value: users, effect: NoExecute, toleration_seconds: 30}]
    volumes: [{name: shared, claim_name: course-data, mount_path: /data, read_only: true}]
    profiles:
      - slug: anywhere
        display_name: Any node
        overrides: {node_selector: null, resources: {limits: {memory: 2Gi}}}
`);
    const config = loadConfig({ file: join(dir, 'config.yaml'), env: {} });
    const spawner = createKubernetesSpawner(config, createLogger('test', { level: 'silent' }));
    try {
      const m = spawner.manifests({ user: { name: 'ann', uid: 'annannannann', admin: false, groups: [] }, serverName: '', prefix: '/user/ann/', env: { JUPYTERHUB_API_URL: 'http://127.0.0.1:8081/hub/api' }, userOptions: {} });
      expect(spawner.namespace).toBe('lab');
      expect(m.pod.spec!.nodeSelector).toBeUndefined();
      expect(m.pod.spec!.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'users', effect: 'NoExecute', tolerationSeconds: 30 }]);
      expect(m.pod.spec!.containers[0]!.volumeMounts).toEqual([{ name: 'home', mountPath: '/home/jovyan' }, { name: 'shared', mountPath: '/data', readOnly: true }]);
      expect(m.pod.spec!.containers[0]!.resources).toEqual({ limits: { memory: '2Gi' } });
      expect(m.secret.stringData!.JUPYTERHUB_API_URL).toBe('http://labhub-hub:8081/hub/api');
      expect(m.pod.spec!.containers[0]!.env).toBeUndefined();

      // A class profile from the hub replaces the spawner's own profiles: its image, limits and class volumes.
      const classed = spawner.manifests({
        user: { name: 'ann', uid: 'annannannann', admin: false, groups: ['bio101'] }, serverName: '', prefix: '/user/ann/', env: {}, userOptions: { profile: 'bio101/python' },
        profile: { id: 'bio101/python', image: 'lab/bio:1', cpuLimit: 0.5, memLimit: 768 * 1024 ** 2, sharedVolumes: [{ volume: 'bio101-materials', mountPath: '/home/jovyan/shared/bio101' }] },
      });
      const container = classed.pod.spec!.containers[0]!;
      expect(container.image).toBe('lab/bio:1');
      expect(container.resources).toEqual({ limits: { cpu: '0.5', memory: String(768 * 1024 ** 2) }, requests: { cpu: '0.5', memory: String(768 * 1024 ** 2) } });
      expect(container.volumeMounts).toContainEqual({ name: 'class-bio101-materials', mountPath: '/home/jovyan/shared/bio101', readOnly: true });
      expect(classed.pod.spec!.volumes).toContainEqual({ name: 'class-bio101-materials', persistentVolumeClaim: { claimName: 'bio101-materials', readOnly: true } });
      expect(() => spawner.checkOptions({ userOptions: { profile: 'bio101/python' }, profile: { id: 'bio101/python' } })).not.toThrow();
      expect(() => spawner.checkOptions({ userOptions: { profile: 'nope' } })).toThrow(/does not exist/);
    } finally {
      await spawner.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
