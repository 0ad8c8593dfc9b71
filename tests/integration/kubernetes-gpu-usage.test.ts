import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { clusterInstalled, TestCluster } from '../helpers/kube.js';
import { requireService } from '../helpers/jupyter.js';

/**
 * GPU-hours accounting with the Kubernetes spawner on the real test cluster, which has no GPU: the node advertises a
 * fake extended resource `nvidia.com/gpu` (node status capacity, as a device plugin would), so the real scheduler
 * places a pod that requests one and the API server defaults its request from its limit. No device reaches the
 * container, which accounting does not need: it counts what the pod reserves. The hub runs as in kubernetes.test.ts,
 * as the chart's hub ServiceAccount under the chart's Role.
 */
const IMAGE = 'labhub/notebook-debian:latest';
const GPU = 'nvidia.com/gpu';
/** JSON-pointer form of `/status/capacity/nvidia.com/gpu` (RFC 6901: `/` is `~1`). */
const CAPACITY_PATH = '/status/capacity/nvidia.com~1gpu';
const docker = new Docker();
const ready = requireService('Kubernetes test cluster and helm (scripts/setup-k8s.sh, scripts/k8s-cluster.sh)', clusterInstalled())
  && requireService('Docker engine', await docker.ping().then(() => true, () => false))
  && requireService(`Docker image ${IMAGE}`, await docker.getImage(IMAGE).inspect().then(() => true, () => false));

interface Progress { ready?: boolean; failed?: boolean; message: string }
interface Totals { gpu_hours: number; server_hours: number }
interface Usage {
  totals: Totals;
  by_server: Array<{ server: string; totals: Totals }>;
  running: Array<{ server: string; profile: string | null; requested: { cpu: number | null; memory_bytes: number | null; gpus: number } }>;
  quotas: Array<{ subject: { kind: string }; exceeded: Array<{ metric: string }> }>;
}

