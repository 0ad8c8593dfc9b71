import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import { createLogger, type Logger } from '../hub/log.js';
import { isApiRequest } from './api-requests.js';
import { ProxyMetrics } from './metrics.js';
import { Agent, type Dispatcher } from 'undici';
import { clientResponseHeaders, clientResponseHeadersOf, customHeaders, rawResponseHead, upstreamRequestHeaders } from './headers.js';
import { RouteTable, type Route, type RouteMatch, type UnroutableReason } from './routes.js';
import { clearCookieHeader, findRevoked, type PresentedCredentials, type RevokedCredential } from './revocations.js';

const HEALTH_PATH = '/_chp_healthz';

/** PEM text, or its bytes as read from a file. */
export type Pem = string | Buffer;

/** How a server (public or API) serves HTTPS; the fields are Node's `https.createServer` options of the same name. */
export interface TlsOptions<P extends Pem = Pem> {
  key: P;
  cert: P;
  /** CAs that client certificates must chain to (default: Node's root CAs); also completes the served chain. */
  ca?: P;
  /** Ask clients for a certificate. */
  requestCert?: boolean;
  /** With `requestCert`, refuse clients without a valid certificate. Node's default, as CHP leaves it: true. */
  rejectUnauthorized?: boolean;
}

/** How the proxy connects to https targets (CHP's `--client-ssl-*` and `--insecure`). */
export interface TargetTlsOptions<P extends Pem = Pem> {
  /** Client certificate and its key, presented to targets that ask for one. */
  key?: P;
  cert?: P;
  /** CAs that targets' certificates must chain to (default: Node's root CAs). */
  ca?: P;
  /** Verify targets' certificates; default true. */
  rejectUnauthorized?: boolean;
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
  /** TLS settings towards https targets: HTTP, websockets and the error target alike. */
  targetTls?: TargetTlsOptions;
  /** Set on every proxied request (HTTP and websocket), replacing any the client sent under the same name. */
  customHeaders?: readonly (readonly [name: string, value: string])[];
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

/**
 * Connections to targets are kept alive and reused, the first free one first, so a busy target is served by a few
 * warm connections rather than a rotating set (fewer ephemeral ports, CHP #557). Idle ones are closed after the
 * target's own Keep-Alive hint, or this when it gives none (Jupyter's server gives none and keeps them an hour).
 */
const UPSTREAM_KEEP_ALIVE_MS = 30_000;
const HEALTH_HEADERS = { 'content-type': 'application/json', 'content-length': 15 };
const HEALTH_BODY = '{"status":"OK"}';
const SLASH = 0x2f;
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
  const prependPath = options.prependPath ?? true;
  const xfwd = options.xfwd ?? true;
  const encrypted = options.tls !== undefined;
  const proxyTimeoutMs = options.proxyTimeoutMs;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const custom = options.customHeaders?.length ? customHeaders(options.customHeaders) : undefined;
  /** Open websockets, each with its route's path and the credentials it was opened with (to cut it on revocation). */
  const websockets = new Map<Duplex, { routePath: string; presented: PresentedCredentials }>();
  const targetTls = tlsConnectOptions(options.targetTls);
  const dispatcher = new Agent({ connect: { timeout: connectTimeoutMs, ...targetTls }, keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS });
  const errorPages = new ErrorPages(options.errorTarget, dispatcher, log);
  // Websocket upgrades go through node:http: each upgraded socket belongs to its websocket, never to a pool.
  const httpAgent = new TimedHttpAgent(connectTimeoutMs, {});
  const httpsAgent = new TimedHttpsAgent(connectTimeoutMs, targetTls);

  if (options.defaultTarget) routes.add('/', { target: options.defaultTarget });

  /** The path and headers of the upstream request for a routed client request. */
  const upstreamParts = (req: http.IncomingMessage, found: RouteMatch, upgrade: boolean) => {
    const { upstream } = found.route;
    const url = req.url!;
    let path = includePrefix ? url : url.slice(found.prefixEnd);
    if (path.charCodeAt(0) !== SLASH) path = `/${path}`;
    if (prependPath) path = upstream.basePath + path;
    const forwarded = xfwd
      ? {
          remoteAddress: req.socket.remoteAddress,
          proto: upgrade ? (encrypted ? 'wss' : 'ws') : encrypted ? 'https' : 'http',
          defaultPort: encrypted ? '443' : '80',
        }
      : undefined;
    return { path, ...upstreamRequestHeaders(req.rawHeaders, upgrade, forwarded, custom) };
  };

