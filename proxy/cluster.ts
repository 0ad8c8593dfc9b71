/**
 * The proxy on several cores: a primary process holds the routing table and serves the API; N worker processes
 * (node:cluster) accept on the public port and forward. Every route change is sent to every worker, and the API
 * answers only once all of them have acknowledged it, so after a `201` no worker routes by the old table.
 * `last_activity` lives where traffic is seen, in the workers; the primary collects it before any read of the
 * routes. A worker that dies is replaced and gets the whole table before it accepts connections.
 *
 * Workers accept directly (SCHED_NONE, the kernel spreads connections): with the default round-robin the primary
 * would accept every connection itself and hand it over, and become the bottleneck.
 */
import cluster, { type Worker } from 'node:cluster';
import type http from 'node:http';
import type https from 'node:https';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry, Registry, collectDefaultMetrics } from 'prom-client';
import { createLogger, type Logger } from '../hub/log.js';
import { createApiServer, type RouteChange } from './api.js';
import { ProxyMetrics, routesGauge } from './metrics.js';
import { RouteTable, type RouteData } from './routes.js';
import { createProxyServer, type ProxyServerOptions, type TargetTlsOptions, type TlsOptions } from './server.js';

/** Serializable settings a worker needs (TLS as PEM text). */
export interface WorkerSettings extends Omit<ProxyServerOptions, 'routes' | 'metrics' | 'log' | 'tls' | 'targetTls'> {
  ip: string;
  port: number;
  tls?: TlsOptions<string>;
  targetTls?: TargetTlsOptions<string>;
  logLevel: string;
  processMetrics: boolean;
}

type ToWorker =
  | { type: 'load'; routes: [string, RouteData, number][] }
  | { type: 'changes'; seq: number; changes: RouteChange[] }
  | { type: 'activity'; seq: number }
  | { type: 'close' };

type FromWorker =
  | { type: 'hello' }
  | { type: 'listening'; port: number }
  | { type: 'ack'; seq: number }
  | { type: 'activity'; seq: number; touched: [string, number][] };

const SETTINGS_ENV = 'LABHUB_PROXY_WORKER_SETTINGS';
const WORKER_ENTRY = fileURLToPath(new URL('./main.js', import.meta.url));
/** A worker that has not acknowledged a change by then is considered hung, and replaced. */
const ACK_TIMEOUT_MS = 10_000;
const WORKER_CLOSE_GRACE_MS = 5_000;

export function isProxyWorker(): boolean {
  return cluster.isWorker && process.env[SETTINGS_ENV] !== undefined;
}

export interface ClusterOptions {
  workers: number;
  settings: WorkerSettings;
  apiIp: string;
  apiPort: number;
  authToken?: string;
  apiTls?: TlsOptions;
  log: Logger;
}

export interface RunningCluster {
  routes: RouteTable;
  apiServer: http.Server | https.Server;
  publicUrl: string;
  apiUrl: string;
  /** Process ids of the live workers. */
  workerPids(): number[];
  close(): Promise<void>;
}

interface Pending {
  waiting: Set<Worker>;
  resolve: () => void;
  timer: NodeJS.Timeout;
}

