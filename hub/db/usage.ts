import { nowIso, type Db } from './database.js';
import type { QuotaRow, UsageRow } from './schema.js';
import type { ServerStats } from '../../spawners/spawner.js';

export interface UsageStart {
  userId: number;
  serverId: number;
  serverName: string;
  classId: number | null;
  profile: string | null;
  spawner: string;
  cpuRequest: number | null;
  memRequest: number | null;
  gpuRequest: number;
}

export interface UsageWindow {
  since: string;
  until: string;
  userIds?: number[];
  classIds?: number[];
}

export type OpenUsage = UsageRow & { user_name: string; user_uid: string };

/** Server runs (accounting) and home sizes; sums are computed by hub/usage/summary.ts from these rows. */
export class UsageRepository {
  constructor(private readonly db: Db) {}

  async begin(run: UsageStart, at = nowIso()): Promise<void> {
    await this.db.insertInto('server_usage').values({
      user_id: run.userId, server_id: run.serverId, server_name: run.serverName, class_id: run.classId, profile: run.profile,
      spawner: run.spawner, cpu_request: run.cpuRequest, mem_request: run.memRequest, gpu_request: run.gpuRequest,
      started_at: at, stopped_at: null, cpu_seconds: null, mem_bytes: null, mem_peak: null, mem_byte_seconds: 0,
      sampled_at: null, quota_warned_at: null,
    }).execute();
  }

  /** Closes the open run of a server (if any) at `at`. */
  async end(serverId: number, at = nowIso()): Promise<void> {
    await this.db.updateTable('server_usage').set({ stopped_at: at }).where('server_id', '=', serverId).where('stopped_at', 'is', null).execute();
  }

  /** Runs not yet stopped, with their owner's name and uid. */
  open(): Promise<OpenUsage[]> {
    return this.db.selectFrom('server_usage').innerJoin('users', 'users.id', 'server_usage.user_id')
      .selectAll('server_usage').select(['users.name as user_name', 'users.uid as user_uid'])
      .where('server_usage.stopped_at', 'is', null).execute();
  }

  openFor(serverId: number): Promise<UsageRow | undefined> {
    return this.db.selectFrom('server_usage').selectAll().where('server_id', '=', serverId).where('stopped_at', 'is', null).executeTakeFirst();
  }

  /**
   * Adds a measurement: a cumulative CPU counter replaces the stored one, a rate is integrated over the time since
   * the last sample, and memory in use is integrated the same way (so averages over any window stay honest).
   */
  async sample(run: UsageRow, measured: ServerStats, at = new Date()): Promise<void> {
    const last = Date.parse(run.sampled_at ?? run.started_at);
    const seconds = Math.max(0, (at.getTime() - last) / 1000);
    let cpu = run.cpu_seconds;
    if (measured.cpuSecondsTotal !== undefined) cpu = measured.cpuSecondsTotal;
    else if (measured.cpuCores !== undefined) cpu = (cpu ?? 0) + measured.cpuCores * seconds;
    const mem = measured.memBytes;
    await this.db.updateTable('server_usage').set({
      cpu_seconds: cpu,
      ...(mem !== undefined && {
        mem_bytes: mem,
        mem_peak: Math.max(mem, run.mem_peak ?? 0),
        mem_byte_seconds: run.mem_byte_seconds + mem * seconds,
      }),
      sampled_at: at.toISOString(),
    }).where('id', '=', run.id).execute();
  }

  async markWarned(id: number, at = nowIso()): Promise<void> {
    await this.db.updateTable('server_usage').set({ quota_warned_at: at }).where('id', '=', id).where('quota_warned_at', 'is', null).execute();
  }

  async clearWarned(id: number): Promise<void> {
    await this.db.updateTable('server_usage').set({ quota_warned_at: null }).where('id', '=', id).execute();
  }

  /** Runs that overlap [since, until), for some users and/or classes (all when neither is given). */
  async inWindow(w: UsageWindow): Promise<UsageRow[]> {
    if (w.userIds?.length === 0 || w.classIds?.length === 0) return [];
    let q = this.db.selectFrom('server_usage').selectAll()
      .where('started_at', '<', w.until)
      .where((eb) => eb.or([eb('stopped_at', 'is', null), eb('stopped_at', '>', w.since)]));
    if (w.userIds) q = q.where('user_id', 'in', w.userIds);
    if (w.classIds) q = q.where('class_id', 'in', w.classIds);
    return q.orderBy('started_at').execute();
  }

  /** Every run ever: the Prometheus counters sum them. */
  async totals(): Promise<UsageRow[]> {
    return this.db.selectFrom('server_usage').selectAll().execute();
  }

  async setHomeSize(userId: number, bytes: number, at = nowIso()): Promise<void> {
    await this.db.insertInto('home_storage').values({ user_id: userId, bytes, measured_at: at })
      .onConflict((oc) => oc.column('user_id').doUpdateSet({ bytes, measured_at: at })).execute();
  }

  async homeSizes(userIds?: number[]): Promise<Map<number, { bytes: number; measured_at: string }>> {
    if (userIds?.length === 0) return new Map();
    let q = this.db.selectFrom('home_storage').selectAll();
    if (userIds) q = q.where('user_id', 'in', userIds);
    return new Map((await q.execute()).map((r) => [r.user_id, { bytes: Number(r.bytes), measured_at: r.measured_at }]));
  }
}

export type QuotaLimits = Pick<QuotaRow, 'window_hours' | 'server_hours' | 'cpu_hours' | 'memory_gib_hours' | 'gpu_hours' | 'max_servers'>;

export type QuotaSubject = { userId: number } | { groupId: number };

export type QuotaView = QuotaRow & { user_name: string | null; group_name: string | null };

/** Admins' quotas, one per user and one per class at most. */
export class QuotaRepository {
  constructor(private readonly db: Db) {}

  private views() {
    return this.db.selectFrom('quotas').leftJoin('users', 'users.id', 'quotas.user_id').leftJoin('groups', 'groups.id', 'quotas.group_id')
      .selectAll('quotas').select(['users.name as user_name', 'groups.name as group_name']);
  }

  list(): Promise<QuotaView[]> {
    return this.views().orderBy('quotas.id').execute();
  }

  /** The quota of a user, and those of the classes given (by group id). */
  async applying(userId: number, groupIds: number[]): Promise<QuotaView[]> {
    return this.views().where((eb) => eb.or([
      eb('quotas.user_id', '=', userId),
      ...(groupIds.length ? [eb('quotas.group_id', 'in', groupIds)] : []),
    ])).execute();
  }

  get(subject: QuotaSubject): Promise<QuotaView | undefined> {
    return 'userId' in subject
      ? this.views().where('quotas.user_id', '=', subject.userId).executeTakeFirst()
      : this.views().where('quotas.group_id', '=', subject.groupId).executeTakeFirst();
  }

  async set(subject: QuotaSubject, limits: QuotaLimits): Promise<void> {
    const updated = nowIso();
    const existing = await this.get(subject);
    if (existing) {
      await this.db.updateTable('quotas').set({ ...limits, updated }).where('id', '=', existing.id).execute();
      return;
    }
    await this.db.insertInto('quotas').values({
      user_id: 'userId' in subject ? subject.userId : null, group_id: 'groupId' in subject ? subject.groupId : null, ...limits, updated,
    }).execute();
  }

  async delete(subject: QuotaSubject): Promise<boolean> {
    const q = this.db.deleteFrom('quotas');
    const result = await ('userId' in subject ? q.where('user_id', '=', subject.userId) : q.where('group_id', '=', subject.groupId)).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
