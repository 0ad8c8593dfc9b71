/**
 * DockerSpawner: each notebook server is a container on a Docker engine (JupyterHub's DockerSpawner), on dockerode.
 *
 * - Names (docs/docker.md): container `<prefix>-u_<uid>` for the default server, `<prefix>-u_<uid>--<server>` for
 *   a named one; home volume `<prefix>-home-u_<uid>`, from the account's immutable uid, so no later account of the
 *   same name finds them. `<server>` is escaped by escapeDockerName() (collision-free, only [a-z0-9-]). Accounts from
 *   before uids keep their home volume `<prefix>-home-<escaped name>`; escaped names never contain `_`, so the two
 *   forms cannot meet.
 * - Labels `<labelPrefix>.hub` (this hub's id), `.user`, `.server` (raw names), `.uid`: orphans are found by label.
 * - Hardened by default: not privileged, every capability dropped, `no-new-privileges`, user 1000:1000, no host path
 *   and no Docker socket mounted; memory, CPU and pids limits when configured.
 * - The home directory is a named volume per user, mounted at /home/jovyan. Docker copies the image's directory
 *   (files and ownership, 1000:1000 in LabHub's images) into the volume the first time it is mounted, so the user
 *   owns it; it survives stop, start and container removal.
 * - State `{containerId, name}` is handed to the hub (saveState) right after the container is created, before it is
 *   started, so a hub killed at any point can find it again (poll/stop) or remove it as an orphan.
 * - The hub connects to `http://<container IP on the configured network>:8888`; the container must reach the hub's
 *   API (JUPYTERHUB_API_URL): a loopback hub address is refused with a message saying what to configure.
 * - Every Docker call is its own request (no global queue), bounded by a timeout and the request's abort signal;
 *   an unreachable engine fails the spawn within `engineTimeoutMs` with a message naming the engine address.
 *   A failed or aborted start removes the container it created.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { checkedUid } from '../hub/db/user-uid.js';
import { HttpError } from '../hub/errors.js';
import { createLogger, type Logger } from '../hub/log.js';
import type { PollResult, ServerProfile, ServerStats, SpawnRequest, SpawnResult, Spawner, SpawnerState, UserKey } from './spawner.js';
import { parseByteSize } from './byte-size.js';
import { redactedTail } from './redact.js';
import { containerHubEnv } from './container-env.js';
import { SECRETS_DIR_ENV, secretFileEntries } from './secret-files.js';

export type PullPolicy = 'never' | 'if-not-present' | 'always';

/**
 * An extra mount from the admin's configuration. `{uid}` in `source` and `target` becomes `u_<uid>`, `{username}` and
 * `{servername}` the escaped names (escapeDockerName: only [a-z0-9-.], never `/` nor `..`), so a user name cannot reach another path.
 */
export interface VolumeSpec {
  /** A volume name, or an absolute host path when `type` is `bind`. */
  source: string;
  /** Absolute path in the container. */
  target: string;
  /** `volume` (default) or `bind`: a host path is mounted only when the admin says so explicitly. */
  type?: 'volume' | 'bind';
  readOnly?: boolean;
}

/** Where secret files (SpawnRequest.secretFiles) are put in the container: the container's own layer, removed with it. */
export const CONTAINER_SECRETS_DIR = '/run/labhub';

export interface DockerSpawnerOptions {
  /** Unix socket of the engine; default /var/run/docker.sock (ignored when `host` is set). */
  socketPath?: string;
  /** TCP engine: host name or IP, with `port` (default 2375, or 2376 with TLS). */
  host?: string;
  port?: number;
  /** TLS client material (PEM text) for a TCP engine; all three switch the connection to https. */
  tls?: { ca: string; cert: string; key: string };
  /** Image when the user does not choose one. */
  image: string;
  /** Images a user may choose with user option `image` (besides `image`). Empty: no choice. */
  allowedImages?: string[];
  /** default `if-not-present`. */
  pullPolicy?: PullPolicy;
  /** Docker network the containers join; the hub connects to the container's IP on it. Default `bridge`. */
  network?: string;
  /** Memory limit: bytes, or `512m`, `2g`, `1.5G` (binary units, as `docker run --memory`). */
  memLimit?: number | string;
  /** CPUs (may be fractional), as `docker run --cpus`. */
  cpuLimit?: number;
  /** Maximum processes/threads in the container; default 1024. 0 = no limit. */
  pidsLimit?: number;
  /** Remove the container on stop (default true). When false the stopped container stays until the next start, for inspection. */
  removeOnStop?: boolean;
  /**
   * How containers reach the hub, e.g. `http://172.17.0.1:8081`: replaces the origin of JUPYTERHUB_API_URL and
   * JUPYTERHUB_ACTIVITY_URL. The hub must listen on that address. Default: the hub's own connect URL.
   */
  hubConnectUrl?: string;
  /** Extra environment for every container (admin configuration; wins over the hub's). */
  extraEnv?: Record<string, string>;
  /** Label namespace; default `org.labhub`. */
  labelPrefix?: string;
  /** Identifies this hub's containers among others on the same engine; default `labhub`. */
  hubId?: string;
  /** Prefix of container and volume names; default `labhub`. */
  namePrefix?: string;
  /** Extra mounts for every container; see VolumeSpec. */
  volumes?: VolumeSpec[];
  /** Credentials for pulling from a private registry (Docker's X-Registry-Auth). */
  registryAuth?: { username: string; password: string; serveraddress?: string };
  /** Command; default the image's (ENTRYPOINT + CMD). */
  cmd?: string[];
  /** Appended to the command (the image's CMD when `cmd` is not set). */
  args?: string[];
  /** `uid:gid` the server runs as; default `1000:1000`. uid 0 needs `allowRoot`. */
  user?: string;
  allowRoot?: boolean;
  /** Where the per-user volume is mounted; default /home/jovyan. */
  homeMountPath?: string;
  /** Port the server listens on inside the container; default 8888. */
  notebookPort?: number;
  /** Seconds `docker stop` waits before SIGKILL; default 10. */
  stopGraceSeconds?: number;
  /** Limit for one Docker API call (not pulls); default 30 s. */
  apiTimeoutMs?: number;
  /** Limit for the first call of a spawn, so an unreachable engine fails fast; default 5 s. */
  engineTimeoutMs?: number;
  /** A container that exits within this time fails the start with its exit code and output; default 300 ms. */
  startupCheckMs?: number;
  logger?: Logger;
}