  const onUpstreamError = (err: Error, req: http.IncomingMessage, res: http.ServerResponse, route: Route): void => {
    const code = (err as NodeJS.ErrnoException).code;
    metrics.countUpstreamError(code);
    if (res.headersSent) {
      log.warn({ path: loggablePath(req.url), code, err: err.message }, 'target failed mid-response');
      res.destroy();
      return;
    }
    if (res.destroyed) return;
    log.warn({ path: loggablePath(req.url), target: route.target.origin, code, err: err.message }, 'target unreachable');
    metrics.countResponse(503);
    void errorPages.reply(req, res, 503);
  };

  /** Plain HTTP goes through undici's connection pools: about twice the requests per CPU second of `http.request`. */
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, found: RouteMatch): void => {
    const route = found.route;
    const startedAt = performance.now();
    const { path, headers, hasBody } = upstreamParts(req, found, false);
    let controller: Dispatcher.DispatchController | undefined;
    let active = false;
    let clientGone = false;
    const resume = () => controller?.resume();
    // A client that goes away must not leave its upstream request (and socket) behind.
    res.on('close', () => {
      if (res.writableFinished) return;
      clientGone = true;
      controller?.abort(new Error('the client closed the connection'));
    });
    dispatcher.dispatch(
      {
        origin: route.upstream.origin,
        method: req.method!,
        path,
        headers,
        body: hasBody ? Readable.from(touching(req, route.touch), { objectMode: false }) : null,
        headersTimeout: proxyTimeoutMs ?? 0,
        bodyTimeout: 0,
      },
      {
        onRequestStart(c) {
          controller = c;
          if (clientGone) c.abort(new Error('the client closed the connection'));
        },
        onResponseStart(_c, status, responseHeaders, statusMessage) {
          metrics.countResponse(status);
          metrics.observeLatency((performance.now() - startedAt) / 1000);
          // Like CHP, only successful answers count as activity: error floods must not keep an idle server alive.
          active = status < 300;
          if (active) route.touch();
          // An empty reason phrase becomes Node's standard one for the status.
          res.writeHead(status, statusMessage || undefined, clientResponseHeadersOf(responseHeaders));
        },
        onResponseData(c, chunk) {
          if (active) route.touch();
          // Chunks undici had already parsed can still arrive after a pause: one drain listener is enough.
          if (!res.write(chunk) && !c.paused) {
            c.pause();
            res.once('drain', resume);
          }
        },
        onResponseEnd() {
          res.end();
        },
        onResponseError(_c, err) {
          if (!clientGone) onUpstreamError(err, req, res, route);
        },
      },
    );
  };

  const replyUnroutable = (req: http.IncomingMessage, res: http.ServerResponse, reason: UnroutableReason): void => {
    const status = reason === 'no-route' ? 404 : 400;
    log.debug({ path: loggablePath(req.url), status }, 'request not routed');
    metrics.countResponse(status);
    void errorPages.reply(req, res, status);
  };

  const replyRevoked = (req: http.IncomingMessage, res: http.ServerResponse, route: Route, revoked: RevokedCredential): void => {
    // Debug, as other refusals: whoever holds a revoked token could otherwise fill the log with them.
    log.debug({ path: loggablePath(req.url), route: route.path }, 'request with a revoked token refused');
    metrics.countResponse(403);
    if (revoked.cookie !== undefined) res.setHeader('set-cookie', clearCookieHeader(revoked.cookie, route.path));
    void errorPages.reply(req, res, 403);
  };

  /** Cuts the open websockets of a route that were opened with a token the route now refuses. */
  const cutRevokedWebsockets = (route: Route): void => {
    if (!route.revoked) return;
    const now = Date.now();
    for (const [socket, opened] of websockets) {
      if (opened.routePath === route.path && findRevoked(opened.presented, route.revoked, now)) {
        log.info({ route: route.path }, 'websocket opened with a now revoked token closed');
        socket.destroy();
      }
    }
  };
  routes.onAdd(cutRevokedWebsockets);

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url!;
    if (url === HEALTH_PATH) {
      res.writeHead(200, HEALTH_HEADERS);
      res.end(HEALTH_BODY);
      return;
    }
    const found = routes.match(url);
    if (typeof found === 'string') {
      replyUnroutable(req, res, found);
      return;
    }
    const revoked = found.route.revoked && findRevoked(presentedBy(req), found.route.revoked, Date.now());
    if (revoked) {
      replyRevoked(req, res, found.route, revoked);
      return;
    }
    try {
      forward(req, res, found);
    } catch (err) {
      // http.request throws synchronously on headers it cannot send; that must not take the process down.
      log.error({ path: loggablePath(req.url), err: (err as Error).message }, 'could not forward request');
      metrics.countResponse(500);
      void errorPages.reply(req, res, 500);
    }
  };

  const upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer, found: RouteMatch): void => {
    const route = found.route;
    const { upstream } = route;
    const { path, headers } = upstreamParts(req, found, true);
    const requestOptions: http.RequestOptions = {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path,
      headers: headers as unknown as http.OutgoingHttpHeaders,
      agent: upstream.https ? httpsAgent : httpAgent,
      setHost: false,
    };
    const proxyReq = upstream.https ? https.request(requestOptions) : http.request(requestOptions);
    if (proxyTimeoutMs) {
      proxyReq.setTimeout(proxyTimeoutMs, () => proxyReq.destroy(timeoutError(`the target did not answer within ${proxyTimeoutMs} ms`)));
    }
    const abandon = () => proxyReq.destroy();
    socket.on('error', abandon);
    socket.on('close', abandon);
    proxyReq.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      metrics.countUpstreamError(code);
      log.warn({ path: loggablePath(req.url), target: route.target.origin, code, err: err.message }, 'websocket target unreachable');
      metrics.countResponse(503);
      refuse(socket, 503);
    });
    // The target answered without upgrading (e.g. 403 or 404 from the notebook server): relay that answer.
    proxyReq.on('response', (proxyRes) => {
      metrics.countResponse(proxyRes.statusCode!);
      if (!socket.writable) return void proxyRes.destroy();
      const headers = clientResponseHeaders(proxyRes.rawHeaders);
      headers.push('Connection', 'close');
      socket.write(rawResponseHead(proxyRes.statusCode!, proxyRes.statusMessage!, headers));
      proxyRes.pipe(socket);
    });
    proxyReq.on('upgrade', (proxyRes, upstreamSocket, upstreamHead) => {
      socket.off('close', abandon);
      socket.off('error', abandon);
      if (socket.destroyed) {
        upstreamSocket.destroy();
        return;
      }
      metrics.countResponse(101);
      route.touch();
      websockets.set(socket, { routePath: route.path, presented: presentedBy(req) });
      metrics.websocketOpened();
      // destroy, never end: a half-closed pair is how http-proxy leaked websocket sockets (CHP #434).
      const closeBoth = () => {
        socket.destroy();
        upstreamSocket.destroy();
      };
      socket.on('error', closeBoth);
      upstreamSocket.on('error', closeBoth);
      socket.once('close', () => {
        upstreamSocket.destroy();
        websockets.delete(socket);
        metrics.websocketClosed();
      });
      upstreamSocket.once('close', closeBoth);
      upstreamSocket.setTimeout(0);
      upstreamSocket.setNoDelay(true);
      if (socket instanceof net.Socket) {
        socket.setTimeout(0);
        socket.setNoDelay(true);
      }
      socket.write(rawResponseHead(101, proxyRes.statusMessage ?? 'Switching Protocols', proxyRes.rawHeaders));
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      socket.on('data', route.touch);
      upstreamSocket.on('data', route.touch);
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
    });
    proxyReq.end();
  };

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const found = routes.match(req.url!);
    if (typeof found === 'string') {
      const status = found === 'no-route' ? 404 : 400;
      log.debug({ path: loggablePath(req.url), status }, 'websocket not routed');
      metrics.countResponse(status);
      refuse(socket, status);
      return;
    }
    if (found.route.revoked && findRevoked(presentedBy(req), found.route.revoked, Date.now())) {
      log.debug({ path: loggablePath(req.url), route: found.route.path }, 'websocket with a revoked token refused');
      metrics.countResponse(403);
      refuse(socket, 403);
      return;
    }
    try {
      upgrade(req, socket, head, found);
    } catch (err) {
      log.error({ path: loggablePath(req.url), err: (err as Error).message }, 'could not forward websocket');
      metrics.countResponse(500);
      refuse(socket, 500);
    }
  };

  const server = options.tls ? https.createServer(serverTlsOptions(options.tls), onRequest) : http.createServer(onRequest);
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  // CHP --timeout: idle client sockets are cut after it (a timeout without a listener destroys the socket).
  if (options.timeoutMs) server.setTimeout(options.timeoutMs);
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
      for (const socket of websockets.keys()) socket.destroy();
      const cutoff = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(cutoff);
      httpAgent.destroy();
      httpsAgent.destroy();
      await dispatcher.destroy();
    },
  };
}

