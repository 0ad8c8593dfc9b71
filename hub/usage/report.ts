import type { Store } from '../db/index.js';
import type { GroupRow, UsageRow, UserRow } from '../db/schema.js';
import { limitsOf, quotaReports, windowExcess, type QuotaReport } from './quotas.js';
import { daily, emptyTotals, totals, type UsageTotals } from './summary.js';

const DAY = 86_400_000;

export interface UsagePeriod {
  days: number;
  now: number;
}

function window({ days, now }: UsagePeriod) {
  return { since: new Date(now - days * DAY).toISOString(), until: new Date(now + 1000).toISOString() };
}

function rounded(t: UsageTotals): UsageTotals {
  // Microhours (3.6 ms): short test runs and single seconds of a quota stay visible.
  const r = (n: number) => Math.round(n * 1e6) / 1e6;
  return {
    server_hours: r(t.server_hours), cpu_hours: r(t.cpu_hours), memory_gib_hours: r(t.memory_gib_hours), gpu_hours: r(t.gpu_hours),
    cpu_hours_used: t.cpu_hours_used === null ? null : r(t.cpu_hours_used),
    memory_gib_hours_used: t.memory_gib_hours_used === null ? null : r(t.memory_gib_hours_used),
  };
}

function groupBy<K>(rows: readonly UsageRow[], key: (r: UsageRow) => K): Map<K, UsageRow[]> {
  const out = new Map<K, UsageRow[]>();
  for (const r of rows) {
    const k = key(r);
    const list = out.get(k);
    if (list) list.push(r);
    else out.set(k, [r]);
  }
  return out;
}

function quotaModel(report: QuotaReport) {
  const { status } = report;
  return {
    subject: report.subject, limits: report.limits,
    used: rounded({ ...status.used, cpu_hours_used: null, memory_gib_hours_used: null }), running: status.running,
    exceeded: status.exceeded, frees_at: status.frees_at,
  };
}

/** One user's usage over the last `days` days: totals, per server and class, per day, what runs now, their quotas. */
export async function userUsage(store: Store, user: UserRow, period: UsagePeriod, graceSeconds: number) {
  const { since, until } = window(period);
  const start = Date.parse(since);
  const rows = await store.usage.inWindow({ since, until, userIds: [user.id] });
  const className = await store.groups.namesById(rows.flatMap((r) => (r.class_id === null ? [] : [r.class_id])));
  const reports = await quotaReports(store, user, period.now);
  const home = (await store.usage.homeSizes([user.id])).get(user.id) ?? null;
  return {
    user: user.name, days: period.days, since, until: new Date(period.now).toISOString(),
    totals: rounded(totals(rows, start, period.now, period.now)),
    by_server: [...groupBy(rows, (r) => r.server_name)].map(([server, runs]) => ({ server, totals: rounded(totals(runs, start, period.now, period.now)) })),
    by_class: [...groupBy(rows, (r) => r.class_id)].map(([id, runs]) => ({
      class: id === null ? null : className.get(id) ?? null, totals: rounded(totals(runs, start, period.now, period.now)),
    })),
    daily: daily(rows, Math.min(period.days, 366), period.now).map(({ date, ...t }) => ({ date, ...rounded(t) })),
    running: rows.filter((r) => r.stopped_at === null).map((r) => {
      const reached = r.quota_warned_at ? windowExcess(reports, r) : null;
      return {
        server: r.server_name, started_at: r.started_at, profile: r.profile, class: r.class_id === null ? null : className.get(r.class_id) ?? null,
        requested: { cpu: r.cpu_request, memory_bytes: r.mem_request, gpus: r.gpu_request },
        measured: r.sampled_at ? { cpu_seconds: r.cpu_seconds, memory_bytes: r.mem_bytes, memory_peak_bytes: r.mem_peak, at: r.sampled_at } : null,
        quota_warning: reached && r.quota_warned_at
          ? { quota: reached, stop_at: new Date(Date.parse(r.quota_warned_at) + graceSeconds * 1000).toISOString() } : null,
      };
    }),
    home_storage: home,
    quotas: reports.map(quotaModel),
  };
}

/**
 * Totals per user over the period, most server-hours first, for the users given (everyone who ran something when
 * `userIds` is undefined).
 */
export async function usersUsage(store: Store, period: UsagePeriod, userIds: number[] | undefined): Promise<Array<{ name: string; totals: UsageTotals; running: number }>> {
  const { since, until } = window(period);
  const start = Date.parse(since);
  const rows = await store.usage.inWindow({ since, until, ...(userIds && { userIds }) });
  const byUser = groupBy(rows, (r) => r.user_id);
  const names = await store.users.namesById([...byUser.keys()]);
  return [...byUser].flatMap(([userId, runs]) => {
    const name = names.get(userId);
    return name === undefined ? [] : [{ name, totals: rounded(totals(runs, start, period.now, period.now)), running: runs.filter((r) => r.stopped_at === null).length }];
  }).sort((a, b) => b.totals.server_hours - a.totals.server_hours || a.name.localeCompare(b.name));
}

/** A class's usage: what its members ran with its profiles, in all and per member, per day, and its quota. */
export async function classUsage(store: Store, group: GroupRow, period: UsagePeriod) {
  const { since, until } = window(period);
  const start = Date.parse(since);
  const rows = await store.usage.inWindow({ since, until, classIds: [group.id] });
  const members = (await store.groups.membersOf([group.id])).get(group.id) ?? [];
  const byUser = groupBy(rows, (r) => r.user_id);
  const names = await store.users.namesById([...byUser.keys()]);
  const perMember = new Map<string, UsageTotals>(members.map((m) => [m, emptyTotals()]));
  for (const [id, runs] of byUser) {
    const name = names.get(id);
    if (name) perMember.set(name, rounded(totals(runs, start, period.now, period.now)));
  }
  const quota = await store.quotas.get({ groupId: group.id });
  return {
    class: group.name, days: period.days, since, until: new Date(period.now).toISOString(),
    totals: rounded(totals(rows, start, period.now, period.now)),
    members: [...perMember].sort(([a], [b]) => a.localeCompare(b)).map(([name, t]) => ({ name, member: members.includes(name), totals: t })),
    daily: daily(rows, Math.min(period.days, 366), period.now).map(({ date, ...t }) => ({ date, ...rounded(t) })),
    quota: quota ? { limits: limitsOf(quota), per_member: true } : null,
  };
}

/** Every run ever, summed per class name ("" without one, or when the class is gone): what the Prometheus counters report. */
export async function usageSinceStart(store: Store, now: number): Promise<{ perClass: Map<string, UsageTotals>; homeBytes: number }> {
  const rows = await store.usage.totals();
  const names = await store.groups.namesById(rows.flatMap((r) => (r.class_id === null ? [] : [r.class_id])));
  const byClass = groupBy(rows, (r) => (r.class_id === null ? '' : names.get(r.class_id) ?? ''));
  const perClass = new Map([...byClass].map(([name, runs]) => [name, totals(runs, 0, now, now)] as const));
  const homeBytes = [...(await store.usage.homeSizes()).values()].reduce((sum, h) => sum + h.bytes, 0);
  return { perClass, homeBytes };
}
