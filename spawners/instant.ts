/**
 * InstantSpawner: a stand-in notebook server inside the hub's own process, for benchmarks and tests of the hub's
 * server lifecycle (spawn, readiness, routing, stop, reconcile) without the seconds a real Jupyter takes to start.
 *
 * Each "server" is a tiny HTTP server on a free loopback port. It answers `GET <prefix>api` (and anything below it)
 * with 200 `{"version": …}` and `X-JupyterHub-Version`, the way jupyterhub-singleuser answers the hub's readiness
 * check, and any other path under the prefix with 200 `{"server": "instant", "path": …}` so proxy tests see it.
 * The servers belong to this instance (not to the module): another InstantSpawner cannot poll or stop them, the way a
 * restarted hub could not find in-process servers of the old one.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PollResult, SpawnRequest, SpawnResult, Spawner, SpawnerState } from './spawner.js';

export interface InstantSpawnerOptions {
  /** Every start() fails with this message (tests of failure paths). */
  failWith?: string;
  /** Wait this long before starting (tests of pending spawns, timeouts and cancellation). */
  delayMs?: number;
  /** Version reported in `X-JupyterHub-Version`; default 5.5.1. */
  version?: string;
}

export interface InstantServer {
  user: string;
  serverName: string;
  prefix: string;
  /** The environment the hub prepared for this server (tests check it). */
  env: Record<string, string>;
  /** Requests the server answered. */
  requests: number;
}

interface Running extends InstantServer {
  http: Server;
}

export class InstantSpawner implements Spawner {
  readonly kind = 'instant';
  private readonly servers = new Map<number, Running>();

  constructor(private readonly options: InstantSpawnerOptions = {}) {}

  async start(request: SpawnRequest): Promise<SpawnResult> {
    const { signal } = request;
    signal.throwIfAborted();
    if (this.options.delayMs) {
      request.progress({ progress: 10, message: `Waiting ${this.options.delayMs} ms` });
      await sleep(this.options.delayMs, undefined, { signal }).catch((err: unknown) => {
        signal.throwIfAborted(); // the caller's reason, not a generic AbortError
        throw err;
      });
    }
    if (this.options.failWith !== undefined) throw new Error(this.options.failWith);

    const version = this.options.version ?? '5.5.1';
    const body = JSON.stringify({ version: 'instant' });
    const prefix = request.prefix;
    const entry: Running = {
      user: request.user.name,
      serverName: request.serverName,
      prefix,
      env: { ...request.env },
      requests: 0,
      http: createServer((req: IncomingMessage, res: ServerResponse) => {
        entry.requests++;
        const url = (req.url ?? '/').split('?')[0]!;
        res.setHeader('X-JupyterHub-Version', version);
        res.setHeader('Content-Type', 'application/json');
        if (req.method === 'GET' && (url === `${prefix}api` || url.startsWith(`${prefix}api/`))) {
          res.end(body);
        } else if (url.startsWith(prefix)) {
          res.end(JSON.stringify({ server: 'instant', path: url }));
        } else {
          res.statusCode = 404;
          res.end(JSON.stringify({ message: 'Not found' }));
        }
      }),
    };
    entry.http.keepAliveTimeout = 1000;
    const port = await new Promise<number>((resolve, reject) => {
      entry.http.once('error', reject);
      entry.http.listen(0, '127.0.0.1', () => resolve((entry.http.address() as AddressInfo).port));
    });
    // In-process servers must not keep a finished test or benchmark alive.
    entry.http.unref();
    this.servers.set(port, entry);
    const state = { port };
    try {
      await request.saveState(state);
      signal.throwIfAborted();
    } catch (err) {
      await this.stop(state);
      throw err;
    }
    request.progress({ progress: 50, message: `Instant server on port ${port}` });
    return { url: `http://127.0.0.1:${port}`, state };
  }

  async poll(state: SpawnerState): Promise<PollResult> {
    const port = portOf(state);
    return port !== null && this.servers.has(port) ? { running: true } : { running: false, exitCode: null };
  }

  async stop(state: SpawnerState): Promise<void> {
    const port = portOf(state);
    const entry = port === null ? undefined : this.servers.get(port);
    if (!entry || port === null) return;
    this.servers.delete(port);
    await new Promise<void>((resolve) => {
      entry.http.close(() => resolve());
      entry.http.closeAllConnections();
    });
  }

  /** What the server on this port was started with, for tests; undefined if none runs there. */
  server(state: SpawnerState): InstantServer | undefined {
    const port = portOf(state);
    const entry = port === null ? undefined : this.servers.get(port);
    if (!entry) return undefined;
    const { http: _http, ...info } = entry;
    return info;
  }

  get running(): number {
    return this.servers.size;
  }

  /** Stops every server (end of a test or benchmark); close() leaves them running like a real spawner would. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((port) => this.stop({ port })));
  }
}

function portOf(state: SpawnerState | null | undefined): number | null {
  const port = state && typeof state === 'object' ? (state as Record<string, unknown>).port : undefined;
  return typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536 ? port : null;
}
