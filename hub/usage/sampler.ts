import type { Logger } from '../log.js';
import type { Store } from '../db/index.js';
import type { Spawner } from '../../spawners/spawner.js';
import { parseState, type ServerManager } from '../servers/manager.js';
import type { OpenUsage } from '../db/usage.js';
import { recordAudit, BY_HUB } from '../audit/record.js';
import { quotaReports, windowExcess } from './quotas.js';

export interface UsageSamplerOptions {
  sampleIntervalMs: number;
  storageIntervalMs: number;
  /** How long a server that used up a quota keeps running after the warning. */
  graceMs: number;
}

/**
 * Keeps usage honest while servers run: samples what each uses (where the spawner can tell), measures homes now and
 * then, and holds running servers to their quotas: the first sweep past a limit warns (audit record, pages), a sweep
 * after the grace period stops the server. A quota raised or freed in between lifts the warning.
 */
export class UsageSampler {
  private timer: NodeJS.Timeout | undefined;
  private lastStorage = 0;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly deps: { store: Store; spawner: Spawner; manager: ServerManager; log: Logger },
    private readonly options: UsageSamplerOptions,
  ) {}

  /** One pass: samples, quota sweep, and home sizes when they are due. Passes never overlap. */
  tick(now = Date.now()): Promise<void> {
    this.running ??= this.pass(now).finally(() => { this.running = undefined; });
    return this.running;
  }

  private async pass(now: number): Promise<void> {
    // Sampling changes no field the quota sweep or the home check reads: one read of the open runs serves all three.
    const open = await this.deps.store.usage.open();
    await this.sample(open);
    await this.enforceQuotas(open, now);
    if (this.deps.spawner.homeSizes && (now - this.lastStorage >= this.options.storageIntervalMs || await this.unmeasuredHomes(open))) {
      this.lastStorage = now;
      await this.measureHomes();
    }
  }

  private async sample(open: readonly OpenUsage[]): Promise<void> {
    const { store, spawner, log } = this.deps;
    if (!spawner.stats) return;
    for (const run of open) {
      const server = await store.servers.byId(run.server_id);
      if (server?.status !== 'running') continue;
      const stats = await spawner.stats(parseState(server.spawner_state)).catch((e: unknown) => {
        log.debug({ user: run.user_name, server: run.server_name, err: e instanceof Error ? e.message : String(e) }, 'could not sample server usage');
        return undefined;
      });
      if (stats) await store.usage.sample(run, stats);
    }
  }

  private async enforceQuotas(open: readonly OpenUsage[], now: number): Promise<void> {
    const { store, manager, log } = this.deps;
    // Without any quota there is nothing to look up per run; a warning left from a removed quota is lifted.
    const anyQuota = (await store.quotas.list()).length > 0;
    for (const run of open) {
      const reached = anyQuota ? windowExcess(await quotaReports(store, { id: run.user_id, name: run.user_name }, now), run) : null;
      if (!reached) {
        if (run.quota_warned_at) await store.usage.clearWarned(run.id);
        continue;
      }
      const user = await store.users.byId(run.user_id);
      if (!user) continue;
      const target = { kind: 'user', name: user.name, uid: user.uid } as const;
      if (!run.quota_warned_at) {
        const stopAt = new Date(now + this.options.graceMs).toISOString();
        await store.transaction(async (tx) => {
          await tx.usage.markWarned(run.id, new Date(now).toISOString());
          await recordAudit(tx, { ...BY_HUB, target, action: 'quota.warning', details: { server: run.server_name, quota: reached, stop_at: stopAt } });
        });
        log.warn({ user: user.name, server: run.server_name, quota: reached, stop_at: stopAt }, 'server reached a quota; it will be stopped after the grace period');
        continue;
      }
      if (now - Date.parse(run.quota_warned_at) < this.options.graceMs) continue;
      log.warn({ user: user.name, server: run.server_name, quota: reached }, 'stopping a server past its quota');
      await manager.stop(user, run.server_name, 0, BY_HUB, 'quota').catch((e: unknown) =>
        log.error({ user: user.name, server: run.server_name, err: e instanceof Error ? e.message : String(e) }, 'could not stop a server past its quota'));
    }
  }

  /** Whether someone runs a server whose home was never measured (a new user): they see a size from the start. */
  private async unmeasuredHomes(open: readonly OpenUsage[]): Promise<boolean> {
    const users = [...new Set(open.map((r) => r.user_id))];
    const measured = await this.deps.store.usage.homeSizes(users);
    return users.some((id) => !measured.has(id));
  }

  private async measureHomes(): Promise<void> {
    const { store, spawner, log } = this.deps;
    const { rows: users } = await store.users.list({ offset: 0, limit: 1_000_000, sort: 'id', descending: false });
    const sizes = await spawner.homeSizes!(users.map((u) => ({ name: u.name, uid: u.uid, legacyName: u.legacy_name }))).catch((e: unknown) => {
      log.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not measure home sizes');
      return new Map<string, number>();
    });
    for (const user of users) {
      const bytes = sizes.get(user.uid);
      if (bytes !== undefined) await store.usage.setHomeSize(user.id, bytes);
    }
  }

  start(): void {
    const loop = () => {
      this.tick().catch((e: unknown) => this.deps.log.error({ err: e instanceof Error ? e.message : String(e) }, 'usage pass failed'))
        .finally(() => {
          // A pass that was under way when the hub closed must not schedule another against a closed DB.
          if (!this.closed) this.timer = setTimeout(loop, this.options.sampleIntervalMs).unref();
        });
    };
    this.timer = setTimeout(loop, this.options.sampleIntervalMs).unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
