/**
 * KubernetesSpawner: each notebook server is a pod (JupyterHub's KubeSpawner), on @kubernetes/client-node.
 *
 * - Names from the account's immutable uid (kubernetes/names.ts): pod and Secret `<prefix>--<uid>[--<server>]`,
 *   home PVC `<prefix>-home--<uid>` (accounts from before uids keep `<prefix>-home-<user>`). Labels carry this hub's
 *   id, the component, the uid and label-safe user/server names; annotations the raw names.
 * - The server's whole environment, API token included, is a per-pod Secret read with envFrom: the pod spec holds no
 *   secret value. The Secret is created first, then the pod, then the Secret gets an owner reference to the pod so
 *   the garbage collector deletes it with the pod; stop() deletes it too.
 * - The home PVC is created once per user and kept across stops; its name is in the state.
 * - Pod state comes from one list+watch cache of this hub's pods, events from one cache of the namespace's pod
 *   events (kubernetes/cache.ts); a spawn subscribes to them instead of opening its own watch. Events become
 *   progress messages; ErrImagePull, an unschedulable pod, a crash loop or an exit fail the spawn at once with the
 *   reason, and the pod is deleted.
 * - State `{pod_name, namespace, secret_name, pvc_name}` is saved before the pod is created, so a hub killed at any
 *   point finds the pod again (poll/stop) or removes it as an orphan at its next start.
 */
import { readFileSync } from 'node:fs';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, type CoreV1Event, type V1ContainerStateTerminated, type V1Pod } from '@kubernetes/client-node';
import { HttpError } from '../hub/errors.js';
import { createLogger, type Logger } from '../hub/log.js';
import { containerHubEnv } from './container-env.js';
import { ResourceCache } from './kubernetes/cache.js';
import { homeClaimName, serverNames } from './kubernetes/names.js';
import {
  COMPONENT_LABEL, CONTAINER_NAME, HUB_LABEL, podManifest, pvcManifest, SERVER_COMPONENT, secretManifest, STORAGE_COMPONENT, UID_LABEL,
  type PodSettings, type ServerIdentity, type StorageSettings,
} from './kubernetes/objects.js';
import { checkProfileOption, isClassProfile, reservedResources, settingsFor, withClassProfile, type Profile } from './kubernetes/profiles.js';
import type { PollResult, ReservedResources, ServerStats, SpawnRequest, SpawnResult, Spawner, SpawnerState, UserKey } from './spawner.js';
import { podMetricsUsage, type PodMetrics } from './kubernetes/metrics.js';

export interface KubernetesSpawnerOptions {
  /** Default: `kubeconfigPath`, else KUBECONFIG / ~/.kube/config / the in-cluster service account. */
  kubeConfig?: KubeConfig;
  kubeconfigPath?: string;
  /** Default: the in-cluster service account's namespace, else `default`. */
  namespace?: string;
  /** Marks this hub's pods; pods with it that the DB does not know are removed at start. Default `labhub`. */
  hubId?: string;
  /** Prefix of pod, Secret and PVC names; default the hub id. */
  namePrefix?: string;
  pod: Partial<PodSettings> & Pick<PodSettings, 'image'>;
  storage?: Partial<StorageSettings>;
  profiles?: Profile[];
  /** How pods reach the hub, e.g. `http://labhub-hub.labhub.svc:8081`; default the hub's own connect URL. */
  hubConnectUrl?: string;
  /** Seconds a stopped pod gets to exit; default 1 (KubeSpawner's). */
  deleteGraceSeconds?: number;
  /** Limit for one API call and for the first list of pods; default 30 s. */
  apiTimeoutMs?: number;
  logger?: Logger;
}

export interface KubernetesState {
  pod_name: string;
  namespace: string;
  secret_name: string;
  pvc_name?: string;
}

const DNS_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
/** Container states that do not get better by waiting: the spawn fails with them at once. */
const FATAL_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'CreateContainerConfigError', 'CreateContainerError', 'CrashLoopBackOff', 'RunContainerError']);
/**
 * The kubelet gives its Secret and ConfigMap caches one second to sync before it reports CreateContainerConfigError,
 * and tries again on its next pass over the pod: on a busy node that error passes by itself.
 */
