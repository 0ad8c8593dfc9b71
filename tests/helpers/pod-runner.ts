/**
 * The test cluster's scheduler and kubelet in one: it watches the pods of a namespace on the real API server, binds
 * them to its one node (or marks them Unschedulable when their nodeSelector does not match it), runs each bound pod's
 * container on the Docker engine from the pod's own image, command, arguments, environment (resolved from the pod's
 * Secrets) and security context, mounts a Docker volume per PersistentVolumeClaim, runs TCP readiness probes, reports
 * status and events back, and finishes graceful deletions as a kubelet does. Images are never pulled (no registry
 * here): a missing one is ErrImagePull, as a kubelet reports a failed pull.
 */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { CoreV1Api, type KubeConfig, type V1Container, type V1Pod, type V1PodStatus } from '@kubernetes/client-node';
import { createLogger } from '../../hub/log.js';
import { ResourceCache } from '../../spawners/kubernetes/cache.js';
import { portAnswers } from './processes.js';

export const RUNNER_NODE = 'labhub-test-node';
const NODE_LABELS: Record<string, string> = { 'kubernetes.io/hostname': RUNNER_NODE, 'kubernetes.io/os': 'linux', 'labhub.test/node': 'true' };
const RUNNER_LABEL = 'org.labhub.test-pod-runner';

interface Running {
  container: Docker.Container;
  restarts: number;
}

export class PodRunner {
  readonly docker = new Docker();
  readonly id = randomBytes(4).toString('hex');
  private readonly core: CoreV1Api;
  private readonly watch: ResourceCache<V1Pod>;
  /** By pod uid: pods whose container this runner has started (or is starting). */
  private readonly running = new Map<string, Running | 'starting'>();
  private readonly queues = new Map<string, Promise<void>>();
  private stopped = false;
  errors: string[] = [];

