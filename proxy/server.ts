import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyServer } from 'http-proxy-3';
import { createLogger, type Logger } from '../hub/log.js';
import { ProxyMetrics } from './metrics.js';
import { RouteTable, type Route, type UnroutableReason } from './routes.js';

const HEALTH_PATH = '/_chp_healthz';

export interface TlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
}

export interface ProxyServerOptions {
  /** Shared with the API server; a new empty table when omitted. */
  routes?: RouteTable;
  /** Shared with the API server's `/metrics`; created on `routes` when omitted. */
  metrics?: ProxyMetrics;
  log?: Logger;
  /** Added as the root route `/`, as CHP does, so it shows in `GET /api/routes`. */
  defaultTarget?: string;
  /** Error pages come from `GET <errorTarget>/<code>?url=<request url>` (JupyterHub: `<hub>/hub/error`). */
  errorTarget?: string;
  /** Serve HTTPS instead of HTTP. */
  tls?: TlsOptions;
  /** Add X-Forwarded-For/-Port/-Proto/-Host; default true. */
  xfwd?: boolean;
  /** Prefix the target's own path to the forwarded path; default true. */
  prependPath?: boolean;
  /** Forward the matched route prefix as part of the path; default true. */
  includePrefix?: boolean;
  /** Idle timeout of incoming requests (CHP `--timeout`); off by default. */
  timeoutMs?: number;
  /** How long to wait for a target's response headers (CHP `--proxy-timeout`); off by default. */
  proxyTimeoutMs?: number;
  /** How long to wait for a TCP connection to a target before answering 503. */
  connectTimeoutMs?: number;
  /** Idle keep-alive time of client connections (CHP `--keep-alive-timeout`). */
  keepAliveTimeoutMs?: number;
}

export interface ProxyServerHandle {
  server: http.Server | https.Server;
  routes: RouteTable;
  metrics: ProxyMetrics;
  readonly openWebsockets: number;
  /**
   * Stops accepting connections, closes websockets and idle connections at once, gives requests in flight
   * `graceMs` to finish, then cuts what is left.
   */
  close(graceMs?: number): Promise<void>;
}

/** Per-request state the proxy needs in its event handlers, as fields (no side maps, one hidden class). */
class ProxiedRequest extends http.IncomingMessage {
  route: Route | undefined = undefined;
  startedAt = 0;
  upgraded = false;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** The error target is the hub; a hub that does not answer must not hold the error page back for long. */
const ERROR_PAGE_TIMEOUT_MS = 5_000;
const DEFAULT_CLOSE_GRACE_MS = 5_000;

export function createProxyServer(options: ProxyServerOptions = {}): ProxyServerHandle {
  const routes = options.routes ?? new RouteTable();
  const metrics = options.metrics ?? new ProxyMetrics({ routes });
  const log = options.log ?? createLogger('labhub-proxy');
  const includePrefix = options.includePrefix ?? true;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const errorPages = new ErrorPages(options.errorTarget, log);
  const websockets = new Set<Duplex>();
  const httpAgent = new TimedHttpAgent(connectTimeoutMs, { keepAlive: true });
  const httpsAgent = new TimedHttpsAgent(connectTimeoutMs, { keepAlive: true });

  if (options.defaultTarget) routes.add('/', { target: options.defaultTarget });

  const proxy = new ProxyServer<typeof ProxiedRequest>({
    xfwd: options.xfwd ?? true,
    prependPath: options.prependPath ?? true,
    timeout: options.timeoutMs,
    proxyTimeout: options.proxyTimeoutMs,
  });

  const forwardOptions = (route: Route) => ({
    target: route.target,
    agent: route.target.protocol === 'https:' ? httpsAgent : httpAgent,
  });

  const onUpstreamError = (err: Error, req: ProxiedRequest, res: http.ServerResponse | net.Socket): void => {
    const code = (err as NodeJS.ErrnoException).code;
    metrics.countUpstreamError(code);
    if (req.upgraded) {
      log.debug({ path: loggablePath(req.url), err: err.message }, 'websocket closed by an upstream error');
      return;
    }
    if (res instanceof http.ServerResponse && res.headersSent) {
      log.warn({ path: loggablePath(req.url), code, err: err.message }, 'target failed mid-response');
      res.destroy();
      return;
    }
    log.warn({ path: loggablePath(req.url), target: req.route?.target.origin, code, err: err.message }, 'target unreachable');
    metrics.countResponse(503);
    if (res instanceof http.ServerResponse) {
      void errorPages.reply(req, res, 503);
    } else if (res.writable) {
      // http-proxy-3 ends the socket after this callback returns.
      res.write(rawResponse(503));
    }
  };

  const replyUnroutable = (req: ProxiedRequest, res: http.ServerResponse, reason: UnroutableReason): void => {
    const status = reason === 'no-route' ? 404 : 400;
    log.debug({ path: loggablePath(req.url), status }, 'request not routed');
    metrics.countResponse(status);
    void errorPages.reply(req, res, status);
  };

  const onRequest = (req: ProxiedRequest, res: http.ServerResponse): void => {
    const url = req.url ?? '/';
    if (url === HEALTH_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"OK"}');
      return;
    }
    const found = routes.match(url);
    if (typeof found === 'string') {
      replyUnroutable(req, res, found);
      return;
    }
    req.route = found.route;
    req.startedAt = performance.now();
    if (!includePrefix) req.url = url.slice(found.prefixEnd);
    try {
      proxy.web(req, res, forwardOptions(found.route), onUpstreamError);
    } catch (err) {
      replyInternalError(req, res, err);
      return;
    }
    // Registered after proxy.web has piped the body, so no chunk is consumed before the pipe sees it.
    req.on('data', found.route.touch);
  };

