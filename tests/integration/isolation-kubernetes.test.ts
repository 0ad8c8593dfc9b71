import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../hub/config/schema.js';
import { parseKubernetesState } from '../../spawners/kubernetes.js';
import { api, type HubProcess } from '../helpers/hub.js';
import { ferretdbAvailable } from '../helpers/ferretdb.js';
import { requireService } from '../helpers/jupyter.js';
import { clusterInstalled, TestCluster } from '../helpers/kube.js';
import { mosquittoUnavailableReason } from '../helpers/mosquitto.js';
import { postgresUnavailableReason } from '../helpers/postgres.js';
import { ACTORS, B, registerMatrix, type Credentials, type ServerSecrets } from '../helpers/isolation.js';

/**
 * The isolation matrix on the Kubernetes spawner: a real hub on the real test cluster (scripts/k8s-cluster.sh), pods
 * of the notebook image run by the kubelet, leases at real Mosquitto, PostgreSQL (SCRAM) and FerretDB.
 * A server's secrets are its Secret (the pod's environment), read from the API server.
 */
const kube = configSchema.parse({ spawner: { kind: 'kubernetes' } }).spawner.kubernetes;
const docker = new Docker();
const available = requireService('Kubernetes test cluster (scripts/setup-k8s.sh, scripts/k8s-cluster.sh)', clusterInstalled())
  && requireService('Docker engine', await docker.ping().then(() => true, () => false))
  && requireService(`Docker image ${kube.image}`, await docker.getImage(kube.image).inspect().then(() => true, () => false))
  && requireService('mosquitto with dynamic security', mosquittoUnavailableReason() === null)
  && requireService('postgres', postgresUnavailableReason() === null)
  && requireService('FerretDB', ferretdbAvailable());

/** The server's Secret as the pod receives it (envFrom): its hub token and its leases. */
function credentialsFromEnv(env: Record<string, string>): Credentials {
  const list = (v: string | undefined) => (v ? v.split(',') : []);
  return {
    mqtt: { url: env.LABHUB_MQTT_URL!, username: env.LABHUB_MQTT_USERNAME!, password: env.LABHUB_MQTT_PASSWORD!, subscribe: list(env.LABHUB_MQTT_SUBSCRIBE), publish: list(env.LABHUB_MQTT_PUBLISH) },
    postgres: { url: env.LABHUB_POSTGRES_URL!, username: env.LABHUB_POSTGRES_USERNAME!, password: env.LABHUB_POSTGRES_PASSWORD!, schema: env.LABHUB_POSTGRES_SCHEMA! },
    mongodb: { url: env.LABHUB_MONGODB_URL!, username: env.LABHUB_MONGODB_USERNAME!, password: env.LABHUB_MONGODB_PASSWORD!, database: env.LABHUB_MONGODB_DATABASE! },
  };
}

