/**
 * The manifests of one server: its Pod, the Secret holding its environment and the user's home PVC. Pure functions
 * of the settings (after profile overrides) and the request, so tests can check them without a cluster.
 */
import type { V1PersistentVolumeClaim, V1Pod, V1Secret, V1Toleration, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { labelValue, type ServerNames } from './names.js';

export const CONTAINER_NAME = 'notebook';
export const PORT_NAME = 'notebook-port';
export const HUB_LABEL = 'labhub.org/hub';
export const UID_LABEL = 'labhub.org/uid';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
export const SERVER_COMPONENT = 'singleuser-server';
export const STORAGE_COMPONENT = 'singleuser-storage';
const USER_ANNOTATION = 'labhub.org/username';
const SERVER_ANNOTATION = 'labhub.org/servername';

export interface SharedVolume {
  name: string;
  claimName: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

export interface ResourceSettings {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

/** Everything a profile may change. */
export interface PodSettings {
  image: string;
  pullPolicy: 'IfNotPresent' | 'Always' | 'Never';
  imagePullSecrets: string[];
  cmd?: string[];
  args: string[];
  environment: Record<string, string>;
  resources: ResourceSettings;
  nodeSelector: Record<string, string>;
  tolerations: V1Toleration[];
  volumes: SharedVolume[];
  /** Free-form fields deep-merged into the pod's spec last (admin escape hatch; validated by the API server). */
  extraPodSpec: Record<string, unknown>;
  uid: number;
  gid: number;
  fsGid: number;
  homeMountPath: string;
  notebookPort: number;
  serviceAccount?: string;
  restartPolicy: 'OnFailure' | 'Never' | 'Always';
}

export interface StorageSettings {
  enabled: boolean;
  capacity: string;
  storageClass?: string;
  accessModes: string[];
}

export interface ServerIdentity {
  hubId: string;
  user: string;
  /** The account's immutable id (users.uid), also a label: what removeUserData selects by. */
  uid: string;
  server: string;
  names: ServerNames;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * KubeSpawner's override rule: objects merge key by key, recursively; `null` deletes a key; anything else (arrays
 * included) replaces. Neither input is modified.
 */
export function deepMerge<T>(base: T, override: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(override)) return (override === undefined ? base : override) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (value === null) delete out[key];
    else if (value !== undefined) out[key] = deepMerge(out[key], value);
  }
  return out as T;
}

export function serverLabels(id: Pick<ServerIdentity, 'hubId' | 'user' | 'uid' | 'server'>): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'labhub',
    'app.kubernetes.io/managed-by': 'labhub',
    [COMPONENT_LABEL]: SERVER_COMPONENT,
    [HUB_LABEL]: id.hubId,
    'hub.jupyter.org/username': labelValue(id.user),
    'hub.jupyter.org/servername': labelValue(id.server),
    [UID_LABEL]: id.uid,
    // The chart's NetworkPolicy lets only pods with this label reach the hub's API.
    'hub.jupyter.org/network-access-hub': 'true',
  };
}

function rawNames(id: Pick<ServerIdentity, 'user' | 'server'>): Record<string, string> {
  return { [USER_ANNOTATION]: id.user, [SERVER_ANNOTATION]: id.server };
}

/** The server's whole environment, including its API token: mounted into the pod with envFrom, never in the pod spec. */
export function secretManifest(id: ServerIdentity, env: Record<string, string>): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: id.names.secret, labels: serverLabels(id), annotations: rawNames(id) },
    type: 'Opaque',
    stringData: env,
  };
}

export function pvcManifest(id: Pick<ServerIdentity, 'hubId' | 'user' | 'uid' | 'names'>, storage: StorageSettings): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: id.names.pvc,
      labels: {
        'app.kubernetes.io/name': 'labhub', 'app.kubernetes.io/managed-by': 'labhub', [COMPONENT_LABEL]: STORAGE_COMPONENT,
        [HUB_LABEL]: id.hubId, 'hub.jupyter.org/username': labelValue(id.user), [UID_LABEL]: id.uid,
      },
      annotations: { [USER_ANNOTATION]: id.user },
    },
    spec: {
      accessModes: storage.accessModes,
      resources: { requests: { storage: storage.capacity } },
      ...(storage.storageClass !== undefined ? { storageClassName: storage.storageClass } : {}),
    },
  };
}

export function podManifest(id: ServerIdentity, s: PodSettings, storage: StorageSettings): V1Pod {
  const volumes: V1Volume[] = [];
  const mounts: V1VolumeMount[] = [];
  if (storage.enabled) {
    volumes.push({ name: 'home', persistentVolumeClaim: { claimName: id.names.pvc } });
    mounts.push({ name: 'home', mountPath: s.homeMountPath });
  }
  for (const v of s.volumes) {
    volumes.push({ name: v.name, persistentVolumeClaim: { claimName: v.claimName, ...(v.readOnly ? { readOnly: true } : {}) } });
    mounts.push({ name: v.name, mountPath: v.mountPath, ...(v.readOnly ? { readOnly: true } : {}), ...(v.subPath ? { subPath: v.subPath } : {}) });
  }
  const resources = { ...(s.resources.requests ? { requests: s.resources.requests } : {}), ...(s.resources.limits ? { limits: s.resources.limits } : {}) };
  const spec = {
    automountServiceAccountToken: false,
    // Service links would put every Service of the namespace into the environment, hub's and proxy's included.
    enableServiceLinks: false,
    restartPolicy: s.restartPolicy,
    ...(s.serviceAccount ? { serviceAccountName: s.serviceAccount } : {}),
    securityContext: {
      runAsNonRoot: true, runAsUser: s.uid, runAsGroup: s.gid, fsGroup: s.fsGid,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    ...(Object.keys(s.nodeSelector).length ? { nodeSelector: s.nodeSelector } : {}),
    ...(s.tolerations.length ? { tolerations: s.tolerations } : {}),
    ...(s.imagePullSecrets.length ? { imagePullSecrets: s.imagePullSecrets.map((name) => ({ name })) } : {}),
    containers: [{
      name: CONTAINER_NAME,
      image: s.image,
      imagePullPolicy: s.pullPolicy,
      ...(s.cmd ? { command: s.cmd } : {}),
      ...(s.args.length ? { args: s.args } : {}),
      workingDir: s.homeMountPath,
      ports: [{ name: PORT_NAME, containerPort: s.notebookPort, protocol: 'TCP' }],
      // Ready only once the server listens: a server that exits right after it starts is reported as the crash it
      // is, not handed to the hub as ready (the kubelet calls a container without a probe ready when it runs).
      readinessProbe: { tcpSocket: { port: PORT_NAME }, periodSeconds: 1, failureThreshold: 3 },
      envFrom: [{ secretRef: { name: id.names.secret } }],
      ...(Object.keys(resources).length ? { resources } : {}),
      securityContext: {
        runAsNonRoot: true, allowPrivilegeEscalation: false, privileged: false,
        capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
      },
      volumeMounts: mounts,
    }],
    volumes,
  };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: id.names.pod, labels: serverLabels(id), annotations: rawNames(id) },
    spec: deepMerge(spec, s.extraPodSpec) as V1Pod['spec'],
  };
}