  /** http-proxy-3 builds the upstream request synchronously; a throw there must not take the process down. */
  const replyInternalError = (req: ProxiedRequest, res: http.ServerResponse | Duplex, err: unknown): void => {
    log.error({ path: loggablePath(req.url), err: (err as Error).message }, 'could not forward request');
    metrics.countResponse(500);
    if (res instanceof http.ServerResponse) void errorPages.reply(req, res, 500);
    else res.end(rawResponse(500));
  };

  const onUpgrade = (req: ProxiedRequest, socket: Duplex, head: Buffer): void => {
    const url = req.url ?? '/';
    const found = routes.match(url);
    if (typeof found === 'string') {
      const status = found === 'no-route' ? 404 : 400;
      log.debug({ path: loggablePath(req.url), status }, 'websocket not routed');
      metrics.countResponse(status);
      socket.on('error', () => socket.destroy());
      socket.end(rawResponse(status));
      return;
    }
    req.route = found.route;
    if (!includePrefix) req.url = url.slice(found.prefixEnd);
    try {
      proxy.ws(req, socket, head, forwardOptions(found.route), onUpstreamError);
    } catch (err) {
      replyInternalError(req, socket, err);
    }
  };

  proxy.on('proxyRes', (proxyRes, req, res) => {
    const status = proxyRes.statusCode ?? 0;
    metrics.countResponse(status);
    metrics.observeLatency((performance.now() - req.startedAt) / 1000);
    // A target that dies mid-body leaves the piped response open; end it so the client sees the failure.
    proxyRes.once('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
    // Like CHP, only successful answers count as activity: error floods must not keep an idle server alive.
    const route = req.route;
    if (route && status < 300) {
      route.touch();
      proxyRes.on('data', route.touch);
    }
  });

  proxy.on('proxyReqWs', (proxyReq, req, socket) => {
    const route = req.route!;
    // Runs before http-proxy-3's own upgrade listener, which pipes the sockets in the same tick.
    proxyReq.once('upgrade', (_res: http.IncomingMessage, upstream: net.Socket) => {
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      req.upgraded = true;
      metrics.countResponse(101);
      route.touch();
      socket.on('data', route.touch);
      upstream.on('data', route.touch);
      websockets.add(socket);
      metrics.websocketOpened();
      socket.once('close', () => {
        websockets.delete(socket);
        metrics.websocketClosed();
      });
    });
  });

  // Client socket errors of websockets land here; the request is already lost, nothing to answer.
  proxy.on('error', (err, req, res) => {
    log.debug({ path: loggablePath(req.url), err: err.message }, 'client connection error');
    res.destroy();
  });

  const serverOptions: http.ServerOptions<typeof ProxiedRequest> = { IncomingMessage: ProxiedRequest };
  const server = options.tls
    ? https.createServer({ ...serverOptions, key: options.tls.key, cert: options.tls.cert }, onRequest)
    : http.createServer(serverOptions, onRequest);
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  server.on('upgrade', onUpgrade);

  return {
    server,
    routes,
    metrics,
    get openWebsockets() {
      return websockets.size;
    },
    async close(graceMs = DEFAULT_CLOSE_GRACE_MS) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      for (const socket of websockets) socket.destroy();
      const cutoff = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(cutoff);
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** Sockets to targets give up connecting after a deadline: a vanished host must not hold a client for minutes. */
function armConnectTimeout(socket: Duplex | null | undefined, timeoutMs: number): void {
  if (!(socket instanceof net.Socket) || !socket.connecting) return;
  const timer = setTimeout(() => {
    const err: NodeJS.ErrnoException = new Error(`connecting to the target timed out after ${timeoutMs} ms`);
    err.code = 'ETIMEDOUT';
    socket.destroy(err);
  }, timeoutMs);
  const clear = () => clearTimeout(timer);
  socket.once('connect', clear);
  socket.once('close', clear);
}

class TimedHttpAgent extends http.Agent {
  constructor(private readonly connectTimeoutMs: number, options: http.AgentOptions) {
    super(options);
  }

  override createConnection(...args: Parameters<http.Agent['createConnection']>): ReturnType<http.Agent['createConnection']> {
    const socket = super.createConnection(...args);
    armConnectTimeout(socket, this.connectTimeoutMs);
    return socket;
  }
}

class TimedHttpsAgent extends https.Agent {
  constructor(private readonly connectTimeoutMs: number, options: https.AgentOptions) {
    super(options);
  }

  override createConnection(...args: Parameters<https.Agent['createConnection']>): ReturnType<https.Agent['createConnection']> {
    const socket = super.createConnection(...args);
    armConnectTimeout(socket, this.connectTimeoutMs);
    return socket;
  }
}

/** Answers errors with the hub's page for the status when an error target is set, else with a built-in page. */
class ErrorPages {
  private readonly base: string | undefined;

  constructor(errorTarget: string | undefined, private readonly log: Logger) {
    this.base = errorTarget && !errorTarget.endsWith('/') ? `${errorTarget}/` : errorTarget;
  }

  /** Never rejects: the error path must not become an error of its own (jupyterhub #900). */
  async reply(req: http.IncomingMessage, res: http.ServerResponse, status: number): Promise<void> {
    try {
      const page = this.base ? await this.fetch(status, req.url ?? '/') : undefined;
      if (res.headersSent || res.destroyed) return;
      const body = page?.body ?? builtInPage(status);
      res.writeHead(status, {
        'content-type': page?.contentType ?? 'text/html; charset=utf-8',
        'content-length': body.length,
      });
      res.end(body);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'could not send an error page');
      res.destroy();
    }
  }

  private async fetch(status: number, url: string): Promise<{ body: Buffer; contentType: string | undefined } | undefined> {
    const pageUrl = new URL(`${this.base}${status}`);
    pageUrl.searchParams.set('url', url);
    try {
      const response = await fetch(pageUrl, { redirect: 'manual', signal: AbortSignal.timeout(ERROR_PAGE_TIMEOUT_MS) });
      // fetch has already undone any content-encoding, so only the type is relayed.
      return { body: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type') ?? undefined };
    } catch (err) {
      this.log.warn({ status, err: (err as Error).message }, 'error target failed; using the built-in page');
      return undefined;
    }
  }
}

const EXPLANATIONS: Record<number, string> = {
  400: 'This address cannot be routed.',
  404: 'Nothing is served at this address.',
  503: 'The server for this address is not responding. It may be starting up or stopped.',
};

function builtInPage(status: number): Buffer {
  const title = `${status} ${http.STATUS_CODES[status] ?? 'Error'}`;
  const explanation = EXPLANATIONS[status] ?? 'The proxy could not complete this request.';
  return Buffer.from(
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head>` +
      `<body><h1>${title}</h1><p>${explanation}</p></body></html>\n`,
  );
}

/** A complete HTTP/1.1 answer for a socket that never became a websocket. */
function rawResponse(status: number): string {
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}

/** Paths only: query strings carry tokens (`?token=`), and request URLs are attacker-chosen, so bounded. */
function loggablePath(url: string | undefined): string {
  const path = (url ?? '').split('?', 1)[0]!;
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}