const KUBELET_CACHE_NOT_SYNCED = /^failed to sync \S+ cache: /;

/** What a setting falls back to when neither the spawner's options nor a profile give it (a profile's `null` included). */
const POD_DEFAULTS: Omit<PodSettings, 'image'> = {
  pullPolicy: 'IfNotPresent', imagePullSecrets: [], args: [], environment: {}, resources: {}, nodeSelector: {},
  tolerations: [], volumes: [], extraPodSpec: {}, uid: 1000, gid: 1000, fsGid: 1000, homeMountPath: '/home/jovyan',
  notebookPort: 8888, restartPolicy: 'OnFailure',
};

export function parseKubernetesState(state: SpawnerState | null | undefined): KubernetesState | null {
  if (!state || typeof state !== 'object') return null;
  const { pod_name: pod, namespace, secret_name: secret, pvc_name: pvc } = state as Record<string, unknown>;
  const valid = (v: unknown): v is string => typeof v === 'string' && DNS_NAME.test(v);
  if (!valid(pod) || !valid(namespace) || !valid(secret) || (pvc !== undefined && !valid(pvc))) return null;
  return { pod_name: pod, namespace, secret_name: secret, ...(pvc !== undefined ? { pvc_name: pvc } : {}) };
}

/** Status code of an error answered by the API server; undefined for transport errors. */
function apiStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' && code >= 100 && code < 600 ? code : undefined;
}

/** The API server's own message (`pods "x" is forbidden: …`) rather than the client's wrapper. */
function apiMessage(err: unknown): string {
  let body = (err as { body?: unknown } | undefined)?.body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text);
    } catch {
      return text.slice(0, 500);
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error && signal.reason.name !== 'AbortError' && signal.reason.name !== 'TimeoutError'
    ? signal.reason
    : new Error('Server start was cancelled');
}

/** Why a starting pod will not become ready, or null while it still may. */
export function podFailure(pod: V1Pod): string | null {
  if (pod.metadata?.deletionTimestamp) return 'the pod was deleted while it started';
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') return `Unschedulable: ${scheduled.message ?? 'no node can run it'}`;
  const container = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER_NAME);
  const exit = (t: V1ContainerStateTerminated) => `the notebook server exited with code ${t.exitCode}${t.reason ? ` (${t.reason})` : ''}${t.message ? `: ${t.message}` : ''}`;
  const waiting = container?.state?.waiting;
  const last = container?.lastState?.terminated;
  const passing = waiting?.reason === 'CreateContainerConfigError' && KUBELET_CACHE_NOT_SYNCED.test(waiting.message ?? '');
  if (waiting?.reason && FATAL_WAITING.has(waiting.reason) && !passing) {
    return waiting.reason === 'CrashLoopBackOff' && last ? `CrashLoopBackOff: ${exit(last)}` : `${waiting.reason}: ${waiting.message ?? ''}`.trim();
  }
  const terminated = container?.state?.terminated ?? (container?.restartCount ? last : undefined);
  if (terminated) return exit(terminated);
  if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return `the pod ended (${pod.status.phase}${pod.status.reason ? `: ${pod.status.reason}` : ''})`;
  return null;
}

export function podReady(pod: V1Pod): boolean {
  const container = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER_NAME);
  return pod.status?.phase === 'Running' && !!pod.status.podIP && !pod.metadata?.deletionTimestamp && container?.ready === true;
}

