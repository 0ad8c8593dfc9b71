import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The hub's Prometheus metrics, on a registry of its own (no global state shared with the proxy in tests). */
export function createHubMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'labhub_' });
  return {
    registry,
    requestDuration: new Histogram({
      name: 'labhub_request_duration_seconds', help: 'Hub request duration by route kind and status',
      labelNames: ['method', 'kind', 'status'], buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry],
    }),
    spawnDuration: new Histogram({
      name: 'labhub_server_spawn_duration_seconds', help: 'Time from start request to ready or failure',
      labelNames: ['status'], buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers: [registry],
    }),
    spawnRefused: new Counter({
      name: 'labhub_server_spawn_refused_total', help: 'Starts refused by a limit', labelNames: ['reason'], registers: [registry],
    }),
    runningServers: new Gauge({ name: 'labhub_running_servers', help: 'Servers running', registers: [registry] }),
    users: new Gauge({ name: 'labhub_users', help: 'Users in the DB', registers: [registry] }),
    // Usage since the first run, per class ("" for runs without one): rates over them give a lab's consumption.
    usageServerSeconds: usageCounter(registry, 'labhub_usage_server_seconds_total', 'Server running time'),
    usageCpuReservedSeconds: usageCounter(registry, 'labhub_usage_cpu_reserved_seconds_total', 'CPU-seconds reserved by running servers'),
    usageMemoryReservedGibSeconds: usageCounter(registry, 'labhub_usage_memory_reserved_gib_seconds_total', 'GiB-seconds of memory reserved'),
    usageGpuSeconds: usageCounter(registry, 'labhub_usage_gpu_seconds_total', 'GPU-seconds reserved'),
    usageCpuUsedSeconds: usageCounter(registry, 'labhub_usage_cpu_used_seconds_total', 'CPU-seconds used, where measured'),
    usageMemoryUsedGibSeconds: usageCounter(registry, 'labhub_usage_memory_used_gib_seconds_total', 'GiB-seconds of memory in use, where measured'),
    homeStorageBytes: new Gauge({ name: 'labhub_home_storage_bytes', help: 'Bytes in users\' homes at their last measurement', registers: [registry] }),
    loginAttempts: new Counter({
      name: 'labhub_login_attempts_total', help: 'Logins by outcome', labelNames: ['outcome'], registers: [registry],
    }),
  };
}

export type HubMetrics = ReturnType<typeof createHubMetrics>;

/** A per-class counter recomputed from the usage table at each scrape (reset, then set to the total). */
function usageCounter(registry: Registry, name: string, help: string): Counter<'class'> {
  return new Counter({ name, help, labelNames: ['class'], registers: [registry] });
}