/** Runs in the primary: forks the workers, waits until all listen, then serves the API. */
export async function startCluster(options: ClusterOptions, listen: (server: net.Server, port: number, host: string) => Promise<void>, urlOf: (server: net.Server, scheme: string) => string): Promise<RunningCluster> {
  const { log, settings } = options;
  const routes = new RouteTable();
  if (settings.defaultTarget) routes.add('/', { target: settings.defaultTarget });
  const ready = new Set<Worker>();
  /** Workers that were sent the table: every later change must reach them, listening yet or not. */
  const loaded = new Set<Worker>();
  const pending = new Map<number, Pending>();
  const activityReplies = new Map<number, { waiting: Set<Worker>; resolve: () => void }>();
  let seq = 0;
  let closing = false;
  /** Workers are replaced only once all have started: a worker that cannot listen at all must not loop. */
  let started = false;
  let publicPort = settings.port;

  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // Whatever started the primary (`labhub proxy`, dist/proxy/main.js), workers run the proxy's own entry point.
  cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], serialization: 'advanced' });

  const settle = (worker: Worker) => {
    for (const [id, p] of pending) {
      p.waiting.delete(worker);
      if (p.waiting.size === 0) {
        clearTimeout(p.timer);
        pending.delete(id);
        p.resolve();
      }
    }
    for (const [id, a] of activityReplies) {
      a.waiting.delete(worker);
      if (a.waiting.size === 0) {
        activityReplies.delete(id);
        a.resolve();
      }
    }
  };

  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      // Every worker asks for the configured port, even 0: the primary shares one listening handle per requested
      // address, so all workers (replacements too) end up on the port the first one got.
      const worker = cluster.fork({ [SETTINGS_ENV]: JSON.stringify(settings) });
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'hello') {
          loaded.add(worker);
          worker.send({ type: 'load', routes: [...routes.values()].map((r) => [r.path, r.data as RouteData, r.lastActivityMs]) } satisfies ToWorker);
        } else if (message.type === 'listening') {
          publicPort = message.port;
          ready.add(worker);
          resolve();
        } else if (message.type === 'ack') {
          const p = pending.get(message.seq);
          if (p && p.waiting.delete(worker) && p.waiting.size === 0) {
            clearTimeout(p.timer);
            pending.delete(message.seq);
            p.resolve();
          }
        } else if (message.type === 'activity') {
          for (const [path, ms] of message.touched) {
            const route = routes.get(path);
            if (route && ms > route.lastActivityMs) route.lastActivityMs = ms;
          }
          const a = activityReplies.get(message.seq);
          if (a && a.waiting.delete(worker) && a.waiting.size === 0) {
            activityReplies.delete(message.seq);
            a.resolve();
          }
        }
      });
      worker.once('exit', (code, signal) => {
        const wasReady = ready.delete(worker);
        loaded.delete(worker);
        settle(worker);
        if (!wasReady) reject(new Error(`proxy worker exited before listening (code ${code}, signal ${signal})`));
        if (closing || !started) return;
        log.error({ pid: worker.process.pid, code, signal }, 'proxy worker died; starting a new one');
        fork().catch((err: unknown) => log.error({ err: (err as Error).message }, 'could not replace a proxy worker'));
      });
    });

  /**
   * Changes made in one turn of the event loop (the API serves many requests at once when a hub re-syncs) go to the
   * workers as one message and one acknowledgement each; every change's promise resolves when its batch is applied.
   */
  let batch: { changes: RouteChange[]; resolvers: (() => void)[] } | undefined;
  const flush = () => {
    const { changes, resolvers } = batch!;
    batch = undefined;
    const resolve = () => {
      for (const r of resolvers) r();
    };
    const id = ++seq;
    const waiting = new Set(loaded);
    if (waiting.size === 0) return resolve();
    const timer = setTimeout(() => {
      pending.delete(id);
      for (const worker of waiting) {
        log.error({ pid: worker.process.pid }, 'proxy worker did not apply a route change in time; replacing it');
        worker.process.kill('SIGKILL');
      }
      resolve();
    }, ACK_TIMEOUT_MS);
    pending.set(id, { waiting, resolve, timer });
    for (const worker of waiting) worker.send({ type: 'changes', seq: id, changes } satisfies ToWorker);
  };
  const broadcast = (change: RouteChange): Promise<void> => {
    if (loaded.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      if (!batch) {
        batch = { changes: [], resolvers: [] };
        setImmediate(flush);
      }
      batch.changes.push(change);
      batch.resolvers.push(resolve);
    });
  };

  const collectActivity = (): Promise<void> => {
    const id = ++seq;
    const waiting = new Set(loaded);
    if (waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      activityReplies.set(id, { waiting, resolve });
      for (const worker of waiting) worker.send({ type: 'activity', seq: id } satisfies ToWorker);
    });
  };

  // Worker metrics are summed by the aggregator; the primary adds what only it knows (routes, its own process).
  const aggregator = new AggregatorRegistry();
  const primaryRegistry = new Registry();
  routesGauge(routes, [primaryRegistry]);
  if (settings.processMetrics) collectDefaultMetrics({ register: primaryRegistry, prefix: 'labhub_proxy_primary_' });
  const metricsText = async () => `${await aggregator.clusterMetrics()}\n${await primaryRegistry.metrics()}`;

  const apiServer = createApiServer({
    routes,
    metrics: new ProxyMetrics({ routes }),
    authToken: options.authToken,
    log,
    tls: options.apiTls,
    onChange: broadcast,
    beforeRead: collectActivity,
    metricsText,
  });

  const stopWorkers = async () => {
    closing = true;
    await Promise.all(
      Object.values(cluster.workers ?? {}).map((worker) => {
        if (!worker || worker.isDead()) return undefined;
        const exited = new Promise((r) => worker.once('exit', r));
        worker.send({ type: 'close' } satisfies ToWorker);
        // A worker that has not exited after its own grace period is killed: stopping must always finish.
        const kill = setTimeout(() => worker.process.kill('SIGKILL'), WORKER_CLOSE_GRACE_MS + 2000);
        return exited.finally(() => clearTimeout(kill));
      }),
    );
  };

  // The API first: once the public port answers, so does the API (changes made before a worker is up reach it in
  // the table it loads).
  await listen(apiServer, options.apiPort, options.apiIp);
  try {
    await fork();
    await Promise.all(Array.from({ length: options.workers - 1 }, fork));
    started = true;
  } catch (err) {
    await Promise.all([stopWorkers(), new Promise((r) => apiServer.close(r))]);
    throw err;
  }
  const scheme = settings.tls ? 'https' : 'http';
  const host = settings.ip === '' || settings.ip === '0.0.0.0' ? '127.0.0.1' : settings.ip === '::' ? '[::1]' : settings.ip.includes(':') ? `[${settings.ip}]` : settings.ip;
  return {
    routes,
    apiServer,
    publicUrl: `${scheme}://${host}:${publicPort}`,
    apiUrl: urlOf(apiServer, options.apiTls ? 'https' : 'http'),
    workerPids: () => [...ready].map((w) => w.process.pid!).filter(Boolean),
    async close() {
      await Promise.all([stopWorkers(), new Promise((r) => apiServer.close(r))]);
    },
  };
}

