import type { Store } from '../db/index.js';
import type { UsageRow, UserRow } from '../db/schema.js';
import type { QuotaLimits, QuotaSubject, QuotaView } from '../db/usage.js';
import { recordAudit, type AuditBy } from '../audit/record.js';
import { usernameFrom } from '../api/validate.js';
import { HttpError } from '../errors.js';
import { describeExcess, quotaStatus, type QuotaExcess, type QuotaStatus } from './summary.js';
import { profileOption } from '../classes/profiles.js';

/** The class a run counts against: the class of its `<class>/<slug>` profile, if any. */
export function classOfProfile(profile: string | null | undefined): string | null {
  const slash = profile?.indexOf('/') ?? -1;
  return profile && slash > 0 ? profile.slice(0, slash) : null;
}

export interface QuotaReport {
  subject: { kind: 'user'; name: string } | { kind: 'class'; name: string; id: number };
  limits: QuotaLimits;
  status: QuotaStatus;
}

export function limitsOf(row: QuotaView): QuotaLimits {
  return {
    window_hours: row.window_hours, server_hours: row.server_hours, cpu_hours: row.cpu_hours,
    memory_gib_hours: row.memory_gib_hours, gpu_hours: row.gpu_hours, max_servers: row.max_servers,
  };
}

/** "class bio101's quota", "your quota" — how a message names a quota to the user it binds. */
export function quotaName(subject: QuotaReport['subject']): string {
  return subject.kind === 'class' ? `class ${subject.name}'s quota` : 'your quota';
}

/**
 * Where a user stands against every quota that binds them: their own (all their servers) and those of their classes
 * (their servers started with that class's profiles). `starting` is a server about to start, counted as running
 * (with its class), for the concurrency limits; window limits count only what has run.
 */
export async function quotaReports(store: Store, user: Pick<UserRow, 'id' | 'name'>, now: number, starting?: { className: string | null }): Promise<QuotaReport[]> {
  const groups = await store.groups.ofUser(user.id);
  const quotas = await store.quotas.applying(user.id, groups.map((g) => g.id));
  if (!quotas.length) return [];
  const longest = Math.max(...quotas.map((q) => q.window_hours));
  const rows = await store.usage.inWindow({ since: new Date(now - longest * 3_600_000).toISOString(), until: new Date(now + 1000).toISOString(), userIds: [user.id] });
  const active = (await store.servers.forUsers([user.id])).get(user.id)?.filter((s) => s.status !== 'stopped') ?? [];
  const activeClasses = active.map((s) => classOfProfile(profileOption(s.user_options)));
  const reports: QuotaReport[] = [];
  for (const quota of quotas) {
    const limits = limitsOf(quota);
    if (quota.user_id !== null) {
      const running = active.length + (starting ? 1 : 0);
      reports.push({ subject: { kind: 'user', name: user.name }, limits, status: quotaStatus(limits, rows, running, now) });
    } else if (quota.group_name !== null) {
      const className = quota.group_name;
      const counted = rows.filter((r) => r.class_id === quota.group_id);
      const running = activeClasses.filter((c) => c === className).length + (starting?.className === className ? 1 : 0);
      reports.push({ subject: { kind: 'class', name: className, id: quota.group_id! }, limits, status: quotaStatus(limits, counted, running, now) });
    }
  }
  return reports;
}

/** A used-up GPU-hours limit binds only what reserves GPUs: a CPU-only server adds nothing to it. */
function binds(e: QuotaExcess, gpus: number): boolean {
  return e.metric !== 'gpu_hours' || gpus > 0;
}

/**
 * Refuses a start that a quota does not allow, naming the quota, the limit and when it frees up. Class quotas bind
 * only servers started with that class's profiles; `gpus` is what the start would reserve. 429 with Retry-After,
 * so scripts know when to come back.
 */
