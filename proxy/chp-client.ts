import type { ProxyClient, RouteEntry } from './client.js';

export interface ChpProxyClientOptions {
  /** Where the proxy's API listens, e.g. `http://127.0.0.1:8001`. */
  apiUrl: string;
  /** Sent as `Authorization: token <authToken>` (CHP accepts no other scheme). */
  authToken?: string;
  /** Per attempt. */
  timeoutMs?: number;
  /** Waits before each retry; its length bounds the retries. */
  retryDelaysMs?: readonly number[];
}

/** A response the proxy API gave that retrying cannot fix (4xx), or the last failure after every retry. */
export class ProxyApiError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'ProxyApiError';
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** A restarting proxy is usually back within a second or two. */
const DEFAULT_RETRY_DELAYS_MS = [100, 300, 1000, 2000];

/**
 * The hub's side of CHP's REST API, for LabHub's proxy and configurable-http-proxy alike.
 *
 * Paths are URL paths as they appear in request URLs, percent-encoded (`/user/foo%40bar/`), and are sent as given.
 * The proxy decodes keys once and stores them decoded; `getRoutes` encodes each segment again, so its keys can be
 * handed straight back to `deleteRoute`. Every call is idempotent (POST replaces, DELETE of a missing route is
 * fine), so connection failures, timeouts and 5xx answers are retried a bounded number of times.
 */
export class ChpProxyClient implements ProxyClient {
  private readonly routesUrl: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly retryDelaysMs: readonly number[];

  constructor({ apiUrl, authToken, timeoutMs = DEFAULT_TIMEOUT_MS, retryDelaysMs = DEFAULT_RETRY_DELAYS_MS }: ChpProxyClientOptions) {
    this.routesUrl = `${apiUrl.replace(/\/+$/, '')}/api/routes`;
    this.headers = authToken ? { authorization: `token ${authToken}` } : {};
    this.timeoutMs = timeoutMs;
    this.retryDelaysMs = retryDelaysMs;
  }

  async addRoute(path: string, target: string, data: Record<string, unknown>): Promise<void> {
    await this.request('POST', path, [201], JSON.stringify({ ...data, target }));
  }

  async deleteRoute(path: string): Promise<void> {
    await this.request('DELETE', path, [204, 404]);
  }

  async getRoutes(): Promise<Record<string, RouteEntry>> {
    const response = await this.request('GET', '', [200]);
    const table = (await response.json()) as Record<string, RouteEntry>;
    const routes: Record<string, RouteEntry> = {};
    for (const [key, entry] of Object.entries(table)) routes[encodePath(key)] = entry;
    return routes;
  }

  private async request(method: string, path: string, expected: number[], body?: string): Promise<Response> {
    const url = this.routesUrl + (path && !path.startsWith('/') ? `/${path}` : path);
    const headers = body === undefined ? this.headers : { ...this.headers, 'content-type': 'application/json' };
    let failure = '';
    for (let attempt = 0; attempt <= this.retryDelaysMs.length; attempt++) {
      if (attempt > 0) await sleep(this.retryDelaysMs[attempt - 1]!);
      let response: Response;
      try {
        response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      } catch (err) {
        failure = describeFetchError(err);
        continue;
      }
      if (expected.includes(response.status)) return response;
      const message = await responseMessage(response);
      if (response.status < 500) {
        throw new ProxyApiError(`proxy API ${method} ${path || '/'} answered ${response.status}: ${message}`, response.status);
      }
      failure = `answered ${response.status}: ${message}`;
    }
    throw new ProxyApiError(`proxy API ${method} ${path || '/'} failed after ${this.retryDelaysMs.length + 1} attempts: ${failure}`);
  }
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

async function responseMessage(response: Response): Promise<string> {
  const text = (await response.text().catch(() => '')).slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: CHP answers some errors in plain text
  }
  return text || response.statusText;
}

/** fetch hides the useful part (ECONNREFUSED, ETIMEDOUT) in `cause`. */
function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
