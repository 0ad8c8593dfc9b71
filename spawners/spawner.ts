/**
 * The seam between the hub and whatever runs notebook servers.
 *
 * A Spawner is stateless: everything it needs to find a server again is in the `state` it returns from start(),
 * which the hub persists before doing anything else. That is what lets a hub killed at any moment re-attach
 * to its servers on restart (poll with the stored state) instead of holding live objects in memory.
 */
export type SpawnerState = Record<string, unknown>;

export interface ProgressEvent {
  /** 0–100, optional: a message without a number keeps the bar where it is. */
  progress?: number;
  message: string;
}

/**
 * Which account a per-user object belongs to. Spawners name homes, containers, pods and Secrets from `uid` (never
 * reused, unlike names); `legacyName` is set for accounts from before uids, whose persistent objects (home volume,
 * PVC, directory) keep the names they were created under.
 */
export interface UserKey {
  uid: string;
  legacyName?: string | null;
}

export interface SpawnUser extends UserKey {
  name: string;
  admin: boolean;
  groups: string[];
  /** The decrypted auth_state (e.g. the identity provider's tokens), when the hub keeps it. */
  authState?: Record<string, unknown>;
}

/**
 * What the user's class profile sets for one server. The hub resolves it from the classes' group properties and has
 * checked that the user may use it; every field that is set wins over the spawner's own default.
 */
export interface ServerProfile {
  /** `<class>/<slug>`, for labels and logs. */
  id: string;
  image?: string;
  /** CPUs, may be fractional. */
  cpuLimit?: number;
  /** Bytes. */
  memLimit?: number;
  /** Volumes mounted read-only, e.g. a class's shared material. */
  sharedVolumes?: Array<{ volume: string; mountPath: string }>;
}

export interface SpawnRequest {
  user: SpawnUser;
  /** '' for the default server. */
  serverName: string;
  /** URL path prefix the server must serve under, e.g. `/user/alice/`; always ends with `/`. */
  prefix: string;
  /** The single-user environment the hub prepared (JUPYTERHUB_*); the spawner adds JUPYTERHUB_SERVICE_URL. */
  env: Record<string, string>;
  userOptions: Record<string, unknown>;
  profile?: ServerProfile;
  /**
   * Files only this server may read (credentials), file name → content. The spawner writes them into a directory
   * readable only by the server's user and names that directory in the environment variable LABHUB_SECRETS_DIR.
   */
  secretFiles?: Record<string, string>;
  /** Aborted when the start timeout passes or the user stops the server while it starts. */
  signal: AbortSignal;
  progress(event: ProgressEvent): void;
  /**
   * Called as soon as the spawner has created something that must be cleaned up if the hub dies now
   * (a process id, a container id). The hub writes it to the DB before the spawner continues.
   */
  saveState(state: SpawnerState): Promise<void>;
}

/** What a spawner reserved for a server, for usage accounting and quotas; unset where it set no limit. */
export interface ReservedResources {
  /** CPUs, may be fractional. */
  cpu?: number;
  memBytes?: number;
  gpus?: number;
}

export interface SpawnResult {
  /** Where the proxy sends the server's traffic, e.g. `http://127.0.0.1:43127`. */
  url: string;
  state: SpawnerState;
  resources?: ReservedResources;
}

/** A measurement of a running server: a cumulative CPU counter or a current rate, and memory in use. */
export interface ServerStats {
  cpuSecondsTotal?: number;
  cpuCores?: number;
  memBytes?: number;
}

export type PollResult = { running: true } | { running: false; exitCode: number | null };

export interface Spawner {
  /** Short name shown in `/hub/api/info`, e.g. `local`. */
  readonly kind: string;
  /**
   * The spawner's own profiles, chosen with the user option `profile: <slug>` (KubeSpawner's profile_list). The hub
   * leaves such a value to the spawner instead of reading it as a class profile (`<class>/<slug>`).
   */
  readonly profileSlugs?: readonly string[];
  start(request: SpawnRequest): Promise<SpawnResult>;
  poll(state: SpawnerState): Promise<PollResult>;
  /** Stops the server; resolves once it is gone. `now` skips the graceful period. */
  stop(state: SpawnerState, options?: { now?: boolean }): Promise<void>;
  /** Releases what the spawner holds open (watches, sockets) at hub shutdown; running servers keep running. */
  close?(): Promise<void>;
  /**
   * What a start with these options would reserve, where the spawner can tell before starting: the quota check uses
   * it so that, say, a used-up GPU-hours quota refuses only starts that reserve GPUs. Without it a start reserves none.
   */
  plannedResources?(request: Pick<SpawnRequest, 'user' | 'userOptions' | 'profile'>): ReservedResources;
  /** Refuses user options this spawner cannot honour (e.g. an image not allowed), with an HttpError(400), before anything starts. */
  checkOptions?(request: Pick<SpawnRequest, 'userOptions' | 'profile'>): void;
  /** Refuses, before the hub writes any state, a user this spawner cannot serve as the hub is set up (an HttpError naming the fix). */
  checkUser?(user: SpawnRequest['user']): Promise<void>;
  /** Slow preparation that must not count against the start timeout (pulling an image); progress goes to the spawn. */
  prepare?(request: Pick<SpawnRequest, 'userOptions' | 'profile' | 'signal' | 'progress'>): Promise<unknown>;
  /**
   * When an admin deletes an account and purges its data (its servers are already stopped): removes the user's
   * persistent objects (home volume, PVC, home directory). Returns what it removed, for the admin.
   */
  removeUserData?(user: UserKey & { name: string }): Promise<string[]>;
  /**
   * Names of the volumes (Docker) or claims (Kubernetes) that hold this user's own data: their home, and per-user
   * volumes from the admin's configuration. The hub never lets a class mount one of them as a shared volume.
   */
  userVolumes?(user: UserKey & { name: string }): string[];
  /** What a running server uses now, where the spawner can tell (container stats, pod metrics); undefined if not. */
  stats?(state: SpawnerState): Promise<ServerStats | undefined>;
  /** Bytes in each user's home (by uid), for those the spawner can measure; one call covers every user given. */
  homeSizes?(users: ReadonlyArray<UserKey & { name: string }>): Promise<Map<string, number>>;
  /** At hub start: removes servers labelled as this hub's that no stored state describes; returns what it removed. */
  removeOrphans?(known: Iterable<SpawnerState>): Promise<unknown[]>;
}
