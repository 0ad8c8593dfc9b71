/**
 * configurable-http-proxy's REST API (contracts/chp-rest-api.yml, as CHP's code behaves), plus `GET /metrics`.
 * Errors are JSON `{status, message}`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { createLogger, type Logger } from '../hub/log.js';
import type { ProxyMetrics } from './metrics.js';
import { parseTarget, type RouteData, type RouteTable } from './routes.js';
import { serverTlsOptions, type TlsOptions } from './server.js';

export interface ApiOptions {
  routes: RouteTable;
  metrics: ProxyMetrics;
  /** `Authorization: token <authToken>` is required when set; without it the API is open (CHP's behaviour). */
  authToken?: string;
  log?: Logger;
  /** Largest accepted `POST` body. */
  maxBodyBytes?: number;
  /**
   * Awaited after a route change is applied to `routes` and before the API answers: a multi-worker proxy hands the
   * change to every worker here, so a `201`/`204` means every worker routes by it.
   */
  onChange?: (change: RouteChange) => Promise<void>;
  /** Awaited before routes are read, so `last_activity` includes traffic seen by other processes. */
  beforeRead?: () => Promise<void>;
  /** Prometheus text to serve on `/metrics` instead of `metrics.registry`'s (a multi-worker proxy aggregates). */
  metricsText?: () => Promise<string>;
}

export type RouteChange = { op: 'add'; path: string; data: RouteData } | { op: 'remove'; path: string };

export interface ApiServerOptions extends ApiOptions {
  tls?: TlsOptions;
}

const ROUTES_PATH = '/api/routes';
const METRICS_PATH = '/metrics';
const ROUTE_METHODS = 'GET, POST, DELETE';
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const TOKEN_HEADER = /^token\s+(\S+)\s*$/i;

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export function createApiServer(options: ApiServerOptions): http.Server | https.Server {
  const handler = createApiHandler(options);
  return options.tls ? https.createServer(serverTlsOptions(options.tls), handler) : http.createServer(handler);
}

export function createApiHandler(options: ApiOptions): Handler {
  const { routes, metrics } = options;
  const log = options.log ?? createLogger('labhub-proxy-api');
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const isAuthorized = tokenChecker(options.authToken);
  if (options.authToken === undefined || options.authToken === '') {
    log.warn('the proxy API is not authenticated: set CONFIGPROXY_AUTH_TOKEN');
  }

  const getRoutes = async (res: http.ServerResponse, path: string, query: URLSearchParams): Promise<void> => {
    await options.beforeRead?.();
    if (path !== '/') {
      const route = routes.get(path);
      if (!route) return sendError(res, 404, `No route for ${path}`);
      return sendJson(res, 200, route.toJSONString());
    }
    const since = query.get('inactiveSince') ?? query.get('inactive_since');
    let sinceMs = Infinity;
    if (since) {
      sinceMs = Date.parse(since);
      if (!Number.isFinite(sinceMs)) return sendError(res, 400, `Invalid datestamp '${since}' must be ISO8601.`);
    }
    const parts: string[] = [];
    for (const route of routes.values()) {
      if (route.lastActivityMs < sinceMs) parts.push(`${JSON.stringify(route.path)}:${route.toJSONString()}`);
    }
    sendJson(res, 200, `{${parts.join(',')}}`);
  };

  const postRoute = async (req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> => {
    const body = await readBody(req, maxBodyBytes);
    if (body === undefined) {
      res.setHeader('connection', 'close');
      return sendError(res, 413, `Body larger than ${maxBodyBytes} bytes`);
    }
    let data: unknown;
    try {
      data = JSON.parse(body);
    } catch (err) {
      return sendError(res, 400, `Body not valid JSON: ${(err as Error).message}`);
    }
    if (!isRouteData(data)) return sendError(res, 400, "Must specify 'target' as string");
    if (!parseTarget(data.target)) return sendError(res, 400, "'target' must be an absolute http or https URL");
    const route = routes.add(path, data);
    await options.onChange?.({ op: 'add', path: route.path, data });
    log.info({ path: route.path, target: data.target }, 'route added');
    res.writeHead(201);
    res.end();
  };

  const deleteRoute = async (res: http.ServerResponse, path: string): Promise<void> => {
    if (!routes.remove(path)) return sendError(res, 404, `No route for ${path}`);
    await options.onChange?.({ op: 'remove', path });
    log.info({ path }, 'route removed');
    res.writeHead(204);
    res.end();
  };

  const serveMetrics = async (res: http.ServerResponse): Promise<void> => {
    const text = options.metricsText ? await options.metricsText() : await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType });
    res.end(text);
  };

  const dispatch = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const pathname = queryStart === -1 ? url : url.slice(0, queryStart);
    const isRoutes = pathname === ROUTES_PATH || pathname.startsWith(`${ROUTES_PATH}/`);
    if (!isRoutes && pathname !== METRICS_PATH) return sendError(res, 404, 'Not found');
    const allowed = isRoutes ? ROUTE_METHODS : 'GET';
    if (!allowed.split(', ').includes(req.method ?? '')) {
      res.setHeader('allow', allowed);
      return sendError(res, 405, 'Method not supported');
    }
    if (!isAuthorized(req.headers.authorization)) {
      log.debug({ method: req.method, path: pathname.slice(0, 200) }, 'API request refused: bad or missing token');
      return sendError(res, 403, 'Missing or invalid token');
    }
    if (!isRoutes) return serveMetrics(res);

    let path: string;
    try {
      path = decodeURIComponent(pathname.slice(ROUTES_PATH.length)) || '/';
    } catch {
      return sendError(res, 400, 'Route path is not valid percent-encoding');
    }
    if (req.method === 'GET') return getRoutes(res, path, new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1)));
    if (req.method === 'POST') return postRoute(req, res, path);
    return deleteRoute(res, path);
  };

  return (req, res) => {
    dispatch(req, res).catch((err: unknown) => {
      log.error({ method: req.method, err: (err as Error).message }, 'API request failed');
      if (!res.headersSent) sendError(res, 500, 'Internal proxy error');
      else res.destroy();
    });
  };
}

/** Compares digests in constant time, so neither the token nor its length leaks through response timing. */
function tokenChecker(token: string | undefined): (header: string | undefined) => boolean {
  if (!token) return () => true;
  const expected = sha256(token);
  return (header) => {
    const presented = header ? TOKEN_HEADER.exec(header)?.[1] : undefined;
    return presented !== undefined && timingSafeEqual(sha256(presented), expected);
  };
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function isRouteData(value: unknown): value is RouteData {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as RouteData).target === 'string';
}

/** The body as text, or undefined when it exceeds `limit` bytes (then the rest is discarded unread). */
function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length']) > limit) {
      req.resume();
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

function sendJson(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res: http.ServerResponse, status: number, message: string): void {
  sendJson(res, status, JSON.stringify({ status, message }));
}