/** Node's options for an HTTPS server: only the fields `TlsOptions` names reach Node; undefined ones keep its defaults. */
export function serverTlsOptions(tls: TlsOptions): https.ServerOptions {
  const { key, cert, ca, requestCert, rejectUnauthorized } = tls;
  return { key, cert, ca, requestCert, rejectUnauthorized };
}

/** `tls.connect` options for targets, shared by undici's pools and the websocket agent so both verify alike. */
function tlsConnectOptions(tls: TargetTlsOptions | undefined): Pick<https.AgentOptions, 'key' | 'cert' | 'ca' | 'rejectUnauthorized'> {
  if (!tls) return {};
  const { key, cert, ca, rejectUnauthorized = true } = tls;
  return { key, cert, ca, rejectUnauthorized };
}

/**
 * The request body as it streams upstream, recording activity per chunk. A `data` listener would do it with less
 * code but would start the stream flowing before the upstream client reads it, and lose what came meanwhile.
 */
async function* touching(body: AsyncIterable<Buffer>, touch: () => void): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    touch();
    yield chunk;
  }
}

function presentedBy(req: http.IncomingMessage): PresentedCredentials {
  return { url: req.url ?? '', authorization: req.headers.authorization, cookie: req.headers.cookie };
}

/** Answers a socket that never became a websocket, then closes it. */
function refuse(socket: Duplex, status: number): void {
  socket.on('error', () => socket.destroy());
  if (socket.writable) socket.end(rawResponse(status));
  else socket.destroy();
}

