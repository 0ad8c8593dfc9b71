import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../hub/config/load.js';
import { api, eventually, HubProcess } from '../helpers/hub.js';
import { CHART, clusterInstalled, TestCluster } from '../helpers/kube.js';
import { requireService } from '../helpers/jupyter.js';
import { labelValue } from '../../spawners/kubernetes/names.js';
import { podMetricsUsage, type PodMetrics } from '../../spawners/kubernetes/metrics.js';

/**
 * `labhub start` on this machine with `spawner.kind: kubernetes` against the real test cluster, authenticated as the
 * Helm chart's hub ServiceAccount with the chart's Role and NetworkPolicies (rendered by helm, applied server-side,
 * enforced by kube-router): a rule the spawner needs and the chart lacks fails these tests. Pods run the notebook
 * image's own command (jupyterhub-singleuser) with the environment from their Secret; usage is measured from the
 * cluster's real metrics-server, through the API server's aggregation layer. The chart installed whole,
 * hub and proxy in the cluster, is kubernetes-chart.test.ts.
 */
const IMAGE = 'labhub/notebook-debian:latest';
const docker = new Docker();
const ready = requireService('Kubernetes test cluster and helm (scripts/setup-k8s.sh, scripts/k8s-cluster.sh)', clusterInstalled())
  && requireService('Docker engine', await docker.ping().then(() => true, () => false))
  && requireService(`Docker image ${IMAGE}`, await docker.getImage(IMAGE).inspect().then(() => true, () => false));

interface Progress { progress?: number; message: string; ready?: boolean; failed?: boolean }

async function progressEvents(base: string, token: string, user: string): Promise<Progress[]> {
  const res = await fetch(`${base}/hub/api/users/${user}/server/progress`, { headers: { authorization: `token ${token}` } });
  expect(res.status).toBe(200);
  return (await res.text()).split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)) as Progress);
}

function writeTemp(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'labhub-chart-')), 'config.yaml');
  writeFileSync(path, text);
  return path;
}

