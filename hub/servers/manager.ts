import type { Logger } from '../log.js';
import type { Store } from '../db/index.js';
import type { ServerRow, UserRow } from '../db/schema.js';
import type { ProxyClient } from '../../proxy/client.js';
import type { SpawnRequest, Spawner, SpawnerState } from '../../spawners/spawner.js';
import type { TokenService } from '../auth/token-service.js';
import type { HubMetrics } from '../metrics.js';
import { HttpError } from '../errors.js';
import { hashToken } from '../auth/tokens.js';
import { SpawnProgress, type SpawnEvent } from './progress.js';
import { singleUserEnvironment } from './environment.js';
import { normalizeRouteKey, oauthClientId, serverKey, serverPrefix } from './naming.js';
import { servicePrefix } from '../services/oauth-clients.js';
import { waitForHttp, waitForServer } from './readiness.js';
import { resolveProfile, type ClassRecord } from '../classes/profiles.js';
import type { CredentialService } from '../credentials/service.js';
import type { ClassGuard } from '../classes/guard.js';
import { BY_HUB, recordAudit, type AuditBy } from '../audit/record.js';
import { checkStartQuota, classOfProfile } from '../usage/quotas.js';
import type { StopReason } from '../audit/events.js';

export interface ServerManagerOptions {
  startTimeoutMs: number;
  httpTimeoutMs: number;
  pollIntervalMs: number;
  concurrentSpawnLimit: number;
  activeServerLimit: number;
  hubConnectUrl: string;
  publicUrl?: string;
  /** Where class shared volumes are mounted in a server, one directory per class (e.g. /home/jovyan/shared). */
  sharedMountRoot: string;
}

export interface ServerManagerDeps {
  store: Store;
  spawner: Spawner;
  proxy: ProxyClient;
  tokens: TokenService;
  metrics: HubMetrics;
  log: Logger;
  /** The user's auth_state for the spawner, refreshed first; throws when the user must sign in again. */
  authStateFor?: (user: UserRow) => Promise<Record<string, unknown> | undefined>;
  /** Per-server accounts at the lab's data services, issued before the spawner starts and revoked at release. */
  credentials?: CredentialService;
  /** Gives each spawn the user's classes with only the grants within the admin's bounds. */
  classes: ClassGuard;
  /** Services from config; those with a `url` are routed at /services/<name>/. */
  services?: ReadonlyArray<{ name: string; url?: string | undefined }>;
}

export type StartOutcome = { status: 'ready' } | { status: 'pending' };

/** Route data the hub writes, in JupyterHub's shape, so tools that read the proxy's table understand it. */
const routeData = (user: string, server: string) => ({ jupyterhub: true, user, server_name: server });

/**
 * Starts, stops and watches notebook servers. Every state change is written to the DB before the side effect it
 * describes; `reconcile()` at start-up finishes or undoes whatever a killed hub left half done.
 */
