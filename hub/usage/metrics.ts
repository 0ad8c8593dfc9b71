import type { HubContext } from '../context.js';
import { usageSinceStart } from './report.js';

/** Sets the usage counters from the usage table (hours there, seconds in Prometheus). */
export async function refreshUsageMetrics(ctx: Pick<HubContext, 'store' | 'metrics'>): Promise<void> {
  const { perClass, homeBytes } = await usageSinceStart(ctx.store, Date.now());
  const m = ctx.metrics;
  const counters = [
    [m.usageServerSeconds, 'server_hours'], [m.usageCpuReservedSeconds, 'cpu_hours'], [m.usageMemoryReservedGibSeconds, 'memory_gib_hours'],
    [m.usageGpuSeconds, 'gpu_hours'], [m.usageCpuUsedSeconds, 'cpu_hours_used'], [m.usageMemoryUsedGibSeconds, 'memory_gib_hours_used'],
  ] as const;
  for (const [counter, key] of counters) {
    counter.reset();
    for (const [name, totals] of perClass) {
      const hours = totals[key];
      if (hours !== null) counter.inc({ class: name }, hours * 3600);
    }
  }
  m.homeStorageBytes.set(homeBytes);
}
