/**
 * A minimal HTTP/1.1 client over node:http with keep-alive agents: what the benchmarks use to drive both hubs,
 * so that client overhead is the same for each (no fetch/undici, whose per-request cost is higher and varies).
 */
import { Agent, request } from 'node:http';

export interface HttpResponse {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  agent?: Agent | false;
  timeoutMs?: number;
}

export function keepAliveAgent(maxSockets = 64): Agent {
  return new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'fifo' });
}

/** One request; the body is JSON-encoded unless it is a string. Rejects on network errors and timeouts only. */
export function httpRequest(url: string, options: RequestOptions = {}): Promise<HttpResponse> {
  const payload = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const headers: Record<string, string> = { ...options.headers };
  if (payload !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.timeoutMs) req.setTimeout(options.timeoutMs, () => req.destroy(new Error(`timeout after ${options.timeoutMs} ms: ${url}`)));
    req.end(payload);
  });
}

function setCookies(res: HttpResponse): string[] {
  const raw = res.headers['set-cookie'];
  return (Array.isArray(raw) ? raw : raw ? [raw] : []).map((c) => c.split(';')[0]!);
}

/**
 * Logs in through a hub's login form as a browser would (with the form's `_xsrf` where the hub has one) and
 * returns the Cookie header of the session: for loading a cookie-authenticated page.
 */
export async function browserLogin(base: string, username: string, password: string): Promise<string> {
  const jar = new Map<string, string>();
  const keep = (res: HttpResponse) => {
    for (const c of setCookies(res)) jar.set(c.slice(0, c.indexOf('=')), c);
  };
  const cookie = () => [...jar.values()].join('; ');
  const form = await httpRequest(`${base}/hub/login`);
  keep(form);
  const xsrf = /name="_xsrf"\s+value="([^"]+)"/.exec(form.body)?.[1];
  const body = new URLSearchParams({ username, password, ...(xsrf ? { _xsrf: xsrf } : {}) }).toString();
  const res = await httpRequest(`${base}/hub/login`, {
    method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookie() },
  });
  keep(res);
  if (res.status !== 302) throw new Error(`login at ${base} answered ${res.status}`);
  return cookie();
}

/** A hub's REST API with one token, over one keep-alive agent. */
export class HubApi {
  readonly agent: Agent;

  constructor(readonly base: string, readonly token: string, maxSockets = 32) {
    this.agent = keepAliveAgent(maxSockets);
  }

  request(method: string, path: string, body?: unknown): Promise<HttpResponse> {
    return httpRequest(`${this.base}/hub/api${path}`, {
      method, body, agent: this.agent, timeoutMs: 300_000,
      headers: { authorization: `token ${this.token}` },
    });
  }

  /** A request that must answer one of `expected`; otherwise throws with the status and the start of the body. */
  async expect(method: string, path: string, expected: number[], body?: unknown): Promise<HttpResponse> {
    const res = await this.request(method, path, body);
    if (!expected.includes(res.status)) {
      throw new Error(`${method} ${path}: expected ${expected.join('/')}, got ${res.status}: ${res.body.slice(0, 300)}`);
    }
    return res;
  }

  close(): void {
    this.agent.destroy();
  }
}
