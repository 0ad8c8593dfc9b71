/**
 * A real Kubernetes control plane for tests (scripts/k8s-test-cluster.sh: etcd + kube-apiserver on loopback), the
 * objects a cluster's controllers would have made (namespace, default service account), service-account
 * kubeconfigs from the TokenRequest API, and server-side apply of rendered manifests.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, VersionApi, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { REPO } from './hub.js';
import { freePort } from './ports.js';

const run = promisify(execFile);
export const K8S_BIN = join(process.env.LABHUB_K8S_DIR ?? '/opt/labhub/k8s', 'bin');
const SCRIPT = join(REPO, 'scripts/k8s-test-cluster.sh');

/** kube-apiserver built and etcd installed (scripts/setup-k8s.sh). */
export function controlPlaneInstalled(): boolean {
  return existsSync(join(K8S_BIN, 'kube-apiserver')) && ['/usr/bin/etcd', '/usr/local/bin/etcd'].some((p) => existsSync(p));
}

export class TestCluster {
  readonly kubeConfig = new KubeConfig();
  readonly core: CoreV1Api;

  private constructor(readonly dir: string, readonly kubeconfigPath: string) {
    this.kubeConfig.loadFromFile(kubeconfigPath);
    this.core = this.kubeConfig.makeApiClient(CoreV1Api);
  }

  get server(): string {
    return this.kubeConfig.getCurrentCluster()!.server;
  }

  static async start(): Promise<TestCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'labhub-k8s-'));
    const ports = [await freePort(), await freePort(), await freePort()];
    try {
      const { stdout } = await run(SCRIPT, ['start', dir, ...ports.map(String)], { timeout: 90_000 });
      return new TestCluster(dir, stdout.trim());
    } catch (err) {
      await run(SCRIPT, ['stop', dir]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the test control plane did not start: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
    }
  }

  /** The API server's version without the `v` (e.g. 1.30.14), for `helm template --kube-version`. */
  async version(): Promise<string> {
    const info = await this.kubeConfig.makeApiClient(VersionApi).getCode();
    return info.gitVersion.replace(/^v/, '');
  }

  async stop(): Promise<void> {
    await run(SCRIPT, ['stop', this.dir]).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A namespace with its `default` service account (the controller-manager would make it; this cluster has none). */
  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name, labels } } });
    await this.core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'default' } } });
  }

  /** A kubeconfig file that authenticates as a service account, with a token from the TokenRequest API. */
  async serviceAccountKubeconfig(namespace: string, serviceAccount: string): Promise<string> {
    const request = await this.core.createNamespacedServiceAccountToken({
      name: serviceAccount, namespace, body: { spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600 } },
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

  /** `kubectl` against this cluster (built by scripts/setup-k8s.sh), for diagnostics. */
  async kubectl(args: string[]): Promise<string> {
    const { stdout } = await run(join(K8S_BIN, 'kubectl'), ['--kubeconfig', this.kubeconfigPath, ...args], { timeout: 30_000 });
    return stdout;
  }
}