function timeoutError(message: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(message);
  err.code = 'ETIMEDOUT';
  return err;
}

/** Sockets to targets give up connecting after a deadline: a vanished host must not hold a client for minutes. */
function armConnectTimeout(socket: Duplex | null | undefined, timeoutMs: number): void {
  if (!(socket instanceof net.Socket) || !socket.connecting) return;
  const timer = setTimeout(() => socket.destroy(timeoutError(`connecting to the target timed out after ${timeoutMs} ms`)), timeoutMs);
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

  /** `dispatcher` is the targets' one: an https hub (JupyterHub's internal_ssl) wants the same client certificate. */
  constructor(errorTarget: string | undefined, private readonly dispatcher: Dispatcher, private readonly log: Logger) {
    this.base = errorTarget && !errorTarget.endsWith('/') ? `${errorTarget}/` : errorTarget;
  }

  /** Never rejects: the error path must not become an error of its own (jupyterhub #900). */
  async reply(req: http.IncomingMessage, res: http.ServerResponse, status: number): Promise<void> {
    try {
      if (isApiRequest(req.url ?? '', req.headers.accept)) {
        const body = Buffer.from(JSON.stringify({ status, message: EXPLANATIONS[status] ?? 'The proxy could not complete this request.' }));
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
        res.end(body);
        return;
      }
      const page = this.base ? await this.fetch(status, req.url ?? '/') : undefined;
      if (res.headersSent || res.destroyed) return;
      const body = page?.body ?? builtInPage(status);
      const headers: http.OutgoingHttpHeaders = { 'content-type': page?.contentType ?? 'text/html; charset=utf-8', 'content-length': body.length };
      if (page?.contentEncoding) headers['content-encoding'] = page.contentEncoding;
      res.writeHead(status, headers);
      res.end(body);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'could not send an error page');
      res.destroy();
    }
  }

  private async fetch(status: number, url: string): Promise<ErrorPage | undefined> {
    const pageUrl = new URL(`${this.base}${status}`);
    pageUrl.searchParams.set('url', url);
    try {
      const response = await this.dispatcher.request({
        origin: pageUrl.origin,
        path: `${pageUrl.pathname}${pageUrl.search}`,
        method: 'GET',
        signal: AbortSignal.timeout(ERROR_PAGE_TIMEOUT_MS),
      });
      const body = Buffer.from(await response.body.arrayBuffer());
      // Relayed as received (CHP passes the same two headers on), so an encoded body keeps its encoding.
      return { body, contentType: headerText(response.headers['content-type']), contentEncoding: headerText(response.headers['content-encoding']) };
    } catch (err) {
      this.log.warn({ status, err: (err as Error).message }, 'error target failed; using the built-in page');
      return undefined;
    }
  }
}

interface ErrorPage {
  body: Buffer;
  contentType: string | undefined;
  contentEncoding: string | undefined;
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

const EXPLANATIONS: Record<number, string> = {
  400: 'This address cannot be routed: it has a dot segment, an encoded slash or backslash, or malformed percent-encoding.',
  403: 'Your sign-in to this server was revoked. If you can still use it another way, open it again to sign in afresh.',
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
