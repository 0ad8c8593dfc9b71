import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RouteTable } from './routes.js';

/**
 * Upstream error codes worth telling apart (the system's, and undici's for a target that closed the connection or
 * timed out); anything else is counted as `other`, to bound label cardinality.
 */
const KNOWN_ERROR_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT',
]);

export interface ProxyMetricsOptions {
  routes: RouteTable;
  /** Node process metrics (CPU, memory, event loop lag); on for the standalone proxy, off in tests. */
  processMetrics?: boolean;
  /**
   * Export the size of `routes` (default true). Workers of a multi-worker proxy leave it to the primary, since
   * their metrics are summed.
   */
  countRoutes?: boolean;
}

/** Prometheus metrics of one proxy, on a registry of its own so several proxies can live in one process. */
export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly responses: Counter<'status'>;
  /** Label children cached by status code: `labels()` hashes its argument on every call. */
  private readonly responsesByStatus = new Map<number, Counter.Internal>();
  private readonly upstreamErrors: Counter<'code'>;
  private readonly latency: Histogram;
  private readonly websockets: Gauge;

  constructor({ routes, processMetrics = false, countRoutes = true }: ProxyMetricsOptions) {
    const registers = [this.registry];
    if (processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'labhub_proxy_' });
    this.responses = new Counter({
      name: 'labhub_proxy_requests_total',
      help: 'Proxied requests by response status, including answers of the proxy itself (404, 503) and websocket upgrades (101)',
      labelNames: ['status'],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'labhub_proxy_upstream_errors_total',
      help: 'Requests that failed to reach their target, by error code',
      labelNames: ['code'],
      registers,
    });
    this.latency = new Histogram({
      name: 'labhub_proxy_response_latency_seconds',
      help: 'Time from a request arriving to its target answering with response headers',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.websockets = new Gauge({ name: 'labhub_proxy_open_websockets', help: 'Websockets open through the proxy', registers });
    if (countRoutes) routesGauge(routes, registers);
  }

  countResponse(status: number): void {
    let child = this.responsesByStatus.get(status);
    if (!child) {
      child = this.responses.labels(String(status));
      this.responsesByStatus.set(status, child);
    }
    child.inc();
  }

  observeLatency(seconds: number): void {
    this.latency.observe(seconds);
  }

  countUpstreamError(code: string | undefined): void {
    this.upstreamErrors.labels(code && KNOWN_ERROR_CODES.has(code) ? code : 'other').inc();
  }

  websocketOpened(): void {
    this.websockets.inc();
  }

  websocketClosed(): void {
    this.websockets.dec();
  }
}

/** The routing table's size, read when scraped. */
export function routesGauge(routes: RouteTable, registers: Registry[]): void {
  new Gauge({
    name: 'labhub_proxy_routes',
    help: 'Routes in the routing table',
    registers,
    collect() {
      this.set(routes.size);
    },
  });
}
