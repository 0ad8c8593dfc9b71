import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesSpawner } from '../../spawners/kubernetes.js';
import { serverNames } from '../../spawners/kubernetes/names.js';
import { accountKey as key } from '../helpers/accounts.js';
import type { ProgressEvent, SpawnRequest, SpawnerState } from '../../spawners/spawner.js';
import { eventually } from '../helpers/hub.js';
import { clusterInstalled, TestCluster } from '../helpers/kube.js';
import { requireService } from '../helpers/jupyter.js';

/**
 * The Kubernetes spawner on the real test cluster (scripts/k8s-cluster.sh), in a namespace that enforces the
 * `restricted` Pod Security Standard: the scheduler places the pods, the kubelet runs them in containerd, the
 * provisioner binds their PVCs. The pods run a small HTTP server (python3 in the notebook image) rather than the
 * notebook server: there is no hub here for it to talk to.
 */
const IMAGE = 'labhub/notebook-debian:latest';
const docker = new Docker();
const ready = requireService('Kubernetes test cluster (scripts/setup-k8s.sh, scripts/k8s-cluster.sh)', clusterInstalled())
  && requireService('Docker engine', await docker.ping().then(() => true, () => false))
  && requireService(`Docker image ${IMAGE}`, await docker.getImage(IMAGE).inspect().then(() => true, () => false));

const HTTP_SERVER = ['python3', '-c', 'import http.server,os;os.chdir(os.environ["HOME_DIR"]);http.server.ThreadingHTTPServer(("",8888),http.server.SimpleHTTPRequestHandler).serve_forever()'];

/** The pod is Ready when its process started (no readiness probe, as the hub checks HTTP itself); the server binds a moment later. */
function answer(url: string): Promise<Response> {
  return eventually(() => fetch(url).catch(() => null), 15_000);
}

const names = (user: string, server = '') => serverNames('spawner-test', key(user), server);

function request(user: string, server = '', userOptions: Record<string, unknown> = {}, groups: string[] = []): SpawnRequest & { events: ProgressEvent[]; saved: SpawnerState[] } {
  const events: ProgressEvent[] = [];
  const saved: SpawnerState[] = [];
  return {
    user: { name: user, ...key(user), admin: false, groups }, serverName: server, prefix: `/user/${user}/`, userOptions,
    env: { JUPYTERHUB_API_TOKEN: 'secret-token-value-1234', JUPYTERHUB_API_URL: 'http://hub.example:8081/hub/api', HOME_DIR: '/home/jovyan' },
    signal: AbortSignal.timeout(60_000), progress: (e) => events.push(e), saveState: async (s) => void saved.push(s), events, saved,
  };
}

