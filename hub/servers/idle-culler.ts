import type { Logger } from '../log.js';
import type { Store } from '../db/index.js';
import type { ServerRow } from '../db/schema.js';
import { IDLE_TIMEOUT_DEFAULT, type IdleCullingConfig } from '../config/schema.js';
import { BY_HUB } from '../audit/record.js';
import type { ServerManager } from './manager.js';

/** When servers are culled for inactivity, and how long before that their users are warned. */
export interface IdlePolicy {
  timeoutS: number;
  warnBeforeS: number;
}

/**
 * The policy the hub warns by, or null when it knows of none: with `enabled` the hub culls itself; with only an
 * explicit `timeout` it warns for an external culler run with the same --timeout.
 */
export function idlePolicy(config: IdleCullingConfig): IdlePolicy | null {
  if (!config.enabled && config.timeout === undefined) return null;
  return { timeoutS: config.timeout ?? IDLE_TIMEOUT_DEFAULT, warnBeforeS: config.warn_before };
}

/** What `GET …/idle` answers: when a server will be culled and whether its user should be warned now. */
export interface IdleState {
  last_activity: string | null;
  cull_at: string | null;
  seconds_left: number | null;
  warning: boolean;
  timeout: number | null;
  warn_before: number | null;
}

/** A server's activity as the culler counts it: its last reported activity, else when it started. */
function idleSince(row: Pick<ServerRow, 'last_activity' | 'started'>): string | null {
  return row.last_activity ?? row.started;
}

export function idleState(row: Pick<ServerRow, 'status' | 'last_activity' | 'started'> | undefined, policy: IdlePolicy | null, now: number): IdleState {
  const since = row ? idleSince(row) : null;
  const off = { last_activity: since, cull_at: null, seconds_left: null, warning: false, timeout: policy?.timeoutS ?? null, warn_before: policy?.warnBeforeS ?? null };
  if (!policy || row?.status !== 'running' || since === null) return off;
  const cullAt = Date.parse(since) + policy.timeoutS * 1000;
  const secondsLeft = Math.max(0, Math.ceil((cullAt - now) / 1000));
  return { ...off, cull_at: new Date(cullAt).toISOString(), seconds_left: secondsLeft, warning: secondsLeft <= policy.warnBeforeS };
}

export interface IdleCullerDeps {
  store: Store;
  servers: ServerManager;
  log: Logger;
}

/**
 * The built-in culler: every `checkIntervalMs` it stops running servers idle for longer than the timeout, through
 * the server manager as any stop, with the hub as actor and `reason: idle` in the audit log. Servers starting or
 * stopping are left to finish.
 */
export class IdleCuller {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly deps: IdleCullerDeps, private readonly policy: IdlePolicy, private readonly checkIntervalMs: number) {}

  /** Stops the servers idle past the timeout at `now`; resolves once each stop is under way, with how many. */
  async cullOnce(now = Date.now()): Promise<number> {
    const { store, servers, log } = this.deps;
    let culled = 0;
    for (const row of await store.servers.active()) {
      if (row.status !== 'running' || servers.isStopping(row.user_name, row.name)) continue;
      const since = idleSince(row);
      if (since === null || now - Date.parse(since) < this.policy.timeoutS * 1000) continue;
      const user = await store.users.byId(row.user_id);
      if (!user) continue;
      log.info({ user: user.name, server: row.name, last_activity: since }, 'stopping an idle server');
      // A failure (the server stopped meanwhile) concerns this server alone: the others are still checked.
      await servers.stop(user, row.name, 0, BY_HUB, 'idle').then(() => (culled += 1), (err: unknown) =>
        log.warn({ user: user.name, server: row.name, err: err instanceof Error ? err.message : String(err) }, 'could not stop an idle server'));
    }
    return culled;
  }

  start(): void {
    const tick = () => {
      this.cullOnce().catch((e: unknown) => this.deps.log.error({ err: e instanceof Error ? e.message : String(e) }, 'idle check failed'))
        .finally(() => {
          if (!this.closed) this.timer = setTimeout(tick, this.checkIntervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, this.checkIntervalMs).unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

/** The culler the config asks for, or null when the hub does not cull (it may still warn: idlePolicy). */
export function idleCullerFor(config: IdleCullingConfig, deps: IdleCullerDeps): IdleCuller | null {
  const policy = idlePolicy(config);
  return config.enabled && policy ? new IdleCuller(deps, policy, config.check_interval * 1000) : null;
}