/** Runs in a worker: builds its replica of the table from the primary, listens, applies changes, reports activity. */
export function runProxyWorker(): void {
  const settings = JSON.parse(process.env[SETTINGS_ENV]!) as WorkerSettings;
  const log = createLogger('labhub-proxy', { level: settings.logLevel });
  const routes = new RouteTable();
  const metrics = new ProxyMetrics({ routes, processMetrics: settings.processMetrics, countRoutes: false });
  AggregatorRegistry.setRegistries([metrics.registry]);
  // Constructing one installs prom-client's listener that answers the primary's metrics requests.
  new AggregatorRegistry();
  const { ip, port, logLevel: _level, processMetrics: _pm, defaultTarget: _dt, ...serverOptions } = settings;
  const proxy = createProxyServer({ ...serverOptions, routes, metrics, log });
  let lastReportMs = 0;
  const send = (message: FromWorker) => process.send!(message);

  process.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'load':
        lastReportMs = Date.now();
        for (const [path, data, lastActivityMs] of message.routes) routes.add(path, data).lastActivityMs = lastActivityMs;
        proxy.server.once('error', (err) => {
          log.error({ err: err.message }, 'proxy worker could not listen');
          process.exit(1);
        });
        proxy.server.listen(port, ip || undefined, () => send({ type: 'listening', port: (proxy.server.address() as net.AddressInfo).port }));
        break;
      case 'changes':
        for (const change of message.changes) {
          if (change.op === 'add') routes.add(change.path, change.data);
          else routes.remove(change.path);
        }
        send({ type: 'ack', seq: message.seq });
        break;
      case 'activity': {
        // Only routes with traffic since the last report: lastActivityMs is a wall-clock time, so one timestamp will do.
        const since = lastReportMs;
        lastReportMs = Date.now();
        const touched: [string, number][] = [];
        for (const route of routes.values()) if (route.lastActivityMs >= since) touched.push([route.path, route.lastActivityMs]);
        send({ type: 'activity', seq: message.seq, touched });
        break;
      }
      case 'close':
        // Bounded: requests in flight get the grace period, and nothing may keep a stopping worker alive past it.
        setTimeout(() => process.exit(0), WORKER_CLOSE_GRACE_MS + 1000).unref();
        void proxy.close(WORKER_CLOSE_GRACE_MS).finally(() => process.exit(0));
        break;
    }
  });
  // Signals go to the whole process group on Ctrl-C; the primary decides when workers stop.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  // A primary that is gone (even SIGKILLed) closes the IPC channel: no worker outlives it.
  process.on('disconnect', () => void proxy.close(1000).finally(() => process.exit(0)));
  send({ type: 'hello' });
}