export class ServerManager {
  private readonly progress = new Map<string, SpawnProgress>();
  private readonly pendingStarts = new Map<string, { abort: AbortController; done: Promise<void> }>();
  private readonly pendingStops = new Map<string, Promise<void>>();
  private readonly userQueues = new Map<number, Promise<void>>();
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly deps: ServerManagerDeps, private readonly options: ServerManagerOptions) {}

  get spawnsInProgress(): number {
    return this.pendingStarts.size;
  }

  isStopping(user: string, server: string): boolean {
    return this.pendingStops.has(serverKey(user, server));
  }

  progressOf(user: string, server: string): SpawnProgress | undefined {
    return this.progress.get(serverKey(user, server));
  }

  /**
   * Starts a server. Resolves with `ready` if it came up within `waitMs`, else `pending` while the spawn goes on
   * in the background (the API answers 202 then). Refuses with 429 past the spawn limits.
   */
  async start(user: UserRow, serverName: string, userOptions: Record<string, unknown>, waitMs: number, by: AuditBy = BY_HUB): Promise<StartOutcome> {
    const key = serverKey(user.name, serverName);
    const { store, metrics } = this.deps;
    if (this.options.concurrentSpawnLimit > 0 && this.pendingStarts.size >= this.options.concurrentSpawnLimit) {
      metrics.spawnRefused.inc({ reason: 'concurrent_spawn_limit' });
      throw new HttpError(429, 'Too many users trying to log in right now. Try again in a minute.', { 'Retry-After': String(30 + Math.floor(Math.random() * 30)) });
    }
    if (this.options.activeServerLimit > 0) {
      const active = (await store.servers.countByStatus('running')) + this.pendingStarts.size;
      if (active >= this.options.activeServerLimit) {
        metrics.spawnRefused.inc({ reason: 'active_server_limit' });
        throw new HttpError(429, 'Active user limit exceeded. Try again in a few minutes.', { 'Retry-After': '60' });
      }
    }
    const classes = await this.deps.classes.classesFor(user, { forSpawn: true });
    const profile = resolveProfile(classes, userOptions, this.options.sharedMountRoot, this.deps.spawner.profileSlugs);
    this.deps.spawner.checkOptions?.({ userOptions, profile });
    await this.deps.spawner.checkUser?.({ name: user.name, uid: user.uid, legacyName: user.legacy_name, admin: Boolean(user.admin), groups: [] });
    // A start without a profile gets the class default: record it, so the API, the admin pages and the next start show it.
    const applied = profile && profile.id !== 'default' && userOptions.profile === undefined ? { ...userOptions, profile: profile.id } : userOptions;
    const usageProfile = usageProfileOf(profile, userOptions);
    // One user's starts pass the quota check one at a time: two at once cannot both fit under max_servers.
    const row = await this.oneAtATime(user.id, async () => {
      const before = await store.servers.get(user.id, serverName);
      if (!before || before.status === 'stopped') {
        const groups = this.deps.spawner.plannedResources ? await store.groups.namesOfUser(user.id) : [];
        const spawnUser = { name: user.name, uid: user.uid, legacyName: user.legacy_name, admin: Boolean(user.admin), groups };
        const planned = this.deps.spawner.plannedResources?.({ user: spawnUser, userOptions, profile }) ?? {};
        await checkStartQuota(store, user, usageProfile, planned.gpus ?? 0);
      }
      return store.servers.beginStart(user.id, serverName, applied, this.deps.spawner.kind);
    });
    if (!row) {
      if (this.pendingStarts.has(key)) return { status: 'pending' };
      const existing = await store.servers.get(user.id, serverName);
      if (existing?.status === 'stopping') throw new HttpError(400, `${describe(user.name, serverName)} is stopping; try again when it has stopped`);
      throw new HttpError(400, `${describe(user.name, serverName)} is already running`);
    }
    // The start is external: its intent is recorded now and its outcome when the spawn ends (spawn).
    const audit = { ...by, target: { kind: 'user', name: user.name, uid: user.uid } } as const;
    const profileId = profile?.id ?? null;
    await recordAudit(store, { ...audit, action: 'server.start', details: { server: row.name, profile: profileId, outcome: 'requested' } });
    const progress = new SpawnProgress();
    this.progress.set(key, progress);
    progress.emit({ progress: 0, message: 'Server requested' });
    const abort = new AbortController();
    const outcome = (o: 'started' | 'failed', error?: string) => recordAudit(store, {
      ...audit, action: 'server.start', details: { server: row.name, profile: profileId, outcome: o, ...(error !== undefined && { error }) },
    }).catch((e: unknown) => this.deps.log.error({ err: errorText(e) }, 'could not record a server start in the audit log'));
    const done = this.spawn(user, row, { userOptions, profile }, usageProfile, classes, progress, abort.signal)
      .then(() => { const final = progress.events.at(-1); return outcome(final?.failed ? 'failed' : 'started', final?.failed ? final.message : undefined); }).finally(() => this.pendingStarts.delete(key));
    this.pendingStarts.set(key, { abort, done });
    const ready = await Promise.race([
      done.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), waitMs).unref()),
    ]);
    if (!ready) return { status: 'pending' };
    const final = progress.events.at(-1);
    if (final?.failed) throw new HttpError(500, final.message);
    return { status: 'ready' };
  }

  /** Runs `work` after every earlier call for the same user has settled (the hub is one process). */
  private async oneAtATime<T>(userId: number, work: () => Promise<T>): Promise<T> {
    const run = (this.userQueues.get(userId) ?? Promise.resolve()).then(work);
    const settled = run.then(() => undefined, () => undefined);
    this.userQueues.set(userId, settled);
    try {
      return await run;
    } finally {
      if (this.userQueues.get(userId) === settled) this.userQueues.delete(userId);
    }
  }

  private async spawn(user: UserRow, row: ServerRow, { userOptions, profile }: Pick<SpawnRequest, 'userOptions' | 'profile'>, usageProfile: string | null,
    classes: ClassRecord[], progress: SpawnProgress, signal: AbortSignal): Promise<void> {
    const { store, spawner, proxy, tokens, metrics, log } = this.deps;
    const started = performance.now();
    const prefix = serverPrefix(user.name, row.name);
    let state: SpawnerState = {};
    let spawnerStarted = false;
    try {
      const { token, row: tokenRow } = await tokens.issue({
        owner: { userId: user.id },
        scopes: serverTokenScopes(user.name, row.name),
        note: `Server at ${prefix}`,
      });
      await store.servers.setToken(row.id, tokenRow.id);
      await this.registerOAuthClient(user, row.name, token);
      const groups = await store.groups.namesOfUser(user.id);
      const authState = await this.deps.authStateFor?.(user);
      const env = singleUserEnvironment({
        user: user.name,
        uid: user.uid,
        server: row.name,
        apiToken: token,
        hubConnectUrl: this.options.hubConnectUrl,
        accessScopes: accessScopes(user.name, row.name),
        clientAllowedScopes: [],
        publicUrl: this.options.publicUrl,
      });
      if (spawner.prepare) {
        progress.emit({ progress: 5, message: 'Preparing the server' });
        await spawner.prepare({
          userOptions, profile, signal,
          progress: (e) => progress.emit({ progress: e.progress === undefined ? undefined : Math.round(e.progress * 0.1), message: e.message }),
        });
      }
      const credentials = await this.deps.credentials?.issueForServer({
        user: { name: user.name, uid: user.uid, legacyName: user.legacy_name }, serverId: row.id, serverName: row.name,
        classes: classes.map((c) => ({ name: c.name, properties: JSON.parse(c.properties) as Record<string, unknown> })),
        progress: (message) => progress.emit({ progress: 10, message }),
      });
      progress.emit({ progress: 10, message: 'Starting the server' });
      const timeout = AbortSignal.timeout(this.options.startTimeoutMs);
      const result = await withAbort(spawner.start({
        user: { name: user.name, uid: user.uid, legacyName: user.legacy_name, admin: Boolean(user.admin), groups, ...(authState && { authState }) },
        serverName: row.name,
        prefix,
        env: { ...env, ...credentials?.env },
        ...(credentials && Object.keys(credentials.secretFiles).length && { secretFiles: credentials.secretFiles }),
        userOptions,
        profile,
        signal: AbortSignal.any([signal, timeout]),
        progress: (e) => progress.emit({ progress: e.progress === undefined ? undefined : 10 + Math.round(e.progress * 0.6), message: e.message }),
        saveState: async (s) => {
          spawnerStarted = true;
          state = s;
          await store.servers.saveSpawnerState(row.id, s);
        },
      }), AbortSignal.any([signal, timeout]), () =>
        timeout.aborted ? `the server did not start within ${Math.round(this.options.startTimeoutMs / 1000)} s` : 'Spawn cancelled');
      spawnerStarted = true;
      state = result.state;
      await store.servers.saveSpawnerState(row.id, state);
      progress.emit({ progress: 75, message: 'Server started, waiting for it to answer' });
      const spawned = state;
      await waitForServer(result.url, prefix, this.options.httpTimeoutMs, signal, () => spawner.poll(spawned));
      await proxy.addRoute(prefix, result.url, routeData(user.name, row.name));
      const className = classOfProfile(usageProfile);
      const classId = className === null ? null : (await store.groups.byName(className))?.id ?? null;
      // Running and accounted for from the same instant: a hub killed in between leaves neither.
      await store.transaction(async (tx) => {
        await tx.servers.markRunning(row.id, result.url, state);
        await tx.usage.begin({
          userId: user.id, serverId: row.id, serverName: row.name, classId, profile: usageProfile, spawner: spawner.kind,
          cpuRequest: result.resources?.cpu ?? null, memRequest: result.resources?.memBytes ?? null, gpuRequest: result.resources?.gpus ?? 0,
        });
      });
      metrics.spawnDuration.observe({ status: 'success' }, (performance.now() - started) / 1000);
      log.info({ user: user.name, server: row.name, url: result.url, ms: Math.round(performance.now() - started) }, 'server ready');
      progress.emit({
        progress: 100, ready: true, message: `Server ready at ${prefix}`,
        html_message: `Server ready at <a href="${prefix}">${prefix}</a>`, url: prefix,
      });
    } catch (err) {
      const cancelled = signal.aborted;
      const reason = cancelled ? 'Spawn cancelled' : `Spawn failed: ${errorText(err)}`;
      metrics.spawnDuration.observe({ status: cancelled ? 'cancelled' : 'failure' }, (performance.now() - started) / 1000);
      log.warn({ user: user.name, server: row.name, err: errorText(err) }, 'spawn failed');
      if (spawnerStarted) await spawner.stop(state, { now: true }).catch((e: unknown) => log.error({ err: errorText(e) }, 'could not stop a failed server'));
      await this.release(user, row.name, row.id, cancelled ? null : reason);
      progress.emit({ progress: 100, failed: true, message: reason });
    }
  }

  private async registerOAuthClient(user: Pick<UserRow, 'name' | 'uid'>, server: string, apiToken: string): Promise<void> {
    await this.deps.store.oauth.upsertClient({
      identifier: oauthClientId(user.uid, server),
      description: `Server at ${serverPrefix(user.name, server)}`,
      secret_hash: hashToken(apiToken),
      redirect_uri: callbackUrl(user.name, server),
      allowed_scopes: JSON.stringify(accessScopes(user.name, server)),
    });
  }

  /**
   * Stops a server (aborting a start in progress). Resolves once it is stopped, or when `waitMs` passes. `reason`
   * goes into the audit records of a stop the hub decided on itself.
   */
  async stop(user: UserRow, serverName: string, waitMs: number, by: AuditBy = BY_HUB, reason?: StopReason): Promise<'stopped' | 'pending'> {
    const key = serverKey(user.name, serverName);
    const pendingStart = this.pendingStarts.get(key);
    const audit = { ...by, target: { kind: 'user', name: user.name, uid: user.uid } } as const;
    const stopped = (outcome: 'requested' | 'stopped') => ({ server: serverName, outcome, ...(reason && { reason }) });
    if (pendingStart) {
      await recordAudit(this.deps.store, { ...audit, action: 'server.stop', details: stopped('requested') });
      pendingStart.abort.abort();
      await pendingStart.done;
      return 'stopped';
    }
    let stopping = this.pendingStops.get(key);
    if (!stopping) {
      const row = await this.deps.store.servers.get(user.id, serverName);
      if (!row || row.status === 'stopped') throw new HttpError(400, `${describe(user.name, serverName)} is not running`);
      await recordAudit(this.deps.store, { ...audit, action: 'server.stop', details: stopped('requested') });
      stopping = this.stopRow(user, row)
        .then(() => recordAudit(this.deps.store, { ...audit, action: 'server.stop', details: stopped('stopped') }))
        .catch((e: unknown) => this.deps.log.error({ err: errorText(e) }, 'could not record a server stop in the audit log'))
        .finally(() => this.pendingStops.delete(key));
      this.pendingStops.set(key, stopping);
    }
    const done = await Promise.race([stopping.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), waitMs).unref())]);
    return done ? 'stopped' : 'pending';
  }

  private async stopRow(user: UserRow, row: ServerRow): Promise<void> {
    const { store, spawner, proxy, log } = this.deps;
    await store.servers.markStopping(row.id);
    await proxy.deleteRoute(serverPrefix(user.name, row.name)).catch((e: unknown) => log.warn({ err: errorText(e) }, 'could not delete route'));
    await spawner.stop(parseState(row.spawner_state)).catch((e: unknown) => log.error({ user: user.name, err: errorText(e) }, 'spawner stop failed'));
    await this.release(user, row.name, row.id, null);
    this.progress.delete(serverKey(user.name, row.name));
    log.info({ user: user.name, server: row.name }, 'server stopped');
  }

  /**
   * Frees what a server held: its API token, its OAuth client with the tokens issued to it, its route, its
   * credential leases (a revocation that fails stays recorded and the sweeper retries it).
   */
  private async release(user: Pick<UserRow, 'name' | 'uid'>, serverName: string, rowId: number, error: string | null, { foundDead = false } = {}): Promise<void> {
    const { store, proxy, log } = this.deps;
    // A server found gone ran until it was last seen alive, not until the hub noticed.
    const run = foundDead ? await store.usage.openFor(rowId) : undefined;
    await store.usage.end(rowId, run?.sampled_at ?? undefined);
    const row = await store.servers.byId(rowId);
    if (row?.token_id) await store.tokens.delete(row.token_id);
    await forgetOAuthClients(store, user, serverName);
    await proxy.deleteRoute(serverPrefix(user.name, serverName)).catch((e: unknown) => log.warn({ err: errorText(e) }, 'could not delete route'));
    await this.deps.credentials?.revokeServer(rowId);
    await store.servers.markStopped(rowId, error);
  }

  /** Every active server: is it alive? Servers that died are cleaned up (route, token, OAuth client). */
  async pollAll(): Promise<void> {
    const { store, spawner, log } = this.deps;
    for (const row of await store.servers.active()) {
      const key = serverKey(row.user_name, row.name);
      if (row.status !== 'running' || this.pendingStarts.has(key) || this.pendingStops.has(key)) continue;
      // A poll that fails says nothing about the server (an engine briefly unreachable): check again next time.
      const result = await spawner.poll(parseState(row.spawner_state)).catch((e: unknown) => {
        log.warn({ user: row.user_name, server: row.name, err: errorText(e) }, 'could not poll server; will retry');
        return { running: true as const };
      });
      if (result.running) continue;
      log.warn({ user: row.user_name, server: row.name }, 'server is no longer running; cleaning up');
      await this.release({ name: row.user_name, uid: row.user_uid }, row.name, row.id, null, { foundDead: true });
      this.progress.delete(key);
    }
  }

  startPolling(): void {
    const tick = () => {
      this.pollAll().catch((e: unknown) => this.deps.log.error({ err: errorText(e) }, 'poll failed'))
        .finally(() => {
          // A poll under way when the hub closed must not schedule another.
          if (!this.closed) this.pollTimer = setTimeout(tick, jitter(this.options.pollIntervalMs)).unref();
        });
    };
    this.pollTimer = setTimeout(tick, jitter(this.options.pollIntervalMs)).unref();
  }

  /**
   * At hub start: servers left `starting` or `running` are polled and kept if alive (and answering), cleaned up if
   * not; servers left `stopping` are stopped. Runs the checks concurrently.
   */
  async reconcile(): Promise<{ kept: number; cleaned: number }> {
    const { store, spawner, log } = this.deps;
    let kept = 0;
    let cleaned = 0;
    await Promise.all((await store.servers.active()).map(async (row) => {
      const state = parseState(row.spawner_state);
      const user = { id: row.user_id, name: row.user_name, uid: row.user_uid };
      const polled = row.status === 'stopping' ? { running: false } : await spawner.poll(state).catch((e: unknown) => e instanceof Error ? e : new Error(String(e)));
      if (polled instanceof Error && row.status === 'running') {
        // Unknown is not dead: keep the server and let polling decide once the spawner answers again.
        log.warn({ user: row.user_name, server: row.name, err: polled.message }, 'could not poll server at start; keeping it');
        kept += 1;
        return;
      }
      const alive = !(polled instanceof Error) && polled.running;
      if (alive && row.url) {
        try {
          await waitForHttp(row.url, serverPrefix(row.user_name, row.name), Math.min(this.options.httpTimeoutMs, 10_000));
          if (row.status === 'starting') await store.servers.markRunning(row.id, row.url, state);
          // A server that came up while the hub was down (or before accounting existed) is accounted from now.
          if (!(await store.usage.openFor(row.id))) {
            await store.usage.begin({
              userId: row.user_id, serverId: row.id, serverName: row.name, classId: null, profile: null, spawner: spawner.kind,
              cpuRequest: null, memRequest: null, gpuRequest: 0,
            });
          }
          kept += 1;
          return;
        } catch {
          log.warn({ user: row.user_name, server: row.name }, 'server process is alive but does not answer; stopping it');
        }
      }
      if (Object.keys(state).length) await spawner.stop(state, { now: true }).catch(() => undefined);
      await this.release(user, row.name, row.id, row.status === 'starting' ? 'Spawn interrupted by a hub restart' : null, { foundDead: true });
      cleaned += 1;
    }));
    if (spawner.removeOrphans) {
      const known = (await store.servers.active()).map((row) => parseState(row.spawner_state));
      const removed = await spawner.removeOrphans(known).catch((e: unknown) => {
        log.error({ err: errorText(e) }, 'could not look for orphaned servers');
        return [];
      });
      if (removed.length) log.warn({ removed }, 'removed servers labelled as this hub\'s that the DB does not know');
    }
    log.info({ kept, cleaned }, 'reconciled servers after start');
    return { kept, cleaned };
  }

  /**
   * Makes the proxy's table match the DB: the hub route, a route for every running server and every service with a
   * URL, and no other route the hub created (stale ones of stopped servers and removed services). Routes of other
   * tools (no `jupyterhub` key) are left alone.
   * `proxy` names one instance when several serve the same routes (`proxy.api_urls`); default: all of them.
   */
  async syncRoutes(hubTarget: string, proxy: ProxyClient = this.deps.proxy): Promise<{ added: number; removed: number }> {
    const { store } = this.deps;
    const routes = await proxy.getRoutes();
    let added = 0;
    let removed = 0;
    if (routes['/']?.target !== hubTarget) {
      await proxy.addRoute('/', hubTarget, { hub: true });
      added += 1;
    }
    const wanted = new Map<string, { path: string; target: string; data: Record<string, unknown> }>();
    for (const row of await store.servers.active()) {
      if (row.status === 'running' && row.url) {
        const path = serverPrefix(row.user_name, row.name);
        wanted.set(normalizeRouteKey(path), { path, target: row.url, data: routeData(row.user_name, row.name) });
      }
    }
    for (const service of this.deps.services ?? []) {
      if (!service.url) continue;
      const path = servicePrefix(service.name);
      wanted.set(normalizeRouteKey(path), { path, target: service.url, data: { jupyterhub: true, service: service.name } });
    }
    const present = new Map<string, string>();
    for (const [key, route] of Object.entries(routes)) {
      if (key === '/' || !route.jupyterhub) continue;
      const normalized = normalizeRouteKey(key);
      if (wanted.has(normalized)) {
        present.set(normalized, route.target);
      } else {
        await proxy.deleteRoute(key);
        removed += 1;
      }
    }
    for (const [key, want] of wanted) {
      if (present.get(key) === want.target) continue;
      await proxy.addRoute(want.path, want.target, want.data);
      added += 1;
    }
    return { added, removed };
  }

  /** Stops every server (a shutdown asked to take them along); one that fails to stop does not keep the others. */
  async stopAll(waitMs: number): Promise<void> {
    const rows = await this.deps.store.servers.active();
    await Promise.allSettled(rows.map(async (row) => {
      const user = await this.deps.store.users.byId(row.user_id);
      if (user) await this.stop(user, row.name, waitMs);
    }));
  }

  /** Stops polling and waits for spawns in flight; running servers keep running across a hub restart. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    for (const { abort } of this.pendingStarts.values()) abort.abort();
    await Promise.allSettled([...this.pendingStarts.values()].map((p) => p.done));
    await Promise.allSettled([...this.pendingStops.values()]);
  }

  /** The events a progress stream starts with for a server that is not spawning now. */
  finishedEvent(row: ServerRow | undefined, user: string): SpawnEvent | null {
    if (!row) return null;
    const prefix = serverPrefix(user, row.name);
    if (row.status === 'running') {
      return { progress: 100, ready: true, message: `Server ready at ${prefix}`, html_message: `Server ready at <a href="${prefix}">${prefix}</a>`, url: prefix };
    }
    if (row.status === 'stopped' && row.last_error) return { progress: 100, failed: true, message: row.last_error };
    return null;
  }
}

