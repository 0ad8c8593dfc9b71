/**
 * The real one-node Kubernetes cluster the tests run on (scripts/k8s-cluster.sh: control plane, kubelet, containerd,
 * CNI, kube-proxy, CoreDNS, kube-router, local-path-provisioner, metrics-server), a namespace per test file,
 * service-account kubeconfigs from the TokenRequest API, and server-side apply of rendered manifests.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, VersionApi, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { eventually, HubProcess, REPO } from './hub.js';

const run = promisify(execFile);
export const K8S_BIN = join(process.env.LABHUB_K8S_DIR ?? '/opt/labhub/k8s', 'bin');
const CLUSTER_SCRIPT = join(REPO, 'scripts/k8s-cluster.sh');
export const CHART = join(REPO, 'deploy/helm/labhub');
/** helm's cache, config and data: a scratch directory, never the user's own. */
const HELM_HOME = '/tmp/labhub-helm';
const PARTS = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy', 'kubectl', 'helm', 'coredns', 'kube-router', 'local-path-provisioner', 'metrics-server'];

/** Every part of the cluster built and installed (scripts/setup-k8s.sh). */
export function clusterInstalled(): boolean {
  return PARTS.every((p) => existsSync(join(K8S_BIN, p))) && ['/usr/bin/etcd', '/usr/local/bin/etcd'].some((p) => existsSync(p))
    && existsSync('/usr/bin/containerd');
}

export class TestCluster {
  readonly kubeConfig = new KubeConfig();
  readonly core: CoreV1Api;
  private readonly namespaces: string[] = [];

  private constructor(readonly dir: string, readonly kubeconfigPath: string) {
    this.kubeConfig.loadFromFile(kubeconfigPath);
    this.core = this.kubeConfig.makeApiClient(CoreV1Api);
  }

  get server(): string {
    return this.kubeConfig.getCurrentCluster()!.server;
  }

