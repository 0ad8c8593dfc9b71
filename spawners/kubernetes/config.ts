/** spawner.kubernetes (snake_case config) → KubernetesSpawner options (camelCase settings). */
import type { LabHubConfig } from '../../hub/config/schema.js';
import type { Logger } from '../../hub/log.js';
import { KubernetesSpawner } from '../kubernetes.js';
import type { PodSettings } from './objects.js';
import type { Profile } from './profiles.js';

type KubeConfigSection = LabHubConfig['spawner']['kubernetes'];
type PodFields = Partial<Pick<KubeConfigSection, 'image' | 'pull_policy' | 'image_pull_secrets' | 'cmd' | 'args' | 'environment' | 'resources' | 'node_selector' | 'tolerations' | 'volumes' | 'extra_pod_spec'>>;

/** Only the keys present are mapped, and `null` stays `null`, so a profile's overrides keep deep-merge semantics. */
export function podSettingsFromConfig(fields: Record<string, unknown>): Record<string, unknown> {
  const f = fields as { [K in keyof PodFields]: PodFields[K] | null };
  const out: Record<string, unknown> = {};
  const map = <K extends keyof PodFields>(key: K, target: keyof PodSettings, convert: (v: NonNullable<PodFields[K]>) => unknown = (v) => v) => {
    const value = f[key];
    if (value === null) out[target] = null;
    else if (value !== undefined) out[target] = convert(value as NonNullable<PodFields[K]>);
  };
  map('image', 'image');
  map('pull_policy', 'pullPolicy');
  map('image_pull_secrets', 'imagePullSecrets');
  map('cmd', 'cmd');
  map('args', 'args');
  map('environment', 'environment');
  map('resources', 'resources');
  map('node_selector', 'nodeSelector');
  map('tolerations', 'tolerations', (list) => list.map(({ toleration_seconds: seconds, ...t }) => ({ ...t, ...(seconds !== undefined ? { tolerationSeconds: seconds } : {}) })));
  map('volumes', 'volumes', (list) => list.map((v) => ({
    name: v.name, claimName: v.claim_name, mountPath: v.mount_path, readOnly: v.read_only, ...(v.sub_path ? { subPath: v.sub_path } : {}),
  })));
  map('extra_pod_spec', 'extraPodSpec');
  return out;
}

export function createKubernetesSpawner(config: LabHubConfig, log: Logger): KubernetesSpawner {
  const k = config.spawner.kubernetes;
  const profiles: Profile[] = k.profiles.map((p) => ({
    slug: p.slug, displayName: p.display_name, ...(p.description ? { description: p.description } : {}), default: p.default,
    groups: p.groups, overrides: podSettingsFromConfig(p.overrides),
  }));
  return new KubernetesSpawner({
    ...(k.kubeconfig ? { kubeconfigPath: k.kubeconfig } : {}),
    ...(k.namespace ? { namespace: k.namespace } : {}),
    hubId: k.hub_id,
    pod: {
      ...(podSettingsFromConfig(k) as Partial<PodSettings> & Pick<PodSettings, 'image'>),
      uid: k.uid, gid: k.gid, fsGid: k.fs_gid, homeMountPath: k.home_mount_path,
      ...(k.service_account ? { serviceAccount: k.service_account } : {}),
    },
    storage: {
      enabled: k.storage.enabled, capacity: k.storage.capacity, accessModes: k.storage.access_modes,
      ...(k.storage.storage_class !== undefined ? { storageClass: k.storage.storage_class } : {}),
    },
    profiles,
    hubConnectUrl: k.hub_connect_url ?? config.hub.connect_url,
    deleteGraceSeconds: k.delete_grace_period,
    logger: log.child({ component: 'spawner' }),
  });
}
