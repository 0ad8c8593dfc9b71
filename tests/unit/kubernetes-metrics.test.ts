import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesSpawner } from '../../spawners/kubernetes.js';

/**
 * The Kubernetes spawner's usage sample on a cluster without a working metrics API. The test cluster serves
 * metrics.k8s.io from a real metrics-server (kubernetes.test.ts measures a pod there), so the cases where it is
 * missing are played here by a stand-in API server that answers as kube-apiserver does: 404 when no APIService
 * registers the group, 503 from the aggregation layer when metrics-server is registered but down.
 */
const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
const ANSWERS: Record<string, [number, unknown]> = {
  absent: [404, status(404, 'NotFound', 'the server could not find the requested resource')],
  down: [503, status(503, 'ServiceUnavailable', 'the server is currently unable to handle the request')],
  denied: [403, status(403, 'Forbidden', 'pods.metrics.k8s.io "denied" is forbidden: User "system:serviceaccount:lab:hub" cannot get resource "pods" in API group "metrics.k8s.io"')],
  busy: [200, { kind: 'PodMetrics', apiVersion: 'metrics.k8s.io/v1beta1', containers: [{ name: 'notebook', usage: { cpu: '998m', memory: '60Mi' } }] }],
};

describe('KubernetesSpawner.stats where the metrics API is missing', () => {
  let server: Server;
  let spawner: KubernetesSpawner;
  const paths: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      const [code, body] = ANSWERS[/\/pods\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? ''] ?? [500, {}];
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      // client-node speaks plain HTTP only with TLS verification off.
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
    });
    spawner = new KubernetesSpawner({ kubeConfig, namespace: 'lab', pod: { image: 'x' }, apiTimeoutMs: 5_000 });
  });

  afterAll(async () => {
    await spawner?.close();
    server?.close();
  });

  const state = (pod: string) => ({ pod_name: pod, namespace: 'lab', secret_name: pod });

  it('measures nothing, without an error, when the cluster has no metrics API or its server is down', async () => {
    await expect(spawner.stats(state('absent'))).resolves.toBeUndefined();
    await expect(spawner.stats(state('down'))).resolves.toBeUndefined();
    expect(paths).toContain('/apis/metrics.k8s.io/v1beta1/namespaces/lab/pods/absent');
  });

  it('reads what the API serves, and reports a refusal the hub\'s Role could fix', async () => {
    await expect(spawner.stats(state('busy'))).resolves.toEqual({ cpuCores: 0.998, memBytes: 60 * 2 ** 20 });
    await expect(spawner.stats(state('denied'))).rejects.toThrow(/hub's Role/);
  });
});