describe.skipIf(!ready)('GPU-hours of a Kubernetes pod that reserves a GPU (fake extended resource on the test node)', () => {
  const namespace = `labhub-gpu-${randomBytes(3).toString('hex')}`;
  let cluster: TestCluster;
  let hub: HubProcess;
  let token = '';
  let node = '';
  /** The node's own `nvidia.com/gpu` capacity before the test (none on the test cluster), restored in afterAll. */
  let capacityBefore: string | undefined;
  let advertised = false;

  const usage = async () => (await api(hub.url, token, 'GET', '/users/gus/usage')).body as Usage;
  const gpuSecondsMetric = async () => {
    const res = await fetch(`${hub.url}/hub/metrics`, { headers: { authorization: `token ${token}` } });
    expect(res.status).toBe(200);
    const value = /^labhub_usage_gpu_seconds_total\{class=""\} (\S+)$/m.exec(await res.text())?.[1];
    return value === undefined ? 0 : Number(value);
  };
  const started = async (profile: string) => {
    const res = await api(hub.url, token, 'POST', '/users/gus/server', { profile });
    expect([201, 202], JSON.stringify(res.body)).toContain(res.status);
    const stream = await fetch(`${hub.url}/hub/api/users/gus/server/progress`, { headers: { authorization: `token ${token}` } });
    const events = (await stream.text()).split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)) as Progress);
    expect(events.at(-1)?.ready, events.map((e) => e.message).join('\n')).toBe(true);
    return ((await api(hub.url, token, 'GET', '/users/gus')).body as { servers: Record<string, { state: { pod_name: string } }> }).servers['']!.state.pod_name;
  };
  const stopped = async (pod: string) => {
    expect((await api(hub.url, token, 'DELETE', '/users/gus/server')).status).toBeLessThan(300);
    await eventually(async () => (await cluster.core.readNamespacedPod({ name: pod, namespace }).then(() => false, () => true)), 30_000);
  };
  const patchCapacity = (op: object) => cluster.kubectl(['patch', 'node', node, '--subresource=status', '--type=json', '-p', JSON.stringify([op])]);
  const allocatable = async () => (await cluster.core.readNode({ name: node })).status?.allocatable?.[GPU];

  beforeAll(async () => {
    cluster = await TestCluster.connect();
    node = (await cluster.core.listNode()).items[0]!.metadata!.name!;
    capacityBefore = (await cluster.core.readNode({ name: node })).status?.capacity?.[GPU];
    // What a device plugin would report; the kubelet copies capacity to allocatable at its next status update, and
    // only then does the scheduler place a pod that requests one.
    await patchCapacity({ op: 'add', path: CAPACITY_PATH, value: '4' });
    advertised = true;
    await eventually(async () => (await allocatable()) === '4', 60_000, 500);

    await cluster.createNamespace(namespace, { 'pod-security.kubernetes.io/enforce': 'restricted' });
    ({ hub, token } = await cluster.chartHub(namespace, {
      release: 'lh', hubId: 'lh-gpu', image: IMAGE,
      env: {
        LABHUB_SPAWNER__KUBERNETES__RESOURCES: '{requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}',
        // The docs' GPU profile: only a limit, deep-merged over the base resources (Kubernetes requests what it limits
        // for extended resources).
        LABHUB_SPAWNER__KUBERNETES__PROFILES: `[{slug: standard, display_name: Standard, default: true}, {slug: gpu, display_name: GPU, overrides: {resources: {limits: {${GPU}: "1"}}}}]`,
      },
    }));
    expect((await api(hub.url, token, 'POST', '/users', { usernames: ['gus'] })).status).toBe(201);
  }, 180_000);

  afterAll(async () => {
    await hub?.cleanup();
    await cluster?.stop();
    if (!advertised) return;
    // The node as it was: the shared cluster's other tests must not see a GPU that this file made up.
    await patchCapacity(capacityBefore === undefined
      ? { op: 'remove', path: CAPACITY_PATH }
      : { op: 'replace', path: CAPACITY_PATH, value: capacityBefore });
    await eventually(async () => (await allocatable()) === capacityBefore || null, 60_000, 500);
  }, 120_000);

  it('accounts the GPU a pod reserves as GPU-hours in the usage API and Prometheus while it runs, and none after', async () => {
    const metricBefore = await gpuSecondsMetric();
    const pod = await started('gpu');
    const spec = (await cluster.core.readNamespacedPod({ name: pod, namespace })).spec!;
    // The profile's limit merged over the base resources; the GPU request is the API server's default from the limit.
    expect(spec.nodeName).toBe(node);
    expect(spec.containers[0]!.resources).toEqual({
      limits: { memory: '256Mi', [GPU]: '1' }, requests: { cpu: '100m', memory: '128Mi', [GPU]: '1' },
    });

    const first = await usage();
    expect(first.running).toEqual([expect.objectContaining({ server: '', profile: 'gpu', requested: { cpu: 0.1, memory_bytes: 128 * 2 ** 20, gpus: 1 } })]);
    expect(first.totals.gpu_hours).toBeGreaterThan(0);
    // One GPU the whole run: GPU-hours equal server-hours (each read to the microhour, a few ms apart).
    expect(Math.abs(first.totals.gpu_hours - first.totals.server_hours)).toBeLessThan(1e-5);
    const metricFirst = await eventually(async () => { const m = await gpuSecondsMetric(); return m > metricBefore ? m : null; }, 10_000);
    await new Promise((r) => setTimeout(r, 2000));
    const second = await usage();
    expect(second.totals.gpu_hours - first.totals.gpu_hours).toBeGreaterThan(1.5 / 3600);
    const metricSecond = await gpuSecondsMetric();
    expect(metricSecond - metricFirst).toBeGreaterThan(1.5);
    // The counter is per class, not per user (docs/usage.md): gus is the only one with runs, so it is his alone.
    expect(metricSecond / 3600).toBeCloseTo((await usage()).totals.gpu_hours, 3);

    await stopped(pod);
    const after = await usage();
    expect(after.running).toEqual([]);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await usage()).totals.gpu_hours).toBe(after.totals.gpu_hours);
    expect(await gpuSecondsMetric()).toBeCloseTo(after.totals.gpu_hours * 3600, 1);
    expect(hub.output).not.toMatch(/could not sample server usage|usage pass failed/);
  }, 120_000);

  it('refuses a GPU start once a gpu_hours quota is used up, naming the GPU-hours, and lets a start without a GPU through', async () => {
    const used = (await usage()).totals.gpu_hours;
    expect(used).toBeGreaterThan(0);
    const quota = await api(hub.url, token, 'PUT', '/quotas/users/gus', { window_hours: 24, gpu_hours: used / 2 });
    expect(quota.status, JSON.stringify(quota.body)).toBe(200);
    expect((await usage()).quotas).toEqual([expect.objectContaining({ subject: expect.objectContaining({ kind: 'user' }), exceeded: [expect.objectContaining({ metric: 'gpu_hours' })] })]);

    const refused = await api(hub.url, token, 'POST', '/users/gus/server', { profile: 'gpu' });
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ status: 429, message: expect.stringMatching(/^Quota reached: your quota allows [\d.e-]+ GPU-hours per day \([\d.e-]+ used\)\. It frees up at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.$/) });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // A refused start writes nothing: no pod, the server still stopped.
    const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=singleuser-server' });
    expect(pods.items.filter((p) => !p.metadata?.deletionTimestamp)).toEqual([]);
    expect(((await api(hub.url, token, 'GET', '/users/gus')).body as { servers: Record<string, unknown> }).servers).toEqual({});

    // A GPU budget of 0 refuses every GPU start, and says no waiting frees it.
    expect((await api(hub.url, token, 'PUT', '/quotas/users/gus', { window_hours: 24, gpu_hours: 0 })).status).toBe(200);
    const none = await api(hub.url, token, 'POST', '/users/gus/server', { profile: 'gpu' });
    expect(none.body).toEqual({ status: 429, message: expect.stringMatching(/^Quota reached: your quota allows 0 GPU-hours per day \([\d.e-]+ used\)\. An admin must raise it\.$/) });
    expect(none.headers.get('retry-after')).toBeNull();

    // A server without a GPU adds nothing to GPU-hours, so the used-up GPU quota does not stand in its way.
    const pod = await started('standard');
    expect((await cluster.core.readNamespacedPod({ name: pod, namespace })).spec!.containers[0]!.resources!.requests).toEqual({ cpu: '100m', memory: '128Mi' });
    const running = await usage();
    expect(running.running).toEqual([expect.objectContaining({ profile: 'standard', requested: { cpu: 0.1, memory_bytes: 128 * 2 ** 20, gpus: 0 } })]);
    // A run without a GPU adds server-hours and no GPU-hours.
    expect(running.totals.gpu_hours).toBe(used);
    await stopped(pod);
    expect((await api(hub.url, token, 'DELETE', '/quotas/users/gus')).status).toBe(204);
  }, 120_000);
});