describe.skipIf(!ready)('KubernetesSpawner on a real cluster', () => {
  const namespace = `labhub-${randomBytes(3).toString('hex')}`;
  let cluster: TestCluster;
  let spawner: KubernetesSpawner;

  beforeAll(async () => {
    cluster = await TestCluster.connect();
    await cluster.createNamespace(namespace, { 'pod-security.kubernetes.io/enforce': 'restricted' });
    spawner = new KubernetesSpawner({
      kubeConfig: cluster.kubeConfig, namespace, hubId: 'spawner-test',
      pod: { image: IMAGE, cmd: HTTP_SERVER, pullPolicy: 'Never' },
      storage: { capacity: '1Gi' },
      profiles: [
        { slug: 'small', displayName: 'Small', default: true, groups: [], overrides: { resources: { limits: { memory: '512Mi' } } } },
        { slug: 'gpu', displayName: 'GPU', groups: ['physics'], overrides: { nodeSelector: { 'nvidia.com/gpu.present': 'true' }, resources: { limits: { 'nvidia.com/gpu': '1' } } } },
        { slug: 'missing', displayName: 'Broken image', groups: [], overrides: { image: 'labhub/does-not-exist:1' } },
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await spawner?.close();
    await cluster?.stop();
  });

  it('starts a pod that passes the restricted Pod Security Standard, with the token only in its Secret', async () => {
    const req = request('alice');
    const result = await spawner.start(req);
    expect(result.url).toMatch(/^http:\/\/\d+\.\d+\.\d+\.\d+:8888$/);
    expect(req.saved[0]).toEqual({ pod_name: names('alice').pod, namespace, secret_name: names('alice').secret, pvc_name: names('alice').pvc });
    expect(req.events.map((e) => e.message).join('\n')).toMatch(/Successfully assigned[\s\S]*image "labhub\/notebook-debian:latest" already present on machine[\s\S]*Started container notebook/);
    const pod = await cluster.core.readNamespacedPod({ name: names('alice').pod, namespace });
    expect(JSON.stringify(pod.spec)).not.toContain('secret-token-value-1234');
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    expect(pod.spec!.containers[0]!.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true });
    expect(pod.spec!.containers[0]!.resources?.limits).toEqual({ memory: '512Mi' });
    const secret = await cluster.core.readNamespacedSecret({ name: names('alice').pod, namespace });
    expect(Buffer.from(secret.data!.JUPYTERHUB_API_TOKEN!, 'base64').toString()).toBe('secret-token-value-1234');
    expect(Buffer.from(secret.data!.JUPYTERHUB_SERVICE_URL!, 'base64').toString()).toBe('http://0.0.0.0:8888/user/alice/');
    expect(secret.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: 'Pod', name: names('alice').pod, uid: pod.metadata!.uid })]);
    expect((await answer(result.url)).status).toBe(200);
    expect(await spawner.poll(result.state)).toEqual({ running: true });
  });

  it('keeps the home PVC across stop and start, with the files in it', async () => {
    const first = await spawner.start(request('bob'));
    await answer(first.url);
    await cluster.exec(namespace, names('bob').pod, 'echo kept > /home/jovyan/note.txt');
    await spawner.stop(first.state);
    await expect(cluster.core.readNamespacedPod({ name: names('bob').pod, namespace })).rejects.toMatchObject({ code: 404 });
    await expect(cluster.core.readNamespacedSecret({ name: names('bob').pod, namespace })).rejects.toMatchObject({ code: 404 });
    expect((await cluster.core.readNamespacedPersistentVolumeClaim({ name: names('bob').pvc, namespace })).metadata!.name).toBe(names('bob').pvc);
    expect(await spawner.poll(first.state)).toEqual({ running: false, exitCode: null });
    const second = await spawner.start(request('bob'));
    expect(await (await answer(`${second.url}/note.txt`)).text()).toBe('kept\n');
    await spawner.stop(second.state, { now: true });
    // Purging the deleted account removes its home PVC.
    expect(await spawner.removeUserData({ name: 'bob', ...key('bob') })).toEqual([`PersistentVolumeClaim ${names('bob').pvc}`]);
    await eventually(() => cluster.core.readNamespacedPersistentVolumeClaim({ name: names('bob').pvc, namespace }).then(() => false, (e: { code?: number }) => e.code === 404), 30_000);
  });

  it('refuses a user\'s home claim as a class\'s shared claim before creating anything', async () => {
    const home = spawner.userVolumes({ name: 'alice', ...key('alice') })[0]!;
    expect((await cluster.core.readNamespacedPersistentVolumeClaim({ name: home, namespace })).metadata!.name).toBe(home);
    const req = request('gil');
    req.profile = { id: 'bio101/python', sharedVolumes: [{ volume: home, mountPath: '/home/jovyan/shared/bio101' }] };
    await expect(spawner.start(req)).rejects.toMatchObject({ status: 403, message: expect.stringMatching(`shared claim ${home} of bio101/python is a user's home`) });
    expect(req.saved).toEqual([]);
    await expect(cluster.core.readNamespacedPod({ name: 'spawner-test-gil', namespace })).rejects.toMatchObject({ code: 404 });
  });

  it('fails within seconds on an image the node does not have, with the kubelet\'s reason, and deletes the pod', async () => {
    const started = Date.now();
    await expect(spawner.start(request('carol', '', { profile: 'missing' }))).rejects.toThrow(/ErrImageNeverPull: Container image "labhub\/does-not-exist:1" is not present with pull policy of Never/);
    expect(Date.now() - started).toBeLessThan(10_000);
    await expect(cluster.core.readNamespacedPod({ name: names('carol').pod, namespace })).rejects.toMatchObject({ code: 404 });
  });

  it('fails at once when no node can run the pod, and refuses a profile outside the user\'s groups', async () => {
    await expect(spawner.start(request('dave', '', { profile: 'gpu' }))).rejects.toMatchObject({ status: 403 });
    await expect(spawner.start(request('dave', '', { profile: 'gpu' }, ['physics']))).rejects.toThrow(/Unschedulable: 0\/1 nodes are available/);
    expect(() => spawner.checkOptions({ userOptions: { profile: 'nope' } })).toThrow(/does not exist/);
  });

  it('fails a crash-looping server with its exit code', async () => {
    const crashing = new KubernetesSpawner({
      kubeConfig: cluster.kubeConfig, namespace, hubId: 'spawner-test', storage: { enabled: false },
      pod: { image: IMAGE, cmd: ['sh', '-c', 'echo starting; exit 3'] },
    });
    try {
      await expect(crashing.start(request('erin'))).rejects.toThrow(/exited with code 3/);
    } finally {
      await crashing.close();
    }
  });

  it('refuses to replace a Secret it did not create', async () => {
    await cluster.core.createNamespacedSecret({ namespace, body: { metadata: { name: names('zed').secret }, stringData: { mine: 'yes' } } });
    await expect(spawner.start(request('zed'))).rejects.toMatchObject({ status: 409, message: expect.stringMatching(new RegExp(`Secret named ${names('zed').secret} that this hub did not create`)) });
    expect((await cluster.core.readNamespacedSecret({ name: names('zed').secret, namespace })).data).toEqual({ mine: Buffer.from('yes').toString('base64') });
  });

  it('names named servers from the uid and the safe server slug, and removes orphan pods and their Secrets', async () => {
    const named = await spawner.start(request('Frank.Smith@example.org', 'My Server'));
    const podName = (named.state as { pod_name: string }).pod_name;
    expect(podName).toBe(names('Frank.Smith@example.org', 'My Server').pod);
    expect(podName).toMatch(/^spawner-test--[a-z2-7]{12}--my-server---[0-9a-f]{8}$/);
    const removed = await spawner.removeOrphans([]);
    expect(removed).toContain(podName);
    await expect(cluster.core.readNamespacedSecret({ name: podName, namespace })).rejects.toMatchObject({ code: 404 });
    expect(await spawner.poll(named.state)).toEqual({ running: false, exitCode: null });
  });
});