describe.skipIf(!available)('isolation matrix: Kubernetes spawner', () => {
  const namespace = `iso-${randomBytes(3).toString('hex')}`;
  let cluster: TestCluster;

  /** The pod of a user's default server, as the hub recorded it in the server's state. */
  async function podOf(hub: HubProcess, admin: string, user: string): Promise<V1Pod> {
    const model = (await api(hub.url, admin, 'GET', `/users/${user}`)).body as { servers: Record<string, { state: unknown }> };
    const state = parseKubernetesState(model.servers['']?.state as never);
    if (!state) throw new Error(`${user}'s server has no pod: ${JSON.stringify(model.servers)}`);
    return cluster.core.readNamespacedPod({ name: state.pod_name, namespace: state.namespace });
  }

  async function claimsOf(hub: HubProcess, admin: string, user: string): Promise<string[]> {
    return ((await podOf(hub, admin, user)).spec!.volumes ?? []).flatMap((v) => (v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : []));
  }

  /** The server's environment as the pod receives it from its Secret (envFrom). */
  async function secretEnvOf(hub: HubProcess, admin: string, user: string): Promise<Record<string, string>> {
    const pod = await podOf(hub, admin, user);
    const names = (pod.spec!.containers[0]!.envFrom ?? []).map((e) => e.secretRef?.name).filter((n): n is string => !!n);
    const env: Record<string, string> = {};
    for (const name of names) {
      const secret = await cluster.core.readNamespacedSecret({ name, namespace });
      for (const [k, v] of Object.entries(secret.data ?? {})) env[k] = Buffer.from(v, 'base64').toString('utf8');
    }
    return env;
  }

  afterAll(async () => {
    await cluster?.stop();
  });

  const world = registerMatrix({ servers: true, leases: true, volumes: true }, async () => {
    cluster = await TestCluster.connect();
    await cluster.createNamespace(namespace);
    return {
      env: {
        LABHUB_SPAWNER__KIND: 'kubernetes',
        LABHUB_SPAWNER__KUBERNETES__KUBECONFIG: cluster.kubeconfigPath,
        LABHUB_SPAWNER__KUBERNETES__NAMESPACE: namespace,
        LABHUB_SPAWNER__KUBERNETES__HUB_ID: 'iso',
        LABHUB_SPAWNER__KUBERNETES__STORAGE__CAPACITY: '1Gi',
        // Pods reach the hub at the node's address, so the hub listens there.
        LABHUB_HUB__IP: await cluster.nodeAddress(),
      },
      access: {
        secretsOf: async (hub, admin, user): Promise<ServerSecrets> => {
          const env = await secretEnvOf(hub, admin, user);
          return { apiToken: env.JUPYTERHUB_API_TOKEN!, credentials: credentialsFromEnv(env) };
        },
        mountsOf: claimsOf,
        homeVolumeOf: async (hub, admin, user) => {
          const pod = await podOf(hub, admin, user);
          const mount = pod.spec!.containers[0]!.volumeMounts!.find((m) => m.mountPath === kube.home_mount_path)!;
          return pod.spec!.volumes!.find((v) => v.name === mount.name)!.persistentVolumeClaim!.claimName;
        },
      },
    };
  });

  it('gives A and B distinct pods, Secrets and PVCs; each pod mounts only its own PVC and reads only its own Secret', async () => {
    const { hub, admin, bHomeVolume } = world();
    const a = ACTORS['plain user'];
    const describePod = async (user: string) => {
      const pod = await podOf(hub, admin, user);
      const secrets = [
        ...(pod.spec!.containers[0]!.envFrom ?? []).map((e) => e.secretRef?.name),
        ...(pod.spec!.volumes ?? []).map((v) => v.secret?.secretName),
        ...(pod.spec!.containers[0]!.env ?? []).map((e) => e.valueFrom?.secretKeyRef?.name),
      ].filter((n): n is string => !!n);
      return { name: pod.metadata!.name!, claims: await claimsOf(hub, admin, user), secrets: [...new Set(secrets)], token: pod.spec!.automountServiceAccountToken };
    };
    const [pa, pb] = [await describePod(a), await describePod(B)];
    expect(pa.name).not.toBe(pb.name);
    expect(pb.claims).toEqual([bHomeVolume]);
    expect(pa.claims).toHaveLength(1);
    expect(pa.claims).not.toContain(bHomeVolume);
    expect(pa.secrets).toHaveLength(1);
    expect(pb.secrets).toHaveLength(1);
    expect(pa.secrets[0]).not.toBe(pb.secrets[0]);
    expect([pa.token, pb.token]).toEqual([false, false]);
    const [ea, eb] = [await secretEnvOf(hub, admin, a), await secretEnvOf(hub, admin, B)];
    expect(ea.JUPYTERHUB_USER).toBe(a);
    expect(eb.JUPYTERHUB_USER).toBe(B);
    for (const secret of [eb.JUPYTERHUB_API_TOKEN!, eb.LABHUB_MQTT_PASSWORD!, eb.LABHUB_POSTGRES_PASSWORD!, eb.LABHUB_MONGODB_PASSWORD!]) {
      expect(Object.values(ea)).not.toContain(secret);
    }
  });
});