  /**
   * The cluster, started if it is not running (`k8s-cluster.sh up` is idempotent and takes a lock, so test files
   * starting at once share one start). Its KUBECONFIG is what the script prints for `eval`.
   */
  static async connect(): Promise<TestCluster> {
    const { stdout } = await run(CLUSTER_SCRIPT, ['up'], { timeout: 600_000 }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`the test cluster did not start: ${err.stderr ?? err.message}`);
    });
    const kubeconfig = /^export KUBECONFIG=(.+)$/m.exec(stdout)?.[1];
    if (!kubeconfig) throw new Error(`k8s-cluster.sh up printed no KUBECONFIG: ${stdout}`);
    return new TestCluster(mkdtempSync(join(tmpdir(), 'labhub-k8s-')), kubeconfig);
  }

  /** The address the node (and so this machine) has in the cluster: where pods reach a hub running here. */
  async nodeAddress(): Promise<string> {
    const [node] = (await this.core.listNode()).items;
    const address = node?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    if (!address) throw new Error('the cluster\'s node has no InternalIP');
    return address;
  }

  /** The API server's version without the `v` (e.g. 1.30.14), for `helm template --kube-version`. */
  async version(): Promise<string> {
    const info = await this.kubeConfig.makeApiClient(VersionApi).getCode();
    return info.gitVersion.replace(/^v/, '');
  }

  /** Deletes the namespaces this test file made (and so everything in them); the cluster keeps running. */
  async stop(): Promise<void> {
    await Promise.all(this.namespaces.map((name) => this.core.deleteNamespace({ name }).catch(() => undefined)));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A namespace, once the controller-manager has made its `default` service account. */
  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name, labels } } });
    this.namespaces.push(name);
    await eventually(() => this.core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(() => true, () => false), 30_000);
  }

  /** A kubeconfig file that authenticates as a service account, with a token from the TokenRequest API. */
  async serviceAccountKubeconfig(namespace: string, serviceAccount: string): Promise<string> {
    const request = await this.core.createNamespacedServiceAccountToken({
      name: serviceAccount, namespace, body: { spec: { audiences: [], expirationSeconds: 3600 } }, // no audiences: the API server's own
    });
    const cluster = this.kubeConfig.getCurrentCluster()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: cluster.server, caData: cluster.caData }],
      users: [{ name: serviceAccount, token: request.status!.token }],
      contexts: [{ name: 'test', cluster: 'test', user: serviceAccount, namespace }],
      currentContext: 'test',
    });
    const path = join(this.dir, `${namespace}-${serviceAccount}.kubeconfig`);
    writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
    return path;
  }

  /** Server-side apply of every document of a YAML stream, in order; returns what the API server stored. */
  async apply(yamlText: string, namespace: string): Promise<KubernetesObject[]> {
    const api = KubernetesObjectApi.makeApiClient(this.kubeConfig);
    const out: KubernetesObject[] = [];
    for (const doc of parseAllDocuments(yamlText)) {
      const object = doc.toJS() as KubernetesObject | null;
      if (!object?.kind) continue;
      object.metadata = { ...object.metadata, namespace: object.metadata?.namespace ?? namespace };
      out.push(await api.patch(object, undefined, undefined, 'labhub-test', true, PatchStrategy.ServerSideApply));
    }
    return out;
  }

  /**
   * `labhub start` on this machine with the Kubernetes spawner in `namespace`, as the Helm chart's hub ServiceAccount
   * under the chart's Role and NetworkPolicies (everything the chart renders but its hub and proxy Deployments and the
   * hub's DB claim: this machine plays the hub), with an admin and its token. `env` adds to or overrides the hub's
   * settings (profiles, resources); `rendered` is the chart as helm rendered it.
   */
  async chartHub(namespace: string, options: { release: string; hubId: string; image: string; helmArgs?: string[]; env?: Record<string, string> }): Promise<{ hub: HubProcess; token: string; rendered: string }> {
    const rendered = await this.helm(['template', options.release, CHART, '--namespace', namespace, '--kube-version', await this.version(), ...(options.helmArgs ?? [])]);
    await this.apply(rendered.split(/^---$/m).filter((d) => !/^kind: (Deployment|PersistentVolumeClaim)$/m.test(d)).join('---\n'), namespace);
    const hub = new HubProcess({
      env: {
        LABHUB_SPAWNER__KIND: 'kubernetes',
        LABHUB_SPAWNER__KUBERNETES__KUBECONFIG: await this.serviceAccountKubeconfig(namespace, `${options.release}-labhub-hub`),
        LABHUB_SPAWNER__KUBERNETES__NAMESPACE: namespace,
        LABHUB_SPAWNER__KUBERNETES__HUB_ID: options.hubId,
        LABHUB_SPAWNER__KUBERNETES__IMAGE: options.image,
        LABHUB_SPAWNER__KUBERNETES__STORAGE__CAPACITY: '1Gi',
        // Pods reach the hub at the node's address, so the hub listens there.
        LABHUB_HUB__IP: await this.nodeAddress(),
        LABHUB_AUTHENTICATOR__KIND: 'dummy',
        LABHUB_USAGE__SAMPLE_INTERVAL: '1',
        ...options.env,
      },
    });
    try {
      await hub.start();
      const admin = await hub.cli(['users', 'add', 'admin', '--admin']);
      if (admin.status !== 0) throw new Error(`labhub users add admin failed: ${admin.stderr}`);
      return { hub, token: (await hub.cli(['token', 'admin'])).stdout.trim(), rendered };
    } catch (err) {
      // The caller's afterAll never sees a hub that this throw leaves unassigned: stop it here.
      await hub.cleanup();
      throw err;
    }
  }

  /** A shell command in a pod's first container, through the API server and the kubelet (`kubectl exec`). */
  async exec(namespace: string, pod: string, command: string): Promise<string> {
    return this.kubectl(['exec', '-n', namespace, pod, '--', 'sh', '-c', command]);
  }

  /** `helm` against this cluster (built by scripts/setup-k8s.sh); returns its output. */
  async helm(args: string[], timeoutMs = 300_000): Promise<string> {
    const { stdout } = await run(join(K8S_BIN, 'helm'), [...args, '--kubeconfig', this.kubeconfigPath], {
      timeout: timeoutMs, env: { ...process.env, HELM_CACHE_HOME: HELM_HOME, HELM_CONFIG_HOME: HELM_HOME, HELM_DATA_HOME: HELM_HOME },
    });
    return stdout;
  }

  /** `kubectl` against this cluster (built by scripts/setup-k8s.sh), for diagnostics. */
  async kubectl(args: string[]): Promise<string> {
    const { stdout } = await run(join(K8S_BIN, 'kubectl'), ['--kubeconfig', this.kubeconfigPath, ...args], { timeout: 30_000 });
    return stdout;
  }
}