function defaultNamespace(): string {
  try {
    return readFileSync(IN_CLUSTER_NAMESPACE, 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

export class KubernetesSpawner implements Spawner {
  readonly kind = 'kubernetes';
  readonly namespace: string;
  readonly core: CoreV1Api;
  private readonly kubeConfig: KubeConfig;
  private readonly hubId: string;
  private readonly namePrefix: string;
  private readonly pod: PodSettings;
  private readonly storage: StorageSettings;
  private readonly profiles: Profile[];
  private readonly hubConnectUrl: string | undefined;
  private readonly deleteGraceSeconds: number;
  private readonly apiTimeoutMs: number;
  private readonly log: Logger;
  private readonly selector: string;
  private readonly metricsApi: CustomObjectsApi;
  readonly pods: ResourceCache<V1Pod>;
  readonly events: ResourceCache<CoreV1Event>;

  constructor(options: KubernetesSpawnerOptions) {
    this.kubeConfig = options.kubeConfig ?? new KubeConfig();
    if (!options.kubeConfig) {
      if (options.kubeconfigPath) this.kubeConfig.loadFromFile(options.kubeconfigPath);
      else this.kubeConfig.loadFromDefault();
    }
    this.namespace = options.namespace ?? defaultNamespace();
    this.hubId = options.hubId ?? 'labhub';
    this.namePrefix = options.namePrefix ?? this.hubId;
    this.pod = { ...POD_DEFAULTS, ...options.pod };
    if (this.pod.uid === 0) throw new Error('the Kubernetes spawner does not run servers as root (uid 0)');
    this.storage = { enabled: true, capacity: '10Gi', accessModes: ['ReadWriteOnce'], ...options.storage };
    this.profiles = options.profiles ?? [];
    this.hubConnectUrl = options.hubConnectUrl;
    this.deleteGraceSeconds = options.deleteGraceSeconds ?? 1;
    this.apiTimeoutMs = options.apiTimeoutMs ?? 30_000;
    this.log = options.logger ?? createLogger('kubernetes-spawner');
    this.core = this.kubeConfig.makeApiClient(CoreV1Api);
    this.metricsApi = this.kubeConfig.makeApiClient(CustomObjectsApi);
    this.selector = `${HUB_LABEL}=${this.hubId},${COMPONENT_LABEL}=${SERVER_COMPONENT}`;
    const ns = this.namespace;
    this.pods = new ResourceCache<V1Pod>({
      kubeConfig: this.kubeConfig, path: `/api/v1/namespaces/${ns}/pods`, labelSelector: this.selector, log: this.log,
      list: () => this.core.listNamespacedPod({ namespace: ns, labelSelector: this.selector }),
    });
    this.events = new ResourceCache<CoreV1Event>({
      kubeConfig: this.kubeConfig, path: `/api/v1/namespaces/${ns}/events`, fieldSelector: 'involvedObject.kind=Pod', log: this.log,
      list: () => this.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.kind=Pod' }),
    });
  }

  /** The API server's address, for messages. */
  get server(): string {
    return this.kubeConfig.getCurrentCluster()?.server ?? '(no cluster configured)';
  }

  /**
   * One API call bounded by apiTimeoutMs and the request's signal. Unreachable server → 503; forbidden → 500 naming
   * what the hub's service account lacks; other refusals keep the API server's message.
   */
  private async call<T>(what: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw abortReason(signal);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stop = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HttpError(503, `The Kubernetes API server at ${this.server} did not answer (${what}) within ${Math.round(this.apiTimeoutMs / 1000)} s.`)), this.apiTimeoutMs);
      onAbort = () => reject(abortReason(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([work(), stop]);
    } catch (err) {
      if (err instanceof HttpError || signal?.aborted) throw err;
      const status = apiStatus(err);
      if (status === undefined) throw new HttpError(503, `Cannot reach the Kubernetes API server at ${this.server} (${what}): ${apiMessage(err)}. Ask an administrator to check the cluster.`);
      if (status === 403) throw new HttpError(500, `The hub may not ${what} in namespace ${this.namespace}: ${apiMessage(err)}. An administrator must grant it in the hub's Role.`);
      throw Object.assign(err as Error, { apiMessage: apiMessage(err) });
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  private async ready(): Promise<void> {
    try {
      await Promise.all([this.pods.ready(this.apiTimeoutMs), this.events.ready(this.apiTimeoutMs)]);
    } catch (err) {
      throw new HttpError(503, `Cannot watch pods on the Kubernetes API server at ${this.server}: ${(err as Error).message}.`);
    }
  }

  /** The spawner's own profiles (user option `profile: <slug>`), which the hub leaves to it. */
  get profileSlugs(): string[] {
    return this.profiles.map((p) => p.slug);
  }

  userVolumes(user: UserKey & { name: string }): string[] {
    return [homeClaimName(this.namePrefix, user)];
  }

  checkOptions(request: Pick<SpawnRequest, 'userOptions' | 'profile'>): void {
    checkProfileOption(this.profiles, isClassProfile(request.profile) ? {} : request.userOptions);
  }

  plannedResources(request: Pick<SpawnRequest, 'user' | 'userOptions' | 'profile'>): ReservedResources {
    return reservedResources(this.podSettings(request).settings.resources);
  }

  /** The pod's settings for a request: the config's, then the spawner profile or the class profile chosen. */
  private podSettings(request: Pick<SpawnRequest, 'user' | 'userOptions' | 'profile'>) {
    const classChosen = isClassProfile(request.profile);
    const chosen = settingsFor(this.pod, classChosen ? [] : this.profiles, classChosen ? {} : request.userOptions, request.user.groups);
    const settings: PodSettings = withClassProfile({ ...POD_DEFAULTS, image: this.pod.image, ...(chosen.settings as Partial<PodSettings>) }, request.profile);
    return { settings, profile: chosen.profile };
  }

  /** Everything start() would create for a request, without creating it (tests, diagnostics). */
  manifests(request: Pick<SpawnRequest, 'user' | 'serverName' | 'prefix' | 'env' | 'userOptions' | 'profile'>) {
    const { settings, profile } = this.podSettings(request);
    const id: ServerIdentity = {
      hubId: this.hubId, user: request.user.name, uid: request.user.uid, server: request.serverName,
      names: serverNames(this.namePrefix, request.user, request.serverName),
    };
    const env = {
      ...containerHubEnv(request.env, {
        hubConnectUrl: this.hubConnectUrl, port: settings.notebookPort, prefix: request.prefix,
        advice: 'An administrator must set the Kubernetes spawner hub_connect_url (e.g. the hub Service: http://labhub-hub:8081).',
      }),
      JUPYTER_IMAGE_SPEC: settings.image, JUPYTER_IMAGE: settings.image, ...settings.environment,
    };
    return { id, profile, settings, pod: podManifest(id, settings, this.storage), secret: secretManifest(id, env), pvc: this.storage.enabled ? pvcManifest(id, this.storage) : null };
  }

  async start(request: SpawnRequest): Promise<SpawnResult> {
    const { signal } = request;
    if (signal.aborted) throw abortReason(signal);
    if (!request.prefix.startsWith('/') || !request.prefix.endsWith('/')) throw new Error(`invalid prefix ${JSON.stringify(request.prefix)}`);
    const m = this.manifests(request);
    const { names } = m.id;
    const ns = this.namespace;
    await this.ready();
    await this.checkSharedClaims(request.profile, signal);
    if (m.pvc) {
      const created = await this.call(`create persistentvolumeclaims ${names.pvc}`, () => this.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: m.pvc! }), signal)
        .then(() => true, (err: unknown) => {
          if (apiStatus(err) === 409) return false;
          throw this.refused('create the home volume', err);
        });
      request.progress({ progress: 5, message: created ? `Created home volume ${names.pvc}` : `Using home volume ${names.pvc}` });
    }
    await this.removeStale(names.pod, names.secret, signal);
    const state: KubernetesState = { pod_name: names.pod, namespace: ns, secret_name: names.secret, ...(m.pvc ? { pvc_name: names.pvc } : {}) };
    await request.saveState({ ...state });
    try {
      await this.call(`create secrets ${names.secret}`, () => this.core.createNamespacedSecret({ namespace: ns, body: m.secret }), signal)
        .catch((err: unknown) => {
          throw this.refused('create the server\'s Secret', err);
        });
      request.progress({ progress: 10, message: `Creating pod ${names.pod}${m.profile ? ` (profile ${m.profile.slug})` : ''}` });
      const created = await this.call(`create pods ${names.pod}`, () => this.core.createNamespacedPod({ namespace: ns, body: m.pod }), signal)
        .catch((err: unknown) => {
          throw this.refused('create the pod', err);
        });
      const uid = created.metadata!.uid!;
      await this.ownSecret(names.secret, names.pod, uid, signal);
      const pod = await this.waitUntilReady(names.pod, uid, request);
      const url = `http://${pod.status!.podIP!}:${m.settings.notebookPort}`;
      this.log.info({ user: request.user.name, server: request.serverName, pod: names.pod, url }, 'pod started');
      request.progress({ progress: 95, message: `Pod ${names.pod} is running at ${pod.status!.podIP!}` });
      return { url, state: { ...state }, resources: reservedResources(m.settings.resources) };
    } catch (err) {
      await this.remove(state, 0).catch((e: unknown) => this.log.error({ pod: names.pod, err: apiMessage(e) }, 'could not remove the pod of a failed start'));
      throw err;
    }
  }

  /**
   * Refuses a class's shared claim that is labelled as a user's home (this hub's or another's, including users since
   * deleted): the hub checked the name against the users it has, the claim's labels are the last word.
   */
  private async checkSharedClaims(profile: SpawnRequest['profile'], signal: AbortSignal): Promise<void> {
    for (const { volume } of profile?.sharedVolumes ?? []) {
      const claim = await this.call(`get persistentvolumeclaims ${volume}`, () => this.core.readNamespacedPersistentVolumeClaim({ name: volume, namespace: this.namespace }), signal)
        .catch((err: unknown) => {
          if (apiStatus(err) === 404) return null;
          throw err;
        });
      if (claim?.metadata?.labels?.[COMPONENT_LABEL] === STORAGE_COMPONENT) {
        throw new HttpError(403, `The shared claim ${volume} of ${profile!.id} is a user's home; no class may mount it.`);
      }
    }
  }

  private refused(what: string, err: unknown): Error {
    if (err instanceof HttpError || apiStatus(err) === undefined) return err as Error;
    return new HttpError(500, `Kubernetes refused to ${what}: ${apiMessage(err)}`);
  }

  /** The Secret is deleted with its pod by the garbage collector; a failure here only loses that safety net. */
  private async ownSecret(secret: string, pod: string, uid: string, signal: AbortSignal): Promise<void> {
    const body = { metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod, uid }] } };
    await this.call(`patch secrets ${secret}`, () => this.core.patchNamespacedSecret({ name: secret, namespace: this.namespace, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)), signal)
      .catch((err: unknown) => {
        if (signal.aborted) throw err;
        this.log.warn({ secret, err: apiMessage(err) }, 'could not give the server\'s Secret an owner reference to its pod');
      });
  }

  /** A pod or Secret of ours left under this server's names (lost state) is removed; someone else's is not touched. */
  private async removeStale(pod: string, secret: string, signal: AbortSignal): Promise<void> {
    const ns = this.namespace;
    const existing = await this.call(`get pods ${pod}`, () => this.core.readNamespacedPod({ name: pod, namespace: ns }), signal).catch((err: unknown) => {
      if (apiStatus(err) === 404) return null;
      throw this.refused('read the pod', err);
    });
    const existingSecret = await this.call(`get secrets ${secret}`, () => this.core.readNamespacedSecret({ name: secret, namespace: ns }), signal).catch((err: unknown) => {
      if (apiStatus(err) === 404) return null;
      throw this.refused('read the server\'s Secret', err);
    });
    for (const [kind, object] of [['pod', existing], ['Secret', existingSecret]] as const) {
      if (object && object.metadata?.labels?.[HUB_LABEL] !== this.hubId) {
        throw new HttpError(409, `A ${kind} named ${object.metadata?.name ?? ''} that this hub did not create exists in namespace ${ns}; an administrator must remove it.`);
      }
    }
    if (existing) this.log.info({ pod }, 'removing the previous pod of this server');
    await this.remove({ pod_name: pod, namespace: ns, secret_name: secret }, 0, signal);
  }

  private waitUntilReady(name: string, uid: string, request: SpawnRequest): Promise<V1Pod> {
    const { signal } = request;
    let progress = 15;
    const seenEvents = new Set<string>();
    return new Promise<V1Pod>((resolve, reject) => {
      const cleanups: Array<() => void> = [];
      const finish = (err: Error | null, pod?: V1Pod) => {
        for (const c of cleanups) c();
        if (err) reject(err);
        else resolve(pod!);
      };
      const check = (pod: V1Pod | undefined, deleted = false) => {
        if (!pod || pod.metadata?.uid !== uid) return;
        if (deleted) return finish(new HttpError(500, `The pod ${name} was deleted while it started.`));
        const failure = podFailure(pod);
        if (failure) {
          this.log.warn({ pod: name, failure }, 'pod failed to start');
          return finish(new HttpError(500, `The server's pod ${name} cannot start: ${failure}`));
        }
        if (podReady(pod)) finish(null, pod);
      };
      const onEvent = (event: CoreV1Event) => {
        const key = `${event.metadata.uid ?? ''}/${event.count ?? 1}`;
        if (event.involvedObject.uid !== uid || seenEvents.has(key)) return;
        seenEvents.add(key);
        progress += (90 - progress) / 4;
        request.progress({ progress: Math.round(progress), message: `${event.type === 'Warning' ? '[Warning] ' : ''}${event.message ?? event.reason ?? ''}` });
      };
      cleanups.push(this.pods.subscribe((pod, deleted) => check(pod, deleted)));
      cleanups.push(this.events.subscribe(onEvent));
      const onAbort = () => finish(abortReason(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => signal.removeEventListener('abort', onAbort));
      for (const event of this.events.list()) onEvent(event);
      check(this.pods.get(name));
    });
  }

  /**
   * The pod's current CPU rate and memory from the metrics API (metrics.k8s.io, served by metrics-server) where the
   * cluster has one; undefined where it does not, or has no sample of the pod yet.
   */
  async stats(state: SpawnerState): Promise<ServerStats | undefined> {
    const s = parseKubernetesState(state);
    if (!s) return undefined;
    const metrics = await this.call(`get pods.metrics.k8s.io ${s.pod_name}`, () => this.metricsApi.getNamespacedCustomObject({
      group: 'metrics.k8s.io', version: 'v1beta1', namespace: s.namespace, plural: 'pods', name: s.pod_name,
    }) as Promise<PodMetrics>).catch((err: unknown) => {
      if (apiStatus(err) === 404 || apiStatus(err) === 503) return undefined;
      throw err;
    });
    return metrics ? podMetricsUsage(metrics) : undefined;
  }

  async poll(state: SpawnerState): Promise<PollResult> {
    const s = parseKubernetesState(state);
    if (!s) return { running: false, exitCode: null };
    await this.ready();
    let pod = this.pods.get(s.pod_name);
    // The cache lags a moment behind a pod just created elsewhere; the API server is the authority on a miss.
    pod ??= await this.call(`get pods ${s.pod_name}`, () => this.core.readNamespacedPod({ name: s.pod_name, namespace: s.namespace })).catch((err: unknown) => {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    });
    if (!pod || pod.metadata?.deletionTimestamp) return { running: false, exitCode: null };
    if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') {
      const terminated = pod.status.containerStatuses?.find((c) => c.name === CONTAINER_NAME)?.state?.terminated;
      return { running: false, exitCode: terminated?.exitCode ?? null };
    }
    return { running: true };
  }

  async stop(state: SpawnerState, options: { now?: boolean } = {}): Promise<void> {
    const s = parseKubernetesState(state);
    if (!s) return;
    await this.remove(s, options.now ? 0 : this.deleteGraceSeconds);
    this.log.info({ pod: s.pod_name, pvcKept: s.pvc_name }, 'pod stopped');
  }

  /** Deletes the pod and its Secret and waits until the pod is gone (the kubelet has stopped it). */
  private async remove(s: KubernetesState, graceSeconds: number, signal?: AbortSignal): Promise<void> {
    const gone = (err: unknown) => {
      if (apiStatus(err) !== 404) throw err;
    };
    await this.call(`delete pods ${s.pod_name}`, () => this.core.deleteNamespacedPod({ name: s.pod_name, namespace: s.namespace, gracePeriodSeconds: graceSeconds }), signal).catch(gone);
    await this.call(`delete secrets ${s.secret_name}`, () => this.core.deleteNamespacedSecret({ name: s.secret_name, namespace: s.namespace }), signal).catch(gone);
    const deadline = Date.now() + (graceSeconds + 30) * 1000;
    while (Date.now() < deadline) {
      const pod = await this.call(`get pods ${s.pod_name}`, () => this.core.readNamespacedPod({ name: s.pod_name, namespace: s.namespace }), signal).catch((err: unknown) => {
        if (apiStatus(err) === 404) return null;
        throw err;
      });
      if (!pod) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    this.log.warn({ pod: s.pod_name }, 'the pod is still terminating; the kubelet will finish removing it');
  }

  /**
   * Pods labelled as this hub's servers that none of `known` describes (a hub that died between creating and
   * recording, or objects created behind its back), and their Secrets; PVCs are user data and never removed here.
   */
  async removeOrphans(known: Iterable<SpawnerState>): Promise<string[]> {
    const pods = new Set<string>();
    for (const state of known) {
      const s = parseKubernetesState(state);
      if (s && s.namespace === this.namespace) pods.add(s.pod_name);
    }
    const ns = this.namespace;
    const listed = await this.call('list pods', () => this.core.listNamespacedPod({ namespace: ns, labelSelector: this.selector }));
    const secrets = await this.call('list secrets', () => this.core.listNamespacedSecret({ namespace: ns, labelSelector: this.selector }));
    const livePods = new Set(listed.items.map((p) => p.metadata!.name!));
    const orphans = listed.items.map((p) => p.metadata!.name!).filter((name) => !pods.has(name));
    const orphanSecrets = secrets.items.map((x) => x.metadata!.name!).filter((name) => !pods.has(name) && (!livePods.has(name) || orphans.includes(name)));
    await Promise.all(orphans.map(async (name) => {
      this.log.warn({ pod: name }, 'removing an orphan pod (labelled as this hub\'s, unknown to its DB)');
      await this.call(`delete pods ${name}`, () => this.core.deleteNamespacedPod({ name, namespace: ns, gracePeriodSeconds: 0 })).catch((err: unknown) => {
        if (apiStatus(err) !== 404) throw err;
      });
    }));
    await Promise.all(orphanSecrets.map((name) => this.call(`delete secrets ${name}`, () => this.core.deleteNamespacedSecret({ name, namespace: ns })).catch((err: unknown) => {
      if (apiStatus(err) !== 404) throw err;
    })));
    return orphans;
  }

  /**
   * When an admin purges a deleted account: its home PVC and any Secret of this hub still labelled with its uid
   * (its pods are gone already; the garbage collector or stop() removes their Secrets, this is the safety net).
   */
  async removeUserData(user: UserKey & { name: string }): Promise<string[]> {
    const ns = this.namespace;
    const removed: string[] = [];
    const pvc = homeClaimName(this.namePrefix, user);
    await this.call(`delete persistentvolumeclaims ${pvc}`, () => this.core.deleteNamespacedPersistentVolumeClaim({ name: pvc, namespace: ns }))
      .then(() => removed.push(`PersistentVolumeClaim ${pvc}`), (err: unknown) => {
        if (apiStatus(err) !== 404) throw this.refused('delete the home volume', err);
      });
    const selector = `${HUB_LABEL}=${this.hubId},${UID_LABEL}=${user.uid}`;
    const secrets = await this.call('list secrets', () => this.core.listNamespacedSecret({ namespace: ns, labelSelector: selector }));
    for (const secret of secrets.items) {
      const name = secret.metadata!.name!;
      await this.call(`delete secrets ${name}`, () => this.core.deleteNamespacedSecret({ name, namespace: ns }))
        .then(() => removed.push(`Secret ${name}`), (err: unknown) => {
          if (apiStatus(err) !== 404) throw this.refused('delete a Secret', err);
        });
    }
    this.log.info({ user: user.name, removed }, 'removed the data of a deleted user');
    return removed;
  }

  async close(): Promise<void> {
    await Promise.all([this.pods.close(), this.events.close()]);
  }
}