export async function checkStartQuota(store: Store, user: Pick<UserRow, 'id' | 'name'>, profile: string | null, gpus: number, now = Date.now()): Promise<void> {
  const className = classOfProfile(profile);
  const reports = await quotaReports(store, user, now, { className });
  for (const report of reports) {
    if (report.subject.kind === 'class' && report.subject.name !== className) continue;
    const exceeded = report.status.exceeded.filter((e) => binds(e, gpus));
    if (!exceeded.length) continue;
    // When the window limits left are clear again; a start held back by max_servers alone waits for a stop instead.
    const freesAt = exceeded.some((e) => e.metric !== 'max_servers') ? report.status.frees_at : null;
    const limits = exceeded.map((e) => describeExcess(e, report.limits.window_hours)).join('; ');
    const when = exceeded.some((e) => e.limit === 0) ? ' An admin must raise it.'
      : freesAt ? ` It frees up at ${freesAt.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC')}.` : ' Stop one of your servers first.';
    const headers = freesAt ? { 'Retry-After': String(Math.max(1, Math.ceil((Date.parse(freesAt) - now) / 1000))) } : undefined;
    throw new HttpError(429, `Quota reached: ${quotaName(report.subject)} allows ${limits}.${when}`, headers);
  }
}

/** The window limits a run has used up, with the quota's name: what the sweeper warns about and acts on. */
export function windowExcess(reports: readonly QuotaReport[], run: Pick<UsageRow, 'class_id' | 'gpu_request'>): string | null {
  for (const report of reports) {
    if (report.subject.kind === 'class' && report.subject.id !== run.class_id) continue;
    const windowed = report.status.exceeded.filter((e) => e.metric !== 'max_servers' && binds(e, run.gpu_request));
    if (windowed.length) return `${quotaName(report.subject)}: ${windowed.map((e) => describeExcess(e, report.limits.window_hours)).join('; ')}`;
  }
  return null;
}

type QuotaTarget = { subject: QuotaSubject; target: { kind: 'user' | 'group'; name: string; uid?: string } };

async function quotaTarget(store: Store, kind: 'users' | 'groups', raw: string): Promise<QuotaTarget> {
  if (kind === 'users') {
    const user = await store.users.byName(usernameFrom(raw));
    if (!user) throw new HttpError(404, `No such user: ${raw.slice(0, 64)}`);
    return { subject: { userId: user.id }, target: { kind: 'user', name: user.name, uid: user.uid } };
  }
  const group = await store.groups.byName(raw);
  if (!group) throw new HttpError(404, `No such group: ${raw.slice(0, 64)}`);
  return { subject: { groupId: group.id }, target: { kind: 'group', name: group.name } };
}

/** Sets (replaces) the quota of a user or class, with its audit record in the same transaction. */
export async function saveQuota(store: Store, by: AuditBy, kind: 'users' | 'groups', name: string, limits: QuotaLimits): Promise<QuotaView> {
  const { subject, target } = await quotaTarget(store, kind, name);
  return store.transaction(async (tx) => {
    const old = await tx.quotas.get(subject);
    await tx.quotas.set(subject, limits);
    await recordAudit(tx, { action: 'quota.set', ...by, target, details: { old: old ? { ...limitsOf(old) } : null, new: { ...limits } } });
    return (await tx.quotas.get(subject))!;
  });
}

/** Removes the quota of a user or class; 404 when there is none. */
export async function removeQuota(store: Store, by: AuditBy, kind: 'users' | 'groups', name: string): Promise<void> {
  const { subject, target } = await quotaTarget(store, kind, name);
  await store.transaction(async (tx) => {
    const old = await tx.quotas.get(subject);
    if (!old) throw new HttpError(404, `${target.kind === 'user' ? 'User' : 'Group'} ${target.name} has no quota`);
    await tx.quotas.delete(subject);
    await recordAudit(tx, { action: 'quota.delete', ...by, target, details: { old: { ...limitsOf(old) } } });
  });
}