/** The parts of the engine's container stats LabHub reads (cgroup v1 and v2 name the page cache differently). */
interface DockerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { usage?: number; stats?: { inactive_file?: number; total_inactive_file?: number } };
}

export interface DockerState {
  containerId: string;
  name: string;
}

/** A container labelled as this hub's; see listOrphans. */
export interface LabelledContainer {
  id: string;
  name: string;
  user: string;
  server: string;
  state: string;
}

const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MAX_ESCAPED = 48;

/**
 * Escapes a user or server name into Docker's (and DNS's) safe alphabet: bytes of the UTF-8 encoding in [a-z0-9]
 * are kept, every other byte (upper case, `-`, `.`, `_`, `@`, non-ASCII) becomes `-xx` (lower-case hex).
 * Injective, and the result never contains `--` nor ends with `-`, so `--` can separate user and server.
 * Results longer than 48 characters become their first 32 characters (cut before an escape) + `.` + 16 hex of the
 * name's SHA-256: `.` never occurs in an unshortened result, so the two forms cannot collide.
 */
export function escapeDockerName(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  if (name.length === 0 || bytes.toString('utf8') !== name) throw new Error('name must be a non-empty, well-formed string');
  let out = '';
  for (const b of bytes) {
    const safe = (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39);
    out += safe ? String.fromCharCode(b) : `-${b.toString(16).padStart(2, '0')}`;
  }
  if (out.length > MAX_ESCAPED) {
    let cut = out.slice(0, 32);
    const dash = cut.lastIndexOf('-');
    if (dash > cut.length - 3) cut = cut.slice(0, dash);
    out = `${cut}.${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
  }
  return out;
}

/** The uid's part of a name: `u_` marks it, as `_` never occurs in an escaped name. */
function uidPart(user: UserKey): string {
  return `u_${checkedUid(user.uid)}`;
}

export function containerName(prefix: string, user: UserKey, server: string): string {
  return server ? `${prefix}-${uidPart(user)}--${escapeDockerName(server)}` : `${prefix}-${uidPart(user)}`;
}

export function homeVolumeName(prefix: string, user: UserKey): string {
  return user.legacyName ? `${prefix}-home-${escapeDockerName(user.legacyName)}` : `${prefix}-home-${uidPart(user)}`;
}

/**
 * Engine options from one address, as in DOCKER_HOST: `unix:///var/run/docker.sock`, `tcp://host:2376` (or
 * `http://`/`https://`). TLS material is separate (`tls`); `https://` without it is refused by the constructor.
 */
export function engineOptionsFromUrl(address: string): Pick<DockerSpawnerOptions, 'socketPath' | 'host' | 'port'> {
  if (address.startsWith('/')) return { socketPath: address };
  if (!URL.canParse(address)) throw new Error(`invalid Docker engine address ${JSON.stringify(address)}`);
  const url = new URL(address);
  if (url.protocol === 'unix:') return { socketPath: decodeURIComponent(url.pathname) };
  if (['tcp:', 'http:', 'https:'].includes(url.protocol) && url.hostname) {
    return { host: url.hostname.replace(/^\[|\]$/g, ''), ...(url.port ? { port: Number(url.port) } : {}) };
  }
  throw new Error(`unsupported Docker engine address ${JSON.stringify(address)}: expected unix:///path or tcp://host:port`);
}

/** Validates a state read back from the DB; null if it does not describe a container this spawner could own. */
export function parseDockerState(state: SpawnerState | null | undefined): DockerState | null {
  if (!state || typeof state !== 'object') return null;
  const { containerId, name } = state as Record<string, unknown>;
  if (typeof containerId !== 'string' || !/^[0-9a-f]{12,64}$/.test(containerId)) return null;
  if (typeof name !== 'string' || !DOCKER_NAME.test(name) || name.length > 255) return null;
  return { containerId, name };
}

const TEMPLATE_FIELD = /\{(\w+)\}/g;

/**
 * Fills `{uid}` (the account's immutable id), `{username}` and `{servername}` (escaped names); any other `{field}` is
 * an error. A volume named from `{username}` is found again by a later account of the same name; `{uid}` never is.
 */
export function expandVolumeTemplate(template: string, user: UserKey & { name: string }, server: string): string {
  return template.replace(TEMPLATE_FIELD, (_, field: string) => {
    if (field === 'uid') return uidPart(user);
    if (field === 'username') return escapeDockerName(user.name);
    if (field === 'servername') return server ? escapeDockerName(server) : 'default';
    throw new Error(`unknown field {${field}} in volume ${JSON.stringify(template)}: use {uid}, {username} or {servername}`);
  });
}

/** An absolute, normalized container path: no `.`/`..` segments, no `:` (Docker's mount syntax), not `/`. */
export function isSafeMountPath(p: string): boolean {
  if (!p.startsWith('/') || p.length > 4096 || p.includes(':') || p.includes('\0') || p === '/') return false;
  return p.slice(1).split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

function checkVolumeSpec(v: VolumeSpec): void {
  const probe = (t: string) => expandVolumeTemplate(t, { name: 'probe', uid: 'aaaaaaaaaaaa' }, '');
  if (!isSafeMountPath(probe(v.target))) throw new Error(`volume target ${JSON.stringify(v.target)} must be an absolute path without . or .. segments`);
  if (v.type === 'bind') {
    if (!isSafeMountPath(probe(v.source))) throw new Error(`bind source ${JSON.stringify(v.source)} must be an absolute host path without . or .. segments`);
  } else if (!DOCKER_NAME.test(probe(v.source))) {
    throw new Error(`volume source ${JSON.stringify(v.source)} must be a Docker volume name (use type: bind for a host path)`);
  }
}

/** Status code of an error answered by the engine (404, 409, …); undefined for transport errors. */
function dockerStatus(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The engine's own message (`No such image: …`) rather than dockerode's `(HTTP code 404) …` wrapper. */
function dockerMessage(err: unknown): string {
  const json = (err as { json?: unknown } | undefined)?.json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message.trim();
  }
  if (Buffer.isBuffer(json)) {
    const text = json.toString('utf8').trim();
    if (text) return text;
  }
  return err instanceof Error ? err.message.trim() : String(err);
}

const TRANSPORT_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ETIMEDOUT']);

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error && signal.reason.name !== 'AbortError' && signal.reason.name !== 'TimeoutError'
    ? signal.reason
    : new Error('Server start was cancelled');
}

/** Docker's multiplexed log stream (8-byte frame headers when the container has no TTY) → text. */
function demuxLogs(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return i === 0 ? buf.toString('utf8') : Buffer.concat(parts).toString('utf8');
}

export class DockerSpawner implements Spawner {
  readonly kind = 'docker';
  readonly docker: Docker;
  /** Where the engine is, for messages: `unix:///var/run/docker.sock` or `tcp://host:port`. */
  readonly engine: string;
  private readonly image: string;
  private readonly allowedImages: string[];
  private readonly pullPolicy: PullPolicy;
  private readonly network: string;
  private readonly memory: number | undefined;
  private readonly nanoCpus: number | undefined;
  private readonly pidsLimit: number;
  private readonly removeOnStop: boolean;
  private readonly hubConnectUrl: string | undefined;
  private readonly extraEnv: Record<string, string>;
  private readonly labelPrefix: string;
  private readonly hubId: string;
  private readonly namePrefix: string;
  private readonly cmd: string[] | undefined;
  private readonly args: string[];
  private readonly volumes: VolumeSpec[];
  private readonly registryAuth: DockerSpawnerOptions['registryAuth'];
  private readonly user: string;
  private readonly homeMountPath: string;
  private readonly notebookPort: number;
  private readonly stopGraceSeconds: number;
  private readonly apiTimeoutMs: number;
  private readonly engineTimeoutMs: number;
  private readonly startupCheckMs: number;
  private readonly log: Logger;
  /** When an image was last pulled by this process (pull policy `always` pulls at most once a minute per image). */
  private readonly pulledAt = new Map<string, number>();
  /** Pulls in progress, shared by concurrent spawns of the same image. */
  private readonly pulls = new Map<string, Promise<void>>();

  constructor(options: DockerSpawnerOptions) {
    if (!options.image) throw new Error('DockerSpawner needs an image');
    this.image = options.image;
    this.allowedImages = [...(options.allowedImages ?? [])];
    this.pullPolicy = options.pullPolicy ?? 'if-not-present';
    if (!['never', 'if-not-present', 'always'].includes(this.pullPolicy)) throw new Error(`invalid pull policy ${this.pullPolicy}`);
    this.network = options.network ?? 'bridge';
    if (this.network === 'host' || this.network === 'none' || this.network.startsWith('container:')) {
      throw new Error(`DockerSpawner network ${JSON.stringify(this.network)} is not supported: use bridge or a user-defined network`);
    }
    this.memory = options.memLimit === undefined ? undefined : parseByteSize(options.memLimit);
    if (options.cpuLimit !== undefined && !(options.cpuLimit > 0)) throw new Error('cpuLimit must be a positive number of CPUs');
    this.nanoCpus = options.cpuLimit === undefined ? undefined : Math.round(options.cpuLimit * 1e9);
    this.pidsLimit = options.pidsLimit ?? 1024;
    this.removeOnStop = options.removeOnStop ?? true;
    if (options.hubConnectUrl !== undefined && !URL.canParse(options.hubConnectUrl)) throw new Error('hubConnectUrl must be an absolute URL');
    this.hubConnectUrl = options.hubConnectUrl?.replace(/\/+$/, '');
    this.extraEnv = { ...(options.extraEnv ?? {}) };
    for (const key of Object.keys(this.extraEnv)) if (!key || key.includes('=')) throw new Error(`invalid environment variable name ${JSON.stringify(key)}`);
    this.labelPrefix = options.labelPrefix ?? 'org.labhub';
    this.hubId = options.hubId ?? 'labhub';
    this.namePrefix = options.namePrefix ?? 'labhub';
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,39}$/.test(this.namePrefix)) throw new Error(`invalid namePrefix ${JSON.stringify(this.namePrefix)}`);
    this.cmd = options.cmd?.length ? [...options.cmd] : undefined;
    this.args = [...(options.args ?? [])];
    this.volumes = (options.volumes ?? []).map((v) => ({ ...v }));
    for (const v of this.volumes) checkVolumeSpec(v);
    this.registryAuth = options.registryAuth;
    this.user = options.user ?? '1000:1000';
    const uid = this.user.split(':')[0];
    if ((uid === '0' || uid === 'root' || uid === '') && !options.allowRoot) {
      throw new Error('DockerSpawner will not run notebook servers as root: set user to a non-root uid:gid (or allowRoot)');
    }
    this.homeMountPath = options.homeMountPath ?? '/home/jovyan';
    this.notebookPort = options.notebookPort ?? 8888;
    this.stopGraceSeconds = options.stopGraceSeconds ?? 10;
    this.apiTimeoutMs = options.apiTimeoutMs ?? 30_000;
    this.engineTimeoutMs = options.engineTimeoutMs ?? 5000;
    this.startupCheckMs = options.startupCheckMs ?? 300;
    this.log = options.logger ?? createLogger('spawner.docker');

    if (options.host) {
      const tls = options.tls;
      const port = options.port ?? (tls ? 2376 : 2375);
      this.docker = new Docker({ host: options.host, port, ...(tls ? { protocol: 'https' as const, ca: tls.ca, cert: tls.cert, key: tls.key } : { protocol: 'http' as const }) });
      this.engine = `${tls ? 'https' : 'tcp'}://${options.host}:${port}`;
    } else {
      const socketPath = options.socketPath ?? '/var/run/docker.sock';
      this.docker = new Docker({ socketPath });
      this.engine = `unix://${socketPath}`;
    }
  }

  private label(key: string): string {
    return `${this.labelPrefix}.${key}`;
  }

  /**
   * One Docker API call, bounded by `timeoutMs` and `signal` (also for dockerode calls that ignore abortSignal).
   * Transport failures and timeouts become an HttpError(503) naming the engine; the engine's own errors (404, 409)
   * are passed through with their statusCode.
   */
  private async call<T>(what: string, work: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal, timeoutMs = this.apiTimeoutMs): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    if (signal?.aborted) throw abortReason(signal);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(combined.reason);
      combined.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    try {
      return await Promise.race([work(combined), aborted]);
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (timeout.aborted) {
        throw new HttpError(503, `The Docker engine at ${this.engine} did not answer (${what}) within ${Math.round(timeoutMs / 1000)} s. Ask an administrator to check that dockerd is running.`);
      }
      const code = (err as NodeJS.ErrnoException | undefined)?.code;
      if (dockerStatus(err) === undefined && code && TRANSPORT_CODES.has(code)) {
        const hint = code === 'ENOENT' || code === 'ECONNREFUSED' ? 'is dockerd running?'
          : code === 'EPIPE' || code === 'ECONNRESET' ? 'the connection was cut: did dockerd stop?'
            : code === 'EACCES' || code === 'EPERM' ? 'the hub may not use its socket' : 'check the engine address';
        throw new HttpError(503, `Cannot reach the Docker engine at ${this.engine} (${code}; ${hint}). Ask an administrator to start or fix it.`);
      }
      throw err;
    } finally {
      if (onAbort) combined.removeEventListener('abort', onAbort);
    }
  }

  checkOptions(request: Pick<SpawnRequest, 'userOptions' | 'profile'>): void {
    this.resolveImage(request);
    this.profileMounts(request.profile);
  }

  /**
   * The image for this request: the class profile's (the hub checked the user may use it), else user option `image`
   * if allowed, else the configured one. Throws HttpError(400).
   */
  resolveImage({ userOptions, profile }: Pick<SpawnRequest, 'userOptions' | 'profile'>): string {
    const wanted = userOptions.image;
    const unset = wanted === undefined || wanted === null || wanted === '';
    if (profile?.image) {
      if (!unset && wanted !== profile.image) throw new HttpError(400, `The profile ${profile.id} sets the image; do not choose another one.`);
      return profile.image;
    }
    if (unset) return this.image;
    if (typeof wanted !== 'string') throw new HttpError(400, 'user option image must be a string');
    if (wanted === this.image || this.allowedImages.includes(wanted)) return wanted;
    throw new HttpError(400, `Image ${JSON.stringify(wanted.slice(0, 200))} is not allowed. Choose one of: ${[this.image, ...this.allowedImages].join(', ')}.`);
  }

  /**
   * Makes sure the request's image is on the engine, pulling it per the pull policy with progress through
   * request.progress. start() calls it; a hub may call it first, outside the server's start timeout, so that a long
   * pull does not count against it (start() then finds the image and does not pull again).
   */
  async prepare(request: Pick<SpawnRequest, 'userOptions' | 'profile' | 'signal' | 'progress'>): Promise<{ image: string; info: Docker.ImageInspectInfo }> {
    const image = this.resolveImage(request);
    const inspect = () => this.call(`inspect image ${image}`, () => this.docker.getImage(image).inspect(), request.signal, this.engineTimeoutMs);
    let info: Docker.ImageInspectInfo | null = null;
    const recentlyPulled = Date.now() - (this.pulledAt.get(image) ?? 0) < 60_000;
    if (this.pullPolicy !== 'always' || recentlyPulled) {
      info = await inspect().catch((err: unknown) => {
        if (dockerStatus(err) === 404) return null;
        throw err;
      });
      if (!info && this.pullPolicy === 'never') {
        throw new HttpError(500, `The image ${image} is not on the Docker engine and the pull policy is "never". An administrator must build or load it (for LabHub's test image: bash scripts/setup-docker.sh).`);
      }
    }
    if (!info) {
      try {
        await this.pull(image, request);
      } catch (err) {
        // `always` with the registry unreachable: a local copy is better than no server at all.
        const local = this.pullPolicy === 'always' && !request.signal.aborted ? await inspect().catch(() => null) : null;
        if (!local) throw err;
        this.log.warn({ image, err: dockerMessage(err) }, 'pull failed; using the local copy of the image');
        request.progress({ message: `Could not pull ${image}; using the copy already on the engine` });
        return { image, info: local };
      }
      info = await inspect();
    }
    return { image, info };
  }

  private pull(image: string, request: Pick<SpawnRequest, 'signal' | 'progress'>): Promise<void> {
    let pending = this.pulls.get(image);
    if (!pending) {
      // Shared by concurrent spawns: not tied to one request's signal; each waiter stops waiting on its own abort.
      pending = this.pullOnce(image, request.progress).finally(() => this.pulls.delete(image));
      this.pulls.set(image, pending);
    } else {
      request.progress({ message: `Waiting for the pull of ${image} another spawn started` });
    }
    return this.call(`pull ${image}`, () => pending, request.signal, 24 * 3600_000);
  }

  private async pullOnce(image: string, progress: SpawnRequest['progress']): Promise<void> {
    const started = Date.now();
    progress({ progress: 5, message: `Pulling image ${image}` });
    this.log.info({ image }, 'pulling image');
    const stream = (await this.call(`pull ${image}`, () => this.docker.pull(image, this.registryAuth ? { authconfig: this.registryAuth } : {}), undefined, this.engineTimeoutMs * 6).catch((err: unknown) => {
      if (dockerStatus(err) !== undefined) throw new HttpError(500, `Pulling ${image} failed: ${dockerMessage(err)}`);
      throw err;
    })) as NodeJS.ReadableStream;
    const layers = new Map<string, { current: number; total: number }>();
    let lastReport = 0;
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: Error | null, output: Array<{ error?: string }>) => {
          const failed = err ?? output.find((o) => o.error);
          if (failed) reject(new HttpError(500, `Pulling ${image} failed: ${err ? dockerMessage(err) : String((failed as { error: string }).error)}`));
          else resolve();
        },
        (event: { id?: string; status?: string; progressDetail?: { current?: number; total?: number } }) => {
          if (event.id && event.progressDetail?.total) {
            layers.set(event.id, { current: event.progressDetail.current ?? 0, total: event.progressDetail.total });
          }
          if (event.id && /^(Download complete|Pull complete|Already exists)$/.test(event.status ?? '')) {
            const l = layers.get(event.id);
            layers.set(event.id, { current: l?.total ?? 0, total: l?.total ?? 0 });
          }
          const now = Date.now();
          if (now - lastReport < 1000) return;
          lastReport = now;
          let current = 0;
          let total = 0;
          for (const l of layers.values()) {
            current += l.current;
            total += l.total;
          }
          const mb = (n: number) => (n / 1e6).toFixed(1);
          const share = total > 0 ? current / total : 0;
          progress({ progress: 5 + Math.round(share * 35), message: `Pulling image ${image}: ${mb(current)} of ${mb(total)} MB` });
        },
      );
    });
    this.pulledAt.set(image, Date.now());
    this.log.info({ image, ms: Date.now() - started }, 'image pulled');
    progress({ progress: 40, message: `Pulled image ${image} in ${Math.round((Date.now() - started) / 1000)} s` });
  }

  /** The environment a container gets: the hub's, with the hub address containers can reach, plus admin extras. */
  containerEnv(request: Pick<SpawnRequest, 'env' | 'prefix' | 'secretFiles'>, image: string): Record<string, string> {
    const env = containerHubEnv(request.env, {
      hubConnectUrl: this.hubConnectUrl, port: this.notebookPort, prefix: request.prefix,
      advice: 'An administrator must make the hub listen on an address containers reach (the Docker network gateway, e.g. hub.ip: 172.17.0.1) ' +
        'or set the Docker spawner hub_connect_url.',
    });
    const secrets: Record<string, string> = secretFileEntries(request.secretFiles).length ? { [SECRETS_DIR_ENV]: CONTAINER_SECRETS_DIR } : {};
    return { ...env, JUPYTER_IMAGE_SPEC: image, JUPYTER_IMAGE: image, ...secrets, ...this.extraEnv };
  }

  userVolumes(user: UserKey & { name: string }): string[] {
    const templated = this.volumes.filter((v) => (v.type ?? 'volume') === 'volume' && /\{(username|uid)\}/.test(v.source));
    return [homeVolumeName(this.namePrefix, user), ...templated.map((v) => expandVolumeTemplate(v.source, user, ''))];
  }

  /**
   * Refuses a class's shared volume that carries a user label of this hub's scheme (a home volume, whoever it was
   * made for, including users since deleted): the hub checked the name, the engine's labels are the last word.
   */
  private async checkSharedVolumes(profile: ServerProfile | undefined, signal: AbortSignal): Promise<void> {
    for (const { volume } of profile?.sharedVolumes ?? []) {
      const info = await this.call(`inspect volume ${volume}`, () => this.docker.getVolume(volume).inspect(), signal).catch((err: unknown) => {
        if (dockerStatus(err) === 404) return null;
        throw err;
      });
      if (info?.Labels?.[this.label('user')] !== undefined) {
        throw new HttpError(403, `The shared volume ${volume} of ${profile!.id} is a user's own volume; no class may mount it.`);
      }
    }
  }

  /** The profile's read-only class volumes as mounts; refuses names and paths that are not safe. */
  private profileMounts(profile: ServerProfile | undefined): Docker.MountSettings[] {
    return (profile?.sharedVolumes ?? []).map(({ volume, mountPath }) => {
      if (!DOCKER_NAME.test(volume) || volume.length > 255) throw new HttpError(400, `The profile ${profile!.id} names an invalid shared volume.`);
      if (!isSafeMountPath(mountPath) || mountPath === this.homeMountPath) throw new HttpError(400, `The profile ${profile!.id} has an invalid mount path for ${volume}.`);
      return { Type: 'volume', Source: volume, Target: mountPath, ReadOnly: true };
    });
  }

  /** The home volume, the admin's extra volumes (templated for this user) and the profile's class volumes. */
  private mounts(request: Pick<SpawnRequest, 'user' | 'serverName' | 'profile'>): Docker.MountSettings[] {
    const { user, serverName } = request;
    const mounts: Docker.MountSettings[] = [{ Type: 'volume', Source: homeVolumeName(this.namePrefix, user), Target: this.homeMountPath }];
    for (const v of this.volumes) {
      mounts.push({
        Type: v.type ?? 'volume',
        Source: expandVolumeTemplate(v.source, user, serverName),
        Target: expandVolumeTemplate(v.target, user, serverName),
        ReadOnly: v.readOnly ?? false,
      });
    }
    mounts.push(...this.profileMounts(request.profile));
    return mounts;
  }

  /** The create options for a request's container (exposed for tests and diagnostics). */
  createOptions(request: Pick<SpawnRequest, 'user' | 'serverName' | 'prefix' | 'env' | 'profile' | 'secretFiles'>, image: string, imageInfo: Docker.ImageInspectInfo | null): Docker.ContainerCreateOptions {
    const name = containerName(this.namePrefix, request.user, request.serverName);
    const env = this.containerEnv(request, image);
    const { profile } = request;
    const memory = profile?.memLimit ?? this.memory;
    if (profile?.cpuLimit !== undefined && !(profile.cpuLimit > 0)) throw new HttpError(400, `The profile ${profile.id} has an invalid CPU limit.`);
    const nanoCpus = profile?.cpuLimit !== undefined ? Math.round(profile.cpuLimit * 1e9) : this.nanoCpus;
    let cmd: string[] | undefined;
    if (this.cmd) cmd = [...this.cmd, ...this.args];
    else if (this.args.length) cmd = [...(imageInfo?.Config?.Cmd ?? []), ...this.args];
    return {
      name,
      Image: image,
      ...(cmd ? { Cmd: cmd } : {}),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      User: this.user,
      WorkingDir: this.homeMountPath,
      ExposedPorts: { [`${this.notebookPort}/tcp`]: {} },
      Labels: {
        [this.label('hub')]: this.hubId,
        [this.label('user')]: request.user.name,
        [this.label('uid')]: request.user.uid,
        [this.label('server')]: request.serverName,
        ...(profile ? { [this.label('profile')]: profile.id } : {}),
      },
      HostConfig: {
        NetworkMode: this.network,
        Privileged: false,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ...(memory !== undefined ? { Memory: memory, MemorySwap: memory } : {}),
        ...(nanoCpus !== undefined ? { NanoCpus: nanoCpus } : {}),
        ...(this.pidsLimit > 0 ? { PidsLimit: this.pidsLimit } : {}),
        Mounts: this.mounts(request),
        RestartPolicy: { Name: 'no' },
      },
    };
  }

  async start(request: SpawnRequest): Promise<SpawnResult> {
    const { signal, user, serverName, prefix } = request;
    if (signal.aborted) throw abortReason(signal);
    if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new Error(`invalid prefix ${JSON.stringify(prefix)}`);
    const { image, info } = await this.prepare(request);
    await this.checkSharedVolumes(request.profile, signal);
    const options = this.createOptions(request, image, info);
    const name = options.name!;
    const volume = homeVolumeName(this.namePrefix, user);
    const log = { user: user.name, server: serverName, container: name };

    // Creating an existing volume is a no-op; creating it here (rather than letting `create` do it) labels it.
    await this.call(`create volume ${volume}`, (s) => this.docker.createVolume({
      Name: volume, Labels: { [this.label('hub')]: this.hubId, [this.label('user')]: user.name, [this.label('uid')]: user.uid }, abortSignal: s,
    } as Docker.VolumeCreateOptions), signal);
    await this.removeStale(name, signal);

    request.progress({ progress: 50, message: `Creating container ${name}` });
    let container: Docker.Container;
    try {
      container = await this.call(`create container ${name}`, (s) => this.docker.createContainer({ ...options, abortSignal: s }), signal);
    } catch (err) {
      // An abort after the engine created it: the container exists but we never got its id. Remove it by name.
      if (signal.aborted) await this.removeQuietly(name);
      if (dockerStatus(err) === 404) throw new HttpError(500, `Docker could not create the container: ${dockerMessage(err)}.`);
      if (dockerStatus(err) === 409) throw new HttpError(409, `A container named ${name} already exists and could not be replaced: ${dockerMessage(err)}`);
      if (dockerStatus(err) !== undefined) throw new HttpError(500, `Docker could not create the container: ${dockerMessage(err)}`);
      throw err;
    }
    const state: DockerState = { containerId: container.id, name };
    try {
      await request.saveState({ ...state });
      if (signal.aborted) throw abortReason(signal);
      await this.prepareFilesystem(container, name, request, signal);
      request.progress({ progress: 70, message: `Starting container ${name}` });
      await this.call(`start container ${name}`, (s) => container.start({ abortSignal: s }), signal).catch((err: unknown) => {
        if (dockerStatus(err) !== undefined) throw new HttpError(500, `Docker could not start the container: ${dockerMessage(err)}`);
        throw err;
      });
      await this.startupCheck(container, name, options.Env ?? [], signal);
      const inspected = await this.call(`inspect container ${name}`, (s) => container.inspect({ abortSignal: s }), signal);
      const ip = inspected.NetworkSettings.Networks?.[this.network]?.IPAddress;
      if (!ip) throw new HttpError(500, `The container ${name} has no IP address on the Docker network ${this.network}.`);
      if (signal.aborted) throw abortReason(signal);
      this.log.info({ ...log, ip, image }, 'container started');
      request.progress({ progress: 90, message: `Container ${name} started at ${ip}` });
      const host = options.HostConfig ?? {};
      const resources = { ...(host.NanoCpus && { cpu: host.NanoCpus / 1e9 }), ...(host.Memory && { memBytes: host.Memory }) };
      return { url: `http://${ip}:${this.notebookPort}`, state: { ...state }, resources };
    } catch (err) {
      await this.removeQuietly(container.id);
      throw err;
    }
  }

  /**
   * One copy into the created, not yet started container, as the server's user:
   * - the roots of writable extra volumes, which Docker would otherwise create owned by root where the image has
   *   no such directory (the copy goes through to the mounted volume);
   * - the secret files, in the container's own layer with mode 0700/0600: they go away with the container and are
   *   never on the host's disk.
   */
  private async prepareFilesystem(container: Docker.Container, name: string, request: Pick<SpawnRequest, 'user' | 'serverName' | 'secretFiles'>, signal: AbortSignal): Promise<void> {
    const files = secretFileEntries(request.secretFiles);
    const volumeRoots = this.volumes.filter((v) => (v.type ?? 'volume') === 'volume' && !v.readOnly)
      .map((v) => expandVolumeTemplate(v.target, request.user, request.serverName));
    if (!files.length && !volumeRoots.length) return;
    const [uid, gid] = this.user.split(':').map((n) => (/^\d+$/.test(n ?? '') ? Number(n) : 0));
    const owner = { uid: uid ?? 0, gid: gid ?? uid ?? 0 };
    const pack = tar.pack();
    for (const root of volumeRoots) pack.entry({ name: `${root.slice(1)}/`, type: 'directory', mode: 0o755, ...owner });
    if (files.length) {
      const dir = CONTAINER_SECRETS_DIR.slice(1);
      pack.entry({ name: `${dir}/`, type: 'directory', mode: 0o700, ...owner });
      for (const [file, content] of files) pack.entry({ name: `${dir}/${file}`, mode: 0o600, ...owner }, content);
    }
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    await this.call(`copy files into ${name}`, (s) => container.putArchive(Buffer.concat(chunks), { path: '/', abortSignal: s }), signal);
  }

  /** Fails the start, with the container's last output, if it exits within startupCheckMs. */
  private async startupCheck(container: Docker.Container, name: string, envList: string[], signal: AbortSignal): Promise<void> {
    if (this.startupCheckMs <= 0) return;
    const controller = new AbortController();
    const waited = container.wait({ condition: 'not-running', abortSignal: AbortSignal.any([controller.signal, signal]) } as Docker.ContainerWaitOptions)
      .then((r: { StatusCode?: number }) => r, () => null);
    const result = await Promise.race([waited, sleep(this.startupCheckMs, undefined, { signal }).then(() => undefined, () => undefined)]);
    controller.abort();
    if (signal.aborted) throw abortReason(signal);
    if (!result) return;
    const env = Object.fromEntries(envList.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const raw = await this.call(`logs of ${name}`, () => container.logs({ stdout: true, stderr: true, tail: 50, follow: false }), undefined).catch(() => Buffer.alloc(0));
    const output = redactedTail(demuxLogs(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))), env);
    this.log.warn({ container: name, exitCode: result.StatusCode }, 'container exited during startup');
    throw new HttpError(500, `The notebook server exited with code ${result.StatusCode ?? '?'} while starting.${output ? `\nLast output:\n${output}` : ''}`);
  }

  /** A container of ours left under this name (a previous run kept by removeOnStop=false, or lost state) is removed; someone else's is not touched. */
  private async removeStale(name: string, signal: AbortSignal): Promise<void> {
    const existing = await this.call(`inspect container ${name}`, (s) => this.docker.getContainer(name).inspect({ abortSignal: s }), signal).catch((err: unknown) => {
      if (dockerStatus(err) === 404) return null;
      throw err;
    });
    if (!existing) return;
    if (existing.Config.Labels?.[this.label('hub')] !== this.hubId) {
      throw new HttpError(409, `A container named ${name} that this hub did not create exists on the Docker engine; an administrator must remove or rename it.`);
    }
    this.log.info({ container: name, running: existing.State.Running }, 'removing the previous container of this server');
    await this.call(`remove container ${name}`, (s) => this.docker.getContainer(existing.Id).remove({ force: true, v: true, abortSignal: s }), signal).catch((err: unknown) => {
      if (dockerStatus(err) !== 404) throw err;
    });
  }

  private async removeQuietly(idOrName: string): Promise<void> {
    await this.call(`remove container ${idOrName}`, (s) => this.docker.getContainer(idOrName).remove({ force: true, v: true, abortSignal: s }))
      .catch((err: unknown) => {
        if (dockerStatus(err) !== 404) this.log.error({ container: idOrName, err: dockerMessage(err) }, 'could not remove a container of a failed start');
      });
  }

  async poll(state: SpawnerState): Promise<PollResult> {
    const s = parseDockerState(state);
    if (!s) return { running: false, exitCode: null };
    const info = await this.call(`inspect container ${s.name}`, (sig) => this.docker.getContainer(s.containerId).inspect({ abortSignal: sig })).catch((err: unknown) => {
      if (dockerStatus(err) === 404) return null;
      throw err;
    });
    if (!info) return { running: false, exitCode: null };
    if (info.State.Running) return { running: true };
    return { running: false, exitCode: typeof info.State.ExitCode === 'number' ? info.State.ExitCode : null };
  }

  /** CPU time and memory of the container from one stats snapshot; memory as `docker stats` shows it (less page cache). */
  async stats(state: SpawnerState): Promise<ServerStats | undefined> {
    const s = parseDockerState(state);
    if (!s) return undefined;
    const raw = await this.call(`stats of container ${s.name}`, () =>
      this.docker.getContainer(s.containerId).stats({ stream: false, 'one-shot': true })) as DockerStats;
    const cpuNs = raw.cpu_stats?.cpu_usage?.total_usage;
    const usage = raw.memory_stats?.usage;
    const cache = raw.memory_stats?.stats?.inactive_file ?? raw.memory_stats?.stats?.total_inactive_file ?? 0;
    return {
      ...(typeof cpuNs === 'number' && { cpuSecondsTotal: cpuNs / 1e9 }),
      ...(typeof usage === 'number' && { memBytes: Math.max(0, usage - cache) }),
    };
  }

  /** Sizes of the users' home volumes from one disk-usage query of the engine (it walks every volume: call it seldom). */
  async homeSizes(users: ReadonlyArray<UserKey & { name: string }>): Promise<Map<string, number>> {
    const df = await this.call('disk usage', () => this.docker.df() as Promise<unknown>, undefined, 120_000) as { Volumes?: Array<{ Name: string; UsageData?: { Size?: number } | null }> | null };
    const sizes = new Map((df.Volumes ?? []).map((v) => [v.Name, v.UsageData?.Size ?? -1]));
    const out = new Map<string, number>();
    for (const user of users) {
      const size = sizes.get(homeVolumeName(this.namePrefix, user));
      if (size !== undefined && size >= 0) out.set(user.uid, size);
    }
    return out;
  }

  async stop(state: SpawnerState, options: { now?: boolean } = {}): Promise<void> {
    const s = parseDockerState(state);
    if (!s) return;
    const container = this.docker.getContainer(s.containerId);
    const t = options.now ? 0 : this.stopGraceSeconds;
    await this.call(`stop container ${s.name}`, (sig) => container.stop({ t, abortSignal: sig }), undefined, this.apiTimeoutMs + t * 1000).catch((err: unknown) => {
      // 304: already stopped; 404: already gone.
      if (dockerStatus(err) !== 304 && dockerStatus(err) !== 404) throw err;
    });
    if (this.removeOnStop) {
      await this.call(`remove container ${s.name}`, (sig) => container.remove({ force: true, v: true, abortSignal: sig })).catch((err: unknown) => {
        // 409: a removal is already in progress.
        if (dockerStatus(err) !== 404 && dockerStatus(err) !== 409) throw err;
      });
    }
    this.log.info({ container: s.name, removed: this.removeOnStop }, 'container stopped');
  }

  /**
   * The account's home volume (and the admin's extra volumes named from `{uid}`), when an admin purges a deleted
   * account; its containers are gone already. A volume still in use is an error, not skipped.
   */
  async removeUserData(user: UserKey & { name: string }): Promise<string[]> {
    const volumes = [homeVolumeName(this.namePrefix, user), ...this.volumes
      .filter((v) => (v.type ?? 'volume') === 'volume' && v.source.includes('{uid}'))
      .map((v) => expandVolumeTemplate(v.source, user, ''))];
    const removed: string[] = [];
    for (const volume of new Set(volumes)) {
      const gone = await this.call(`remove volume ${volume}`, (s) => this.docker.getVolume(volume).remove({ abortSignal: s })).then(() => false, (err: unknown) => {
        if (dockerStatus(err) === 404) return true;
        throw new HttpError(500, `Docker could not remove the volume ${volume}: ${dockerMessage(err)}`);
      });
      if (!gone) removed.push(`Docker volume ${volume}`);
    }
    this.log.info({ user: user.name, removed }, 'removed the data of a deleted user');
    return removed;
  }

  /** Every container on the engine labelled as this hub's (running or not). */
  async listContainers(): Promise<LabelledContainer[]> {
    const list = await this.call('list containers', (s) => this.docker.listContainers({ all: true, filters: { label: [`${this.label('hub')}=${this.hubId}`] }, abortSignal: s }));
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      user: c.Labels[this.label('user')] ?? '',
      server: c.Labels[this.label('server')] ?? '',
      state: c.State,
    }));
  }

  /**
   * Containers labelled as this hub's that none of `known` (spawner states from the DB) describes: left by a hub
   * that died between creating a container and recording it, or created behind the hub's back with its labels.
   */
  async listOrphans(known: Iterable<SpawnerState>): Promise<LabelledContainer[]> {
    const ids = new Set<string>();
    const names = new Set<string>();
    for (const state of known) {
      const s = parseDockerState(state);
      if (s) {
        ids.add(s.containerId);
        names.add(s.name);
      }
    }
    return (await this.listContainers()).filter((c) => !ids.has(c.id) && !names.has(c.name) && ![...ids].some((id) => c.id.startsWith(id)));
  }

  /** Removes listOrphans(known); returns what was removed. Meant for hub start-up, before any spawn. */
  async removeOrphans(known: Iterable<SpawnerState>): Promise<LabelledContainer[]> {
    const orphans = await this.listOrphans(known);
    await Promise.all(orphans.map(async (c) => {
      this.log.warn({ container: c.name, user: c.user, server: c.server }, 'removing an orphan container (labelled as this hub\'s, unknown to its DB)');
      await this.call(`remove container ${c.name}`, (s) => this.docker.getContainer(c.id).remove({ force: true, v: true, abortSignal: s })).catch((err: unknown) => {
        if (dockerStatus(err) !== 404) throw err;
      });
    }));
    return orphans;
  }

  /**
   * The address of the host on the configured network (its gateway), which is where containers reach a hub on the
   * host: e.g. 172.17.0.1 on the default bridge. Null when the network has none (e.g. an overlay).
   */
  async gatewayAddress(): Promise<string | null> {
    const net = (await this.call(`inspect network ${this.network}`, () => this.docker.getNetwork(this.network).inspect())) as {
      IPAM?: { Config?: Array<{ Gateway?: string }> };
      Options?: Record<string, string>;
    };
    const gateway = net.IPAM?.Config?.find((c) => c.Gateway && !c.Gateway.includes(':'))?.Gateway;
    if (gateway) return gateway.split('/')[0]!;
    // The default bridge does not list its gateway: it is the address of its interface on the host (docker0).
    // os.networkInterfaces() omits an interface without carrier (docker0 while no container runs): ask `ip` then.
    const bridge = net.Options?.['com.docker.network.bridge.name'];
    if (!bridge || !/^[\w.-]+$/.test(bridge)) return null;
    const address = networkInterfaces()[bridge]?.find((a) => a.family === 'IPv4')?.address;
    if (address) return address;
    const out = await new Promise<string>((resolve) => {
      execFile('ip', ['-4', '-o', 'addr', 'show', 'dev', bridge], { timeout: 5000 }, (err, stdout) => resolve(err ? '' : String(stdout)));
    });
    return /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1] ?? null;
  }
}
