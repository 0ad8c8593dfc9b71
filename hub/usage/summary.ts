import type { UsageRow } from '../db/schema.js';
import type { QuotaLimits } from '../db/usage.js';

const HOUR = 3_600_000;
const GIB = 2 ** 30;

/** Sums over a window. Reserved amounts are what the spawner set aside; `used` ones are measured, null if never. */
export interface UsageTotals {
  server_hours: number;
  cpu_hours: number;
  memory_gib_hours: number;
  gpu_hours: number;
  cpu_hours_used: number | null;
  memory_gib_hours_used: number | null;
}

export const QUOTA_METRICS = ['server_hours', 'cpu_hours', 'memory_gib_hours', 'gpu_hours'] as const;
export type QuotaMetric = (typeof QUOTA_METRICS)[number];

const METRIC_WORDS: Record<QuotaMetric, string> = {
  server_hours: 'server-hours', cpu_hours: 'CPU-hours', memory_gib_hours: 'GiB-hours of memory', gpu_hours: 'GPU-hours',
};

export function emptyTotals(): UsageTotals {
  return { server_hours: 0, cpu_hours: 0, memory_gib_hours: 0, gpu_hours: 0, cpu_hours_used: null, memory_gib_hours_used: null };
}

/** End of a run for accounting: when it stopped, else now (it is still running). */
function endOf(row: UsageRow, now: number): number {
  return row.stopped_at ? Date.parse(row.stopped_at) : now;
}

function overlapMs(row: UsageRow, since: number, until: number, now: number): number {
  return Math.max(0, Math.min(endOf(row, now), until) - Math.max(Date.parse(row.started_at), since));
}

/** Adds one run's share of [since, until) to `into`. Measured amounts are spread evenly over the measured span. */
function addRun(into: UsageTotals, row: UsageRow, since: number, until: number, now: number): void {
  const ms = overlapMs(row, since, until, now);
  if (ms <= 0) return;
  const hours = ms / HOUR;
  into.server_hours += hours;
  into.cpu_hours += (row.cpu_request ?? 0) * hours;
  into.memory_gib_hours += ((row.mem_request ?? 0) / GIB) * hours;
  into.gpu_hours += row.gpu_request * hours;
  if (row.sampled_at === null) return;
  const start = Date.parse(row.started_at);
  const measuredMs = Date.parse(row.sampled_at) - start;
  if (measuredMs <= 0) return;
  const share = Math.max(0, Math.min(Date.parse(row.sampled_at), until) - Math.max(start, since)) / measuredMs;
  if (row.cpu_seconds !== null) into.cpu_hours_used = (into.cpu_hours_used ?? 0) + (row.cpu_seconds / 3600) * share;
  into.memory_gib_hours_used = (into.memory_gib_hours_used ?? 0) + (row.mem_byte_seconds / GIB / 3600) * share;
}

export function totals(rows: readonly UsageRow[], since: number, until: number, now: number): UsageTotals {
  const out = emptyTotals();
  for (const row of rows) addRun(out, row, since, until, now);
  return out;
}

/** Totals per UTC day, oldest first, for the `days` days that end with today: what the usage plot draws. */
export function daily(rows: readonly UsageRow[], days: number, now: number): Array<{ date: string } & UsageTotals> {
  const today = Math.floor(now / 86_400_000) * 86_400_000;
  const out: Array<{ date: string } & UsageTotals> = [];
  for (let i = days - 1; i >= 0; i -= 1) {
    const start = today - i * 86_400_000;
    out.push({ date: new Date(start).toISOString().slice(0, 10), ...totals(rows, start, start + 86_400_000, now) });
  }
  return out;
}

export interface QuotaExcess {
  metric: QuotaMetric | 'max_servers';
  limit: number;
  used: number;
}

export interface QuotaStatus {
  used: Record<QuotaMetric, number>;
  running: number;
  /** Limits reached (used ≥ limit); empty when within the quota. */
  exceeded: QuotaExcess[];
  /** When the window quotas reached are back under their limits if nothing runs from now on; null when none is. */
  frees_at: string | null;
}

/**
 * Where a user stands against one quota: `rows` are the runs the quota counts (all of the user's for a user quota,
 * those of the class's profiles for a class quota), `running` the servers it counts, including one about to start.
 */
export function quotaStatus(limits: QuotaLimits, rows: readonly UsageRow[], running: number, now: number): QuotaStatus {
  const windowMs = limits.window_hours * HOUR;
  const usedAt = (t: number) => totals(rows, t - windowMs, t, now);
  const current = usedAt(now);
  const exceeded: QuotaExcess[] = [];
  for (const metric of QUOTA_METRICS) {
    const limit = limits[metric];
    if (limit !== null && current[metric] >= limit) exceeded.push({ metric, limit, used: current[metric] });
  }
  let freesAt: string | null = null;
  // A limit of 0 never frees up.
  if (exceeded.length && exceeded.every((e) => e.limit > 0)) {
    // Past runs only leave the window as time goes on (nothing runs after now in this reckoning), so the usage
    // falls monotonically and a binary search to the second finds when every reached limit is clear again.
    const stopped = rows.map((r) => (r.stopped_at ? r : { ...r, stopped_at: new Date(now).toISOString() }));
    const clear = (t: number) => {
      const u = totals(stopped, t - windowMs, t, now);
      return exceeded.every((e) => u[e.metric as QuotaMetric] < e.limit);
    };
    let lo = now;
    let hi = now + windowMs;
    while (hi - lo > 1000) {
      const mid = Math.floor((lo + hi) / 2);
      if (clear(mid)) hi = mid;
      else lo = mid;
    }
    freesAt = new Date(Math.ceil(hi / 1000) * 1000).toISOString();
  }
  if (limits.max_servers !== null && running > limits.max_servers) exceeded.push({ metric: 'max_servers', limit: limits.max_servers, used: running });
  const used = { server_hours: current.server_hours, cpu_hours: current.cpu_hours, memory_gib_hours: current.memory_gib_hours, gpu_hours: current.gpu_hours };
  return { used, running, exceeded, frees_at: freesAt };
}

/** "server-hours: 20 per 168 h, 20.3 used" — how a refusal or a warning names a limit. */
export function describeExcess(e: QuotaExcess, windowHours: number): string {
  if (e.metric === 'max_servers') return `at most ${e.limit} server${e.limit === 1 ? '' : 's'} at once (${e.used} running)`;
  return `${round(e.limit)} ${METRIC_WORDS[e.metric]} per ${describeWindow(windowHours)} (${round(e.used)} used)`;
}

export function describeWindow(hours: number): string {
  if (hours % 24 === 0) return hours === 24 ? 'day' : `${hours / 24} days`;
  return hours === 1 ? 'hour' : `${round(hours)} hours`;
}

/** Two decimals, or two significant digits below 0.01: a tiny limit must not read as 0. */
function round(n: number): string {
  return String(n === 0 || Math.abs(n) >= 0.01 ? Math.round(n * 100) / 100 : Number(n.toPrecision(2)));
}