  constructor(kubeConfig: KubeConfig, readonly namespace: string) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.watch = new ResourceCache<V1Pod>({
      kubeConfig, path: `/api/v1/namespaces/${namespace}/pods`, list: () => this.core.listNamespacedPod({ namespace }),
      log: createLogger('pod-runner', { level: 'error' }),
    });
    this.watch.subscribe((pod, deleted) => {
      if (deleted) void this.removeContainer(pod.metadata!.uid!);
      else this.enqueue(pod);
    });
  }

  async start(): Promise<void> {
    await this.watch.ready(30_000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watch.close();
    await Promise.allSettled([...this.queues.values()]);
    for (const c of await this.docker.listContainers({ all: true, filters: { label: [`${RUNNER_LABEL}=${this.id}`] } })) {
      await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    for (const v of (await this.docker.listVolumes({ filters: { label: [`${RUNNER_LABEL}=${this.id}`] } })).Volumes ?? []) {
      await this.docker.getVolume(v.Name).remove().catch(() => undefined);
    }
  }

  /** The Docker volume that stands for a PVC (kept across pods, like the PVC). */
  volumeName(claim: string): string {
    return `labhub-test-${this.id}-${this.namespace}-${claim}`;
  }

  private enqueue(pod: V1Pod): void {
    const key = pod.metadata!.uid!;
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.reconcile(pod)).catch((err: unknown) => {
      if (!this.stopped) this.errors.push(`${pod.metadata!.name}: ${(err as Error).message}`);
    });
    this.queues.set(key, next);
  }

  private async reconcile(seen: V1Pod): Promise<void> {
    if (this.stopped) return;
    const { name, uid } = seen.metadata as { name: string; uid: string };
    const pod = this.watch.get(name);
    if (!pod || pod.metadata!.uid !== uid) return;
    if (pod.metadata!.deletionTimestamp) {
      await this.removeContainer(uid, pod.metadata!.deletionGracePeriodSeconds ?? 0);
      // The kubelet's last word: the pod is gone for good (grace 0), if it is still the same pod.
      await this.core.deleteNamespacedPod({ name, namespace: this.namespace, body: { gracePeriodSeconds: 0, preconditions: { uid } } }).catch((err: { code?: number; body?: unknown }) => {
        if (err.code !== 404 && err.code !== 409) throw new Error(`final delete failed: ${err.code} ${JSON.stringify(err.body)}`);
      });
      return;
    }
    if (!pod.spec!.nodeName) return this.schedule(pod);
    if (pod.spec!.nodeName === RUNNER_NODE && !this.running.has(uid)) {
      this.running.set(uid, 'starting');
      void this.run(pod).catch((err: unknown) => this.errors.push(`${name}: ${(err as Error).message}`));
    }
  }

  private async schedule(pod: V1Pod): Promise<void> {
    const { name, uid } = pod.metadata as { name: string; uid: string };
    const selector = pod.spec!.nodeSelector ?? {};
    const mismatch = Object.entries(selector).some(([k, v]) => NODE_LABELS[k] !== v);
    if (mismatch) {
      if (pod.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable')) return;
      const message = '0/1 nodes are available: 1 node(s) didn\'t match Pod\'s node affinity/selector.';
      await this.updateStatus(name, uid, (s) => ({ ...s, phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: new Date() }] }));
      await this.event(pod, 'Warning', 'FailedScheduling', message, 'default-scheduler');
      return;
    }
    await this.core.createNamespacedPodBinding({ name, namespace: this.namespace, body: { metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: RUNNER_NODE } } });
    await this.event(pod, 'Normal', 'Scheduled', `Successfully assigned ${this.namespace}/${name} to ${RUNNER_NODE}`, 'default-scheduler');
  }

  private async run(pod: V1Pod): Promise<void> {
    const { name, uid } = pod.metadata as { name: string; uid: string };
    const spec = pod.spec!;
    const c = spec.containers[0]!;
    const image = c.image!;
    await this.event(pod, 'Normal', 'Pulling', `Pulling image "${image}"`);
    const imageInfo = await this.docker.getImage(image).inspect().catch(() => null);
    if (!imageInfo) {
      const message = `Failed to pull image "${image}": rpc error: code = NotFound desc = failed to pull and unpack image "${image}": not found`;
      await this.event(pod, 'Warning', 'Failed', message);
      await this.setContainerState(name, uid, c, { waiting: { reason: 'ErrImagePull', message } }, false, 0);
      return;
    }
    await this.event(pod, 'Normal', 'Pulled', `Container image "${image}" already present on machine`);
    let env: string[] | null = null;
    for (let attempt = 0; !env; attempt++) {
      env = await this.environment(c).catch(async (err: Error) => {
        if (attempt === 0) await this.setContainerState(name, uid, c, { waiting: { reason: 'CreateContainerConfigError', message: err.message } }, false, 0);
        return null;
      });
      if (!env) {
        if (this.stopped || !this.watch.get(name) || attempt > 40) return;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const mounts: Docker.MountSettings[] = [];
    for (const m of c.volumeMounts ?? []) {
      const volume = spec.volumes?.find((v) => v.name === m.name);
      const claim = volume?.persistentVolumeClaim?.claimName;
      if (!claim) continue;
      const source = this.volumeName(claim);
      await this.docker.createVolume({ Name: source, Labels: { [RUNNER_LABEL]: this.id } });
      mounts.push({ Type: 'volume', Source: source, Target: m.mountPath, ReadOnly: m.readOnly ?? false });
    }
    const uidNumber = c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
    const gid = c.securityContext?.runAsGroup ?? spec.securityContext?.runAsGroup;
    const container = await this.docker.createContainer({
      name: `k8s-${this.id}-${name}`.slice(0, 120),
      Image: image,
      ...(c.command ? { Entrypoint: c.command, Cmd: c.args ?? [] } : c.args ? { Cmd: c.args } : {}),
      Env: env,
      ...(uidNumber !== undefined ? { User: `${uidNumber}${gid !== undefined ? `:${gid}` : ''}` } : {}),
      ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
      Labels: { [RUNNER_LABEL]: this.id, 'org.labhub.test-pod': `${this.namespace}/${name}`, 'org.labhub.test-pod-uid': uid },
      HostConfig: {
        NetworkMode: 'bridge',
        CapDrop: c.securityContext?.capabilities?.drop ?? [],
        SecurityOpt: c.securityContext?.allowPrivilegeEscalation === false ? ['no-new-privileges'] : [],
        ...(spec.securityContext?.fsGroup !== undefined ? { GroupAdd: [String(spec.securityContext.fsGroup)] } : {}),
        Mounts: mounts,
      },
    });
    if (this.running.get(uid) !== 'starting') {
      await container.remove({ force: true }).catch(() => undefined);
      return;
    }
    const entry: Running = { container, restarts: 0 };
    this.running.set(uid, entry);
    await this.event(pod, 'Normal', 'Created', `Created container ${c.name}`);
    const probePort = tcpProbePort(c);
    for (;;) {
      await container.start();
      const ip = (await container.inspect()).NetworkSettings.Networks.bridge?.IPAddress ?? '';
      await this.event(pod, 'Normal', 'Started', `Started container ${c.name}`);
      const running = { running: { startedAt: new Date() } };
      await this.setContainerState(name, uid, c, running, probePort === undefined, entry.restarts, ip, `docker://${container.id}`);
      let exited = false;
      const waited = (container.wait() as Promise<{ StatusCode: number }>).finally(() => (exited = true));
      if (probePort !== undefined) {
        while (!exited && !(await portAnswers(probePort, ip))) await new Promise((r) => setTimeout(r, 100));
        if (!exited && !this.stopped && this.running.get(uid) === entry) {
          await this.setContainerState(name, uid, c, running, true, entry.restarts, ip, `docker://${container.id}`);
        }
      }
      const { StatusCode: code } = await waited;
      if (this.stopped || this.running.get(uid) !== entry) return;
      const terminated = { exitCode: code, reason: code === 0 ? 'Completed' : 'Error', finishedAt: new Date() };
      const restart = spec.restartPolicy === 'Always' || (spec.restartPolicy !== 'Never' && code !== 0);
      if (!restart) {
        await this.setContainerState(name, uid, c, { terminated }, false, entry.restarts, ip, `docker://${container.id}`, code === 0 ? 'Succeeded' : 'Failed');
        return;
      }
      entry.restarts++;
      await this.setContainerState(name, uid, c, { waiting: { reason: 'CrashLoopBackOff', message: `back-off 5s restarting failed container=${c.name} pod=${name}` } }, false, entry.restarts, ip, `docker://${container.id}`, 'Running', { terminated });
      await this.event(pod, 'Warning', 'BackOff', 'Back-off restarting failed container');
      await new Promise((r) => setTimeout(r, 5000));
      if (this.stopped || this.running.get(uid) !== entry) return;
    }
  }

  /** The container's environment as a kubelet resolves it: env values, secretKeyRef and envFrom Secrets. */
  private async environment(c: V1Container): Promise<string[]> {
    const out: Record<string, string> = {};
    const secretData = async (secretName: string) => {
      const secret = await this.core.readNamespacedSecret({ name: secretName, namespace: this.namespace }).catch(() => {
        throw new Error(`secret "${secretName}" not found`);
      });
      return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    };
    for (const from of c.envFrom ?? []) {
      if (from.secretRef?.name) Object.assign(out, await secretData(from.secretRef.name));
    }
    for (const e of c.env ?? []) {
      if (e.value !== undefined) out[e.name] = e.value;
      else if (e.valueFrom?.secretKeyRef) out[e.name] = (await secretData(e.valueFrom.secretKeyRef.name!))[e.valueFrom.secretKeyRef.key] ?? '';
    }
    return Object.entries(out).map(([k, v]) => `${k}=${v}`);
  }

  private async setContainerState(name: string, uid: string, c: V1Container, state: object, ready: boolean, restarts: number, ip = '', containerId = '', phase = ready ? 'Running' : 'Pending', lastState: object = {}): Promise<void> {
    await this.updateStatus(name, uid, (s) => ({
      ...s,
      phase,
      hostIP: '127.0.0.1',
      startTime: s.startTime ?? (new Date()),
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Initialized', status: 'True' },
        { type: 'ContainersReady', status: ready ? 'True' : 'False' },
        { type: 'Ready', status: ready ? 'True' : 'False' },
      ],
      containerStatuses: [{
        name: c.name, image: c.image!, imageID: '', ready, started: ready, restartCount: restarts, state, lastState,
        ...(containerId ? { containerID: containerId } : {}),
      }],
    } as V1PodStatus));
  }

  private async updateStatus(name: string, uid: string, change: (status: V1PodStatus) => V1PodStatus): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const pod = await this.core.readNamespacedPod({ name, namespace: this.namespace }).catch(() => null);
      if (!pod || pod.metadata!.uid !== uid || pod.metadata!.deletionTimestamp) return;
      pod.status = change(pod.status ?? {});
      const ok = await this.core.replaceNamespacedPodStatus({ name, namespace: this.namespace, body: pod }).then(() => true, (err: { code?: number }) => {
        if (err.code === 409) return false;
        throw err;
      });
      if (ok) return;
    }
  }

  private async event(pod: V1Pod, type: 'Normal' | 'Warning', reason: string, message: string, component = 'kubelet'): Promise<void> {
    const { name, uid } = pod.metadata as { name: string; uid: string };
    await this.core.createNamespacedEvent({
      namespace: this.namespace,
      body: {
        metadata: { generateName: `${name}.` },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', name, namespace: this.namespace, uid },
        type, reason, message, count: 1,
        firstTimestamp: new Date(), lastTimestamp: new Date(),
        source: { component, host: RUNNER_NODE },
        reportingComponent: component, reportingInstance: RUNNER_NODE,
      },
    }).catch(() => undefined);
  }

  private async removeContainer(uid: string, graceSeconds = 0): Promise<void> {
    const entry = this.running.get(uid);
    this.running.delete(uid);
    if (!entry || entry === 'starting') return;
    await entry.container.stop({ t: Math.min(graceSeconds, 5) }).catch(() => undefined);
    await entry.container.remove({ force: true }).catch(() => undefined);
  }
}

/** The port of a container's TCP readiness probe (a number, or the name of one of its ports). */
function tcpProbePort(c: V1Container): number | undefined {
  const port = c.readinessProbe?.tcpSocket?.port;
  if (port === undefined) return undefined;
  return typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort ?? Number(port);
}