/**
 * Deletes the OAuth client of a server's address and the tokens issued to it, and any client still registered for
 * that callback under another id (one from before uids): nothing keeps reaching the server through that address.
 */
export async function forgetOAuthClients(store: Store, user: Pick<UserRow, 'name' | 'uid'>, serverName: string): Promise<void> {
  const clientIds = new Set([oauthClientId(user.uid, serverName), ...(await store.oauth.clientIdsWithRedirect(callbackUrl(user.name, serverName)))]);
  for (const clientId of clientIds) {
    await store.tokens.deleteForClient(clientId);
    await store.oauth.deleteClient(clientId);
  }
}

function callbackUrl(user: string, server: string): string {
  return `${serverPrefix(user, server)}oauth_callback`;
}

/**
 * Scopes of a server's own API token: JupyterHub's `server` role resolved to this server, and reading this server
 * (its idle state, for the idle warning inside JupyterLab: images/python/labhub_idle).
 */
export function serverTokenScopes(user: string, server: string): string[] {
  return [`users:activity!user=${user}`, `access:servers!server=${user}/${server}`, `read:servers!server=${user}/${server}`];
}

/** Scopes a user's token needs to use this server (JUPYTERHUB_OAUTH_ACCESS_SCOPES). */
export function accessScopes(user: string, server: string): string[] {
  return [`access:servers!server=${user}/${server}`, `access:servers!user=${user}`];
}

/** What a run is accounted under: the class profile, else the spawner's own profile the user chose, else nothing. */
function usageProfileOf(profile: SpawnRequest['profile'], userOptions: Record<string, unknown>): string | null {
  if (profile && profile.id !== 'default') return profile.id;
  return typeof userOptions.profile === 'string' && userOptions.profile !== '' ? userOptions.profile : null;
}

/** A stored spawner state; anything unreadable is an empty state (nothing to find again). */
export function parseState(json: string): SpawnerState {
  try {
    const value: unknown = JSON.parse(json);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as SpawnerState) : {};
  } catch {
    return {};
  }
}

function describe(user: string, server: string): string {
  return server ? `${user}'s server ${server}` : `${user}'s server`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function jitter(ms: number): number {
  return Math.max(1000, ms * (0.9 + Math.random() * 0.2));
}

/** Spawners should honour the signal; this makes sure a spawner that does not still cannot hang a spawn. */
function withAbort<T>(work: Promise<T>, signal: AbortSignal, reason: () => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(reason()));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
