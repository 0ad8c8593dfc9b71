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
    loginAttempts: new Counter({
      name: 'labhub_login_attempts_total', help: 'Logins by outcome', labelNames: ['outcome'], registers: [registry],
    }),
  };
}

export type HubMetrics = ReturnType<typeof createHubMetrics>;