describe.skipIf(!ready)('labhub start with the Kubernetes spawner and the Helm chart\'s RBAC', () => {
  const namespace = `labhub-${randomBytes(3).toString('hex')}`;
  const release = 'lh';
  const hubId = 'lh-labhub';
  let cluster: TestCluster;
  let hub: HubProcess;
  let token = '';
  let rendered = '';

  beforeAll(async () => {
    cluster = await TestCluster.connect();
    await cluster.createNamespace(namespace, { 'pod-security.kubernetes.io/enforce': 'restricted' });
    ({ hub, token, rendered } = await cluster.chartHub(namespace, {
      release, hubId, image: IMAGE, helmArgs: ['--set', 'labServices.mqtt.cidr=10.20.0.5/32', '--set', 'labServices.mqtt.port=1883'],
      env: { LABHUB_SPAWNER__KUBERNETES__PROFILES: '[{slug: standard, display_name: Standard, default: true, overrides: {resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}}}, {slug: missing, display_name: Missing image, overrides: {image: "labhub/does-not-exist:1"}}]' },
    }));
    expect((await api(hub.url, token, 'POST', '/users', { usernames: ['dora', 'eve', 'fay'] })).status).toBe(201);
  }, 180_000);

  afterAll(async () => {
    await hub?.cleanup();
    await cluster?.stop();
  });

  it('renders a chart the API server accepts, whose hub config LabHub accepts', () => {
    const docs = rendered.split(/^---$/m).map((d) => parse(d) as { kind?: string; metadata?: { name: string }; data?: Record<string, string>; spec?: Record<string, unknown> } | null).filter((d) => d?.kind);
    const kinds = docs.map((d) => d!.kind).sort();
    expect(kinds).toEqual(['ConfigMap', 'Deployment', 'Deployment', 'NetworkPolicy', 'NetworkPolicy', 'NetworkPolicy', 'PersistentVolumeClaim', 'Role', 'RoleBinding', 'Secret', 'Service', 'Service', 'Service', 'Service', 'ServiceAccount']);
    const hubDeployment = docs.find((d) => d!.kind === 'Deployment' && d!.metadata!.name.endsWith('-hub'))!;
    expect(hubDeployment.spec!.strategy).toEqual({ type: 'Recreate' });
    const configYaml = docs.find((d) => d!.kind === 'ConfigMap')!.data!['config.yaml']!;
    const config = loadConfig({ file: writeTemp(configYaml), env: {} });
    expect(config.spawner.kind).toBe('kubernetes');
    expect(config.spawner.kubernetes.namespace).toBe(namespace);
    // The hub believes X-Forwarded-For from the proxy pods, named by a headless Service that lists their own addresses.
    const proxyPods = docs.find((d) => d!.kind === 'Service' && config.hub.trusted_proxies.includes(d!.metadata!.name));
    expect(proxyPods?.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, selector: { 'app.kubernetes.io/component': 'proxy' } });
  });

  it('renders LDAP, OpenID Connect and credential-broker values into a config LabHub accepts, secrets only from the Secret', async () => {
    const secrets: Record<string, string> = {
      'ldap-bind-password': '0123456789', 'oidc-client-secret': 'client: secret',
      'mqtt-admin-url': 'mqtt://admin:pw@10.20.0.5:1883', 'postgres-admin-url': 'postgres://admin:pw@10.20.0.6:5432/lab',
    };
    const text = await cluster.helm(['template', release, CHART, '--namespace', namespace, '--kube-version', await cluster.version(),
      '--set', 'auth.type=ldap', '--set', 'auth.ldap.url=ldaps://ldap.example.org', '--set', 'auth.ldap.search.base_dn=ou=people\\,dc=example\\,dc=org',
      '--set', 'auth.ldap.search.bind_dn=cn=reader\\,dc=example\\,dc=org', '--set', 'auth.oidc.issuer=https://id.example.org',
      '--set', 'auth.oidc.client_id=labhub', '--set', 'auth.extra.allowed_groups={physics}', '--set', 'auth.existingSecret=idp',
      '--set', 'credentials.mqtt.required=true', '--set', 'credentials.postgres.connect_url=postgres://db.lab:5432/lab',
      '--set', 'credentials.settings.ttl=600', '--set', 'credentials.existingSecret=services']);
    type Env = Array<{ name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }>;
    type Doc = { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: { template: { spec: { containers: Array<{ env: Env }> } } } };
    const docs = text.split(/^---$/m).map((d) => parse(d) as Doc | null).filter((d): d is Doc => !!d?.kind);
    const configYaml = docs.find((d) => d.kind === 'ConfigMap')!.data!['config.yaml']!;
    for (const secret of Object.values(secrets)) expect(text).not.toContain(secret);
    const hubEnv = docs.find((d) => d.kind === 'Deployment' && d.metadata.name.endsWith('-hub'))!.spec!.template.spec.containers[0]!.env;
    const env: Record<string, string> = {};
    for (const e of hubEnv) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (['idp', 'services'].includes(e.valueFrom!.secretKeyRef.name)) env[e.name] = secrets[e.valueFrom!.secretKeyRef.key]!;
    }
    const config = loadConfig({ file: writeTemp(configYaml), env });
    expect(config.authenticator.kind).toBe('ldap');
    expect(config.auth.ldap?.search).toMatchObject({ base_dn: 'ou=people,dc=example,dc=org', bind_password: '0123456789' });
    expect(config.auth.oidc).toMatchObject({ client_id: 'labhub', client_secret: 'client: secret' });
    expect(config.auth.allowed_groups).toEqual(['physics']);
    expect(config.credentials).toMatchObject({ ttl: 600, mqtt: { admin_url: secrets['mqtt-admin-url'], required: true }, postgres: { connect_url: 'postgres://db.lab:5432/lab' } });
  });

  it('spawns a pod with progress, reachable through the proxy; stop keeps the PVC; a new start finds the file', async () => {
    // The hub answers the POST once the server is ready (201) if that takes under 10 s: follow the progress meanwhile.
    const starting = api(hub.url, token, 'POST', '/users/dora/server');
    await eventually(async () => ((await api(hub.url, token, 'GET', '/users/dora')).body as { pending: string | null }).pending === 'spawn', 10_000, 50);
    const events = await progressEvents(hub.url, token, 'dora');
    const started = await starting;
    expect([201, 202], JSON.stringify(started.body)).toContain(started.status);
    const messages = events.map((e) => e.message).join('\n');
    expect(events.at(-1)?.ready, messages).toBe(true);
    const [node] = (await cluster.core.listNode()).items;
    expect(messages).toMatch(new RegExp(`Successfully assigned .* to ${node!.metadata!.name}[\\s\\S]*image "labhub/notebook-debian:latest" already present on machine[\\s\\S]*Started container notebook`));
    const res = await fetch(`${hub.url}/user/dora/api`);
    expect(res.status).toBe(200);
    expect(await res.json()).toHaveProperty('version');
    // The spawner's names (from dora's uid) as the hub recorded them.
    const { pod_name: pod, pvc_name: pvc } = ((await api(hub.url, token, 'GET', '/users/dora')).body as { servers: Record<string, { state: { pod_name: string; pvc_name: string } }> }).servers['']!.state;
    const podUid = (await cluster.core.readNamespacedPod({ name: pod, namespace })).metadata!.uid;
    expect((await cluster.core.readNamespacedSecret({ name: pod, namespace })).metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: 'Pod', uid: podUid })]);
    await cluster.exec(namespace, pod, 'echo kept-across-stops > /home/jovyan/kept.txt');
    // The run is accounted with what the pod requested (the default profile's requests).
    const podResources = (await cluster.core.readNamespacedPod({ name: pod, namespace })).spec!.containers[0]!.resources!;
    expect(podResources.requests).toEqual({ cpu: '100m', memory: '128Mi' });
    const usage = (await api(hub.url, token, 'GET', '/users/dora/usage')).body as { running: Array<{ requested: unknown }> };
    expect(usage.running).toEqual([expect.objectContaining({ requested: { cpu: 0.1, memory_bytes: 128 * 2 ** 20, gpus: 0 } })]);

    expect((await api(hub.url, token, 'DELETE', '/users/dora/server')).status).toBeLessThan(300);
    await eventually(async () => (await cluster.core.readNamespacedPod({ name: pod, namespace }).then(() => false, () => true)), 30_000);
    await expect(cluster.core.readNamespacedSecret({ name: pod, namespace })).rejects.toMatchObject({ code: 404 });
    expect((await cluster.core.readNamespacedPersistentVolumeClaim({ name: pvc, namespace })).spec!.resources!.requests).toEqual({ storage: '1Gi' });

    expect([201, 202]).toContain((await api(hub.url, token, 'POST', '/users/dora/server')).status);
    expect((await progressEvents(hub.url, token, 'dora')).at(-1)?.ready).toBe(true);
    expect(await cluster.exec(namespace, pod, 'cat /home/jovyan/kept.txt')).toContain('kept-across-stops');
    expect((await fetch(`${hub.url}/user/dora/api`)).status).toBe(200);
  });

  it('measures a busy pod\'s CPU and memory from the real metrics-server', async () => {
    expect([201, 202]).toContain((await api(hub.url, token, 'POST', '/users/fay/server')).status);
    expect((await progressEvents(hub.url, token, 'fay')).at(-1)?.ready).toBe(true);
    const { pod_name: pod } = ((await api(hub.url, token, 'GET', '/users/fay')).body as { servers: Record<string, { state: { pod_name: string } }> }).servers['']!.state;
    // A core's worth of CPU from the start, in the background (the profile sets no CPU limit): metrics-server's first
    // rate for the pod, two scrapes after it started, already includes it. The server's stop ends it.
    await cluster.exec(namespace, pod, 'nohup timeout 90 sh -c "while :; do :; done" >/dev/null 2>&1 &');
    type Measured = { cpu_seconds: number | null; memory_bytes: number | null; at: string } | null;
    // The hub (as the chart's ServiceAccount) samples once a second through the aggregation layer; metrics-server
    // answers 404 until it has two scrapes of the pod, 10 s apart, and the hub records nothing meanwhile.
    const measured = await eventually(async () => {
      const m = ((await api(hub.url, token, 'GET', '/users/fay/usage')).body as { running: Array<{ measured: Measured }> }).running[0]?.measured;
      return m && m.cpu_seconds !== null && m.cpu_seconds > 1 ? m : null;
    }, 60_000, 500);
    // Only a busy pod accrues a CPU-second that fast: an idle notebook server uses a few millicores.
    expect(measured.cpu_seconds).toBeGreaterThan(1);
    // The working set of the notebook server and the loop, under the profile's 256Mi limit.
    expect(measured.memory_bytes).toBeGreaterThan(2 ** 20);
    expect(measured.memory_bytes).toBeLessThanOrEqual(256 * 2 ** 20);
    // What the hub recorded is what metrics-server serves for the pod.
    const raw = JSON.parse(await cluster.kubectl(['get', '--raw', `/apis/metrics.k8s.io/v1beta1/namespaces/${namespace}/pods/${pod}`])) as PodMetrics;
    const served = podMetricsUsage(raw)!;
    expect(served.cpuCores).toBeGreaterThan(0.5);
    expect(served.memBytes! / measured.memory_bytes!).toBeGreaterThan(0.5);
    expect(served.memBytes! / measured.memory_bytes!).toBeLessThan(2);
    expect(hub.output).not.toMatch(/could not sample server usage|usage pass failed/);
    expect((await api(hub.url, token, 'DELETE', '/users/fay/server')).status).toBeLessThan(300);
  }, 120_000);

  it('fails a spawn whose image does not exist within seconds, with the reason', async () => {
    const t0 = Date.now();
    // Within the hub's 10 s wait the failure is the POST's answer, as in JupyterHub.
    const res = await api(hub.url, token, 'POST', '/users/eve/server', { profile: 'missing' });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(res.status).toBe(500);
    expect((res.body as { message: string }).message).toMatch(/ErrImagePull: failed to pull and unpack image "docker.io\/labhub\/does-not-exist:1"/);
    expect((await progressEvents(hub.url, token, 'eve')).at(-1)).toMatchObject({ failed: true, message: expect.stringMatching(/ErrImagePull/) });
    const left = await cluster.core.listNamespacedPod({ namespace, labelSelector: `hub.jupyter.org/username=${labelValue('eve')}` });
    expect(left.items.filter((p) => !p.metadata?.deletionTimestamp)).toEqual([]);
  });

  it('re-attaches to its pods after kill -9 and removes an orphan pod at the next start', async () => {
    hub.kill9();
    const orphan = `${hubId}-ghost`;
    await cluster.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: orphan, labels: { 'labhub.org/hub': hubId, 'app.kubernetes.io/component': 'singleuser-server' } },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [{ name: 'notebook', image: IMAGE, command: ['sleep', '600'], securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
        },
      },
    });
    await hub.start();
    await eventually(async () => (await cluster.core.readNamespacedPod({ name: orphan, namespace }).then(() => false, () => true)), 30_000);
    const user = await api(hub.url, token, 'GET', '/users/dora');
    const server = (user.body as { servers: Record<string, { ready: boolean; state: { pod_name: string } }> }).servers[''];
    expect(server?.ready).toBe(true);
    expect((await cluster.core.readNamespacedPod({ name: server!.state.pod_name, namespace })).status!.phase).toBe('Running');
    expect((await fetch(`${hub.url}/user/dora/api`)).status).toBe(200);
  });

  it('keeps generated secrets across helm upgrade (lookup against the live API server)', async () => {
    const ns = `${namespace}-helm`;
    await cluster.createNamespace(ns);
    const install = ['upgrade', '--install', 'keep', CHART, '--namespace', ns];
    await cluster.helm(install, 60_000);
    const first = await cluster.core.readNamespacedSecret({ name: 'keep-labhub-hub', namespace: ns });
    await cluster.helm([...install, '--set', 'singleuser.startTimeout=600'], 60_000);
    const second = await cluster.core.readNamespacedSecret({ name: 'keep-labhub-hub', namespace: ns });
    expect(second.data!['cookie-secret']).toHaveLength(first.data!['cookie-secret']!.length);
    expect(second.data).toEqual(first.data);
    const config = await cluster.core.readNamespacedConfigMap({ name: 'keep-labhub-hub', namespace: ns });
    expect(config.data!['config.yaml']).toContain('start_timeout: 600');
  });
});
