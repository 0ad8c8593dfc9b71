/**
 * The proxy over real sockets: node http backends with a `ws` echo server, the CHP REST API, ChpProxyClient, and
 * the CLI as a child process (`dist/proxy/main.js`, built by `npm run build` before tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createLogger } from '../../hub/log.js';
import { ChpProxyClient, ProxyApiError } from '../../proxy/chp-client.js';
import { startProxy, type RunningProxy, type StartProxyOptions } from '../../proxy/main.js';
import type { TargetTlsOptions, TlsOptions } from '../../proxy/server.js';
import { makeTestPki, type TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers/ports.js';
import { httpsRequest, request, startBackend, type Backend, type Echo, type RawResponse } from '../helpers/proxy.js';

const TOKEN = 'test-proxy-token-0123456789abcdef';
const quiet = createLogger('test.proxy', { level: 'silent' });
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const auth = { authorization: `token ${TOKEN}` };

async function api(proxy: RunningProxy, method: string, routePath: string, body?: unknown): Promise<RawResponse> {
  return request(proxy.apiUrl, `/api/routes${routePath}`, {
    method,
    headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function addRoute(proxy: RunningProxy, routePath: string, target: string, data: Record<string, unknown> = {}): Promise<void> {
  const res = await api(proxy, 'POST', routePath, { ...data, target });
  expect(res.status).toBe(201);
}

async function lastActivity(proxy: RunningProxy, routePath: string): Promise<number> {
  const res = await api(proxy, 'GET', routePath);
  expect(res.status).toBe(200);
  return Date.parse((JSON.parse(res.body) as { last_activity: string }).last_activity);
}

function startTestProxy(options: StartProxyOptions = {}): Promise<RunningProxy> {
  return startProxy({ ip: '127.0.0.1', port: 0, apiPort: 0, authToken: TOKEN, log: quiet, ...options });
}

/** Resolves with the open socket, or rejects with the HTTP status the proxy answered instead of upgrading. */
function openWebsocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** The status a raw upgrade request gets (101 when it became a websocket); the path is sent as is. */
function upgradeStatus(base: string, rawPath: string): Promise<number> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({
      hostname, port, path: rawPath, agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.once('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end();
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(String(data))));
}

const STALLED_LISTENER = [
  'import socket, time',
  's = socket.socket()',
  "s.bind(('127.0.0.1', 0))",
  's.listen(0)',
  'print(s.getsockname()[1], flush=True)',
  'time.sleep(60)',
].join('\n');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('proxy forwarding', () => {
  let alice: Backend;
  let bob: Backend;
  let hub: Backend;
  let proxy: RunningProxy;
  let deadTarget: string;

  beforeAll(async () => {
    [alice, bob, hub] = await Promise.all([startBackend('alice'), startBackend('bob'), startBackend('hub')]);
    deadTarget = `http://127.0.0.1:${await freePort()}`;
    proxy = await startTestProxy({ defaultTarget: hub.url });
    await addRoute(proxy, '/user/alice/', alice.url, { jupyterhub: true, user: 'alice' });
    await addRoute(proxy, '/user/bob/', bob.url, { jupyterhub: true, user: 'bob' });
    await addRoute(proxy, '/user/dead', deadTarget);
  });

  afterAll(async () => {
    await proxy.close();
    await Promise.all([alice.close(), bob.close(), hub.close()]);
  });

  it('routes by longest prefix and forwards the full path and query', async () => {
    const res = await request(proxy.publicUrl, '/user/alice/api/kernels?x=1');
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as Echo;
    expect(echo.backend).toBe('alice');
    expect(echo.url).toBe('/user/alice/api/kernels?x=1');
    expect((JSON.parse((await request(proxy.publicUrl, '/user/bob/')).body) as Echo).backend).toBe('bob');
    expect((JSON.parse((await request(proxy.publicUrl, '/user/alicex/')).body) as Echo).backend).toBe('hub');
    expect((JSON.parse((await request(proxy.publicUrl, '/hub/login')).body) as Echo).backend).toBe('hub');
  });

  it('forwards methods and adds X-Forwarded-* headers', async () => {
    const res = await request(proxy.publicUrl, '/user/alice/api/contents', { method: 'PUT', body: '{"x":1}', headers: { host: 'hub.example.org' } });
    const echo = JSON.parse(res.body) as Echo;
    expect(echo.method).toBe('PUT');
    expect(echo.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(echo.headers['x-forwarded-proto']).toBe('http');
    expect(echo.headers['x-forwarded-host']).toBe('hub.example.org');
    expect(echo.headers.host).toBe('hub.example.org');
  });

  it('streams request bodies unchanged: chunked, with Content-Length, after Expect: 100-continue, and empty', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) % 251;
    const sha = createHash('sha256').update(body).digest('hex');
    const { hostname, port } = new URL(proxy.publicUrl);
    const upload = (headers: Record<string, string>, parts: Buffer[]) =>
      new Promise<Echo>((resolve, reject) => {
        const req = http.request({ hostname, port, path: '/user/alice/api/contents/big.bin', method: 'PUT', headers, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as Echo));
        });
        req.on('error', reject);
        const send = () => {
          for (const part of parts) req.write(part);
          req.end();
        };
        if (headers.expect) req.once('continue', send);
        else send();
      });
    const thirds = [body.subarray(0, 1_000_000), body.subarray(1_000_000, 2_500_000), body.subarray(2_500_000)];

    const chunked = await upload({ 'transfer-encoding': 'chunked' }, thirds);
    expect([chunked.bodyBytes, chunked.bodySha256]).toEqual([body.length, sha]);
    const sized = await upload({ 'content-length': String(body.length) }, thirds);
    expect([sized.bodyBytes, sized.bodySha256, sized.headers['content-length']]).toEqual([body.length, sha, String(body.length)]);
    const continued = await upload({ 'content-length': String(body.length), expect: '100-continue' }, thirds);
    expect([continued.bodyBytes, continued.bodySha256, continued.headers.expect]).toEqual([body.length, sha, undefined]);
    const empty = await upload({ 'content-length': '0' }, []);
    expect([empty.method, empty.bodyBytes]).toEqual(['PUT', 0]);
  });

  it('treats %40 and @ as the same route', async () => {
    await addRoute(proxy, '/user/foo%40bar', alice.url);
    const res = await request(proxy.publicUrl, '/user/foo%40bar/tree');
    expect((JSON.parse(res.body) as Echo).url).toBe('/user/foo%40bar/tree');
    expect((JSON.parse((await request(proxy.publicUrl, '/user/foo@bar/tree')).body) as Echo).backend).toBe('alice');
  });

  it('prepends the target path', async () => {
    await addRoute(proxy, '/based', `${alice.url}/base/`);
    const echo = JSON.parse((await request(proxy.publicUrl, '/based/x?y=2')).body) as Echo;
    expect(echo.url).toBe('/base/based/x?y=2');
  });

  it('answers the health check itself', async () => {
    const res = await request(proxy.publicUrl, '/_chp_healthz');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'OK' });
  });

  it('answers 503 with a built-in page when the target refuses connections, and API clients with JSON', async () => {
    const res = await request(proxy.publicUrl, '/user/dead/tree');
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('503 Service Unavailable');
    for (const [path, headers] of [['/user/dead/api/status', {}], ['/user/dead/tree', { accept: 'application/json' }]] as const) {
      const api = await request(proxy.publicUrl, path, { headers });
      expect(api.status).toBe(503);
      expect(api.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(api.body)).toMatchObject({ status: 503, message: expect.stringContaining('not responding') });
    }
  });

  it.each([
    '/user/alice/../bob/x',
    '/user/alice/%2e%2e/bob/x',
    '/user/alice/..%2fbob/x',
    '/user/alice/..%2Fbob/x',
    '/user/alice/.%2E/bob/x',
    '/user/alice/x/../../bob/x',
    '/user/alice\\..\\bob/x',
    '/user%2Fbob/x',
  ])('never lets %s reach bob', async (rawPath) => {
    const before = bob.requests.length;
    const res = await request(proxy.publicUrl, rawPath);
    expect(res.status).toBe(400);
    expect(res.body).not.toContain('"backend":"bob"');
    expect(bob.requests.length).toBe(before);
  });

  it('forwards encoded slashes inside a matched server unchanged', async () => {
    const echo = JSON.parse((await request(proxy.publicUrl, '/user/alice/api/contents/a%2Fb')).body) as Echo;
    expect(echo).toMatchObject({ backend: 'alice', url: '/user/alice/api/contents/a%2Fb' });
  });

  it('proxies websockets, counts them, and updates last_activity on traffic', async () => {
    const wsBase = proxy.publicUrl.replace('http', 'ws');
    const before = await lastActivity(proxy, '/user/alice');
    await sleep(15);
    const ws = await openWebsocket(`${wsBase}/user/alice/api/kernels/k1/channels`);
    expect(proxy.proxy.openWebsockets).toBe(1);
    const afterOpen = await lastActivity(proxy, '/user/alice');
    expect(afterOpen).toBeGreaterThan(before);
    await sleep(15);
    const reply = nextMessage(ws);
    ws.send('hello');
    expect(await reply).toBe('alice:hello');
    expect(await lastActivity(proxy, '/user/alice')).toBeGreaterThan(afterOpen);
    ws.close();
    await waitFor(() => proxy.proxy.openWebsockets === 0);
  });

  it('routes websockets by prefix: bob gets his own', async () => {
    const ws = await openWebsocket(`${proxy.publicUrl.replace('http', 'ws')}/user/bob/terminals/websocket/1`);
    const reply = nextMessage(ws);
    ws.send('hi');
    expect(await reply).toBe('bob:hi');
    ws.close();
    await waitFor(() => proxy.proxy.openWebsockets === 0);
  });

  it('answers a raw 503 to a websocket whose target is down, and 400 to traversal', async () => {
    const wsBase = proxy.publicUrl.replace('http', 'ws');
    await expect(openWebsocket(`${wsBase}/user/dead/api/kernels/k/channels`)).rejects.toThrow('status 503');
    const before = bob.requests.length;
    expect(await upgradeStatus(proxy.publicUrl, '/user/alice/%2e%2e/bob/x')).toBe(400);
    expect(await upgradeStatus(proxy.publicUrl, '/user/alice/../bob/x')).toBe(400);
    expect(await upgradeStatus(proxy.publicUrl, '/user/bob/x')).toBe(101);
    expect(bob.requests.length).toBe(before);
    await waitFor(() => proxy.proxy.openWebsockets === 0);
  });

  it('updates last_activity on successful HTTP traffic, not on errors', async () => {
    const before = await lastActivity(proxy, '/user/bob');
    await sleep(15);
    await request(proxy.publicUrl, '/user/bob/api/status');
    expect(await lastActivity(proxy, '/user/bob')).toBeGreaterThan(before);

    const deadBefore = await lastActivity(proxy, '/user/dead');
    await sleep(15);
    expect((await request(proxy.publicUrl, '/user/dead/api/status')).status).toBe(503);
    expect(await lastActivity(proxy, '/user/dead')).toBe(deadBefore);
  });

  it('streams a large answer to a slow reader unchanged, holding the target back meanwhile', async () => {
    // Bigger than the kernel's socket buffers on the way, so the target can only finish once the reader reads.
    const body = Buffer.alloc(48 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body[i] = (i / 4096) % 256;
    let targetFinishedAt = 0;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.on('finish', () => (targetFinishedAt = performance.now()));
      res.end(body);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    await addRoute(proxy, '/user/large', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const { hostname, port } = new URL(proxy.publicUrl);
    let resumedAt = 0;
    const received = await new Promise<Buffer>((resolve, reject) => {
      http.get({ hostname, port, path: '/user/large/file', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.pause();
        setTimeout(() => {
          resumedAt = performance.now();
          res.resume();
        }, 500);
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).on('error', reject);
    });
    server.close();
    expect(received.equals(body)).toBe(true);
    expect(targetFinishedAt).toBeGreaterThan(resumedAt);
  });

  it('ends the client response when the target dies mid-body', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    await addRoute(proxy, '/user/flaky', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await expect(request(proxy.publicUrl, '/user/flaky/download')).rejects.toThrow();
    server.close();
  });

  it('exports Prometheus metrics to token holders only', async () => {
    expect((await request(proxy.apiUrl, '/metrics')).status).toBe(403);
    const res = await request(proxy.apiUrl, '/metrics', { headers: auth });
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/labhub_proxy_requests_total\{status="200"\} \d+/);
    expect(res.body).toMatch(/labhub_proxy_requests_total\{status="503"\} \d+/);
    expect(res.body).toMatch(/labhub_proxy_upstream_errors_total\{code="ECONNREFUSED"\} \d+/);
    expect(res.body).toMatch(/labhub_proxy_routes \d+/);
    expect(res.body).toContain('labhub_proxy_open_websockets 0');
    expect(res.body).toContain('labhub_proxy_response_latency_seconds_bucket');
  });
});

describe('tokens the hub revoked (route data revoked_tokens)', () => {
  let alice: Backend;
  let proxy: RunningProxy;
  const digest = (token: string) => createHash('sha256').update(token).digest('hex');
  /** How jupyterhub-singleuser's cookie looks: a tornado v2 signed value holding the token, quoted by Python. */
  const singleuserCookie = (token: string, name = 'jupyterhub-user-alice') => {
    const value = Buffer.from(token).toString('base64');
    return `${name}="2|1:0|10:1700000000|${name.length}:${name}|${value.length}:${value}|${'0'.repeat(64)}"`;
  };
  const revoke = (revoked: Record<string, string>) => addRoute(proxy, '/user/alice/', alice.url, { jupyterhub: true, revoked_tokens: revoked });
  const openAs = (headers: Record<string, string>) => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`${proxy.publicUrl.replace('http', 'ws')}/user/alice/api/kernels/k1/channels`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.once('error', reject);
  });

  beforeAll(async () => {
    alice = await startBackend('alice');
    proxy = await startTestProxy();
    await addRoute(proxy, '/user/alice/', alice.url, { jupyterhub: true });
  });

  afterAll(async () => {
    await proxy.close();
    await alice.close();
  });

  it('refuses a revoked token in singleuser\'s cookie, a header or the query with 403, and clears the cookie', async () => {
    const future = new Date(Date.now() + 60_000).toISOString();
    await revoke({ [digest('bob-token')]: future, [digest('old-token')]: new Date(Date.now() - 1000).toISOString(), 'not-a-digest': future });
    const refused = await request(proxy.publicUrl, '/user/alice/api/status', { headers: { cookie: `_xsrf=abc; ${singleuserCookie('bob-token')}` } });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toEqual({ status: 403, message: expect.stringContaining('revoked') });
    expect(refused.headers['set-cookie']).toEqual(['jupyterhub-user-alice=; Path=/user/alice/; Max-Age=0; HttpOnly']);
    expect((await request(proxy.publicUrl, '/user/alice/tree', { headers: { authorization: 'token bob-token' } })).status).toBe(403);
    expect((await request(proxy.publicUrl, '/user/alice/api/status?token=bob-token')).status).toBe(403);
    const hostCookie = await request(proxy.publicUrl, '/user/alice/lab', { headers: { cookie: singleuserCookie('bob-token', '__Host-jupyterhub-user-alice') } });
    expect(hostCookie.headers['set-cookie']).toEqual(['__Host-jupyterhub-user-alice=; Path=/; Max-Age=0; Secure; HttpOnly']);
    const before = alice.requests.length;
    // The owner's token, an expired revocation, and no token at all pass on to the server, which decides.
    for (const headers of [{ cookie: singleuserCookie('alice-token') }, { cookie: singleuserCookie('old-token') }, {}] as Record<string, string>[]) {
      expect((await request(proxy.publicUrl, '/user/alice/api/status', { headers })).status).toBe(200);
    }
    expect(alice.requests.length).toBe(before + 3);
    await revoke({});
    expect((await request(proxy.publicUrl, '/user/alice/api/status', { headers: { cookie: singleuserCookie('bob-token') } })).status).toBe(200);
  });

  it('closes the websockets opened with a token when it is revoked, refuses new ones, and leaves the others open', async () => {
    await revoke({});
    const bobs = await openAs({ cookie: singleuserCookie('bob-token') });
    const alices = await openAs({ cookie: singleuserCookie('alice-token') });
    const bobClosed = once(bobs, 'close');
    await revoke({ [digest('bob-token')]: new Date(Date.now() + 60_000).toISOString() });
    await bobClosed;
    const reply = nextMessage(alices);
    alices.send('still here');
    expect(await reply).toBe('alice:still here');
    await expect(openAs({ cookie: singleuserCookie('bob-token') })).rejects.toThrow('status 403');
    alices.close();
    await waitFor(() => proxy.proxy.openWebsockets === 0);
  });
});

describe('proxy errors and options', () => {
  let backend: Backend;
  let errorPages: http.Server;
  let errorPagesUrl: string;
  const errorRequests: string[] = [];

  beforeAll(async () => {
    backend = await startBackend('server');
    errorPages = http.createServer((req, res) => {
      errorRequests.push(req.url ?? '');
      const code = Number(/\/hub\/error\/(\d+)/.exec(req.url ?? '')?.[1]);
      res.writeHead(code, { 'content-type': 'text/x-hub-error' });
      res.end(`hub error page ${code} for ${new URL(req.url ?? '', 'http://x').searchParams.get('url')}`);
    });
    errorPages.listen(0, '127.0.0.1');
    await once(errorPages, 'listening');
    errorPagesUrl = `http://127.0.0.1:${(errorPages.address() as AddressInfo).port}/hub/error`;
  });

  afterAll(async () => {
    await backend.close();
    errorPages.close();
  });

  it('answers 404 without a route or default target', async () => {
    const proxy = await startTestProxy();
    try {
      const res = await request(proxy.publicUrl, '/user/nobody/');
      expect(res.status).toBe(404);
      expect(res.body).toContain('404 Not Found');
      await expect(openWebsocket(`${proxy.publicUrl.replace('http', 'ws')}/user/nobody/ws`)).rejects.toThrow('status 404');
    } finally {
      await proxy.close();
    }
  });

  it('relays error pages from the error target with the original status', async () => {
    const proxy = await startTestProxy({ errorTarget: errorPagesUrl });
    try {
      await addRoute(proxy, '/user/dead', `http://127.0.0.1:${await freePort()}`);
      const dead = await request(proxy.publicUrl, '/user/dead/lab?token=abc');
      expect(dead.status).toBe(503);
      expect(dead.headers['content-type']).toBe('text/x-hub-error');
      expect(dead.body).toBe('hub error page 503 for /user/dead/lab?token=abc');
      const missing = await request(proxy.publicUrl, '/nowhere');
      expect(missing.status).toBe(404);
      expect(missing.body).toBe('hub error page 404 for /nowhere');
      expect(errorRequests).toContain('/hub/error/404?url=%2Fnowhere');
    } finally {
      await proxy.close();
    }
  });

  it('falls back to the built-in page when the error target is down', async () => {
    const proxy = await startTestProxy({ errorTarget: `http://127.0.0.1:${await freePort()}/hub/error` });
    try {
      const res = await request(proxy.publicUrl, '/nowhere');
      expect(res.status).toBe(404);
      expect(res.body).toContain('404 Not Found');
    } finally {
      await proxy.close();
    }
  });

  it('does not hang on a target that accepts but never answers (proxy timeout)', async () => {
    const silent = http.createServer(() => undefined);
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const proxy = await startTestProxy({ proxyTimeoutMs: 200 });
    try {
      await addRoute(proxy, '/user/silent', `http://127.0.0.1:${(silent.address() as AddressInfo).port}`);
      const started = Date.now();
      expect((await request(proxy.publicUrl, '/user/silent/')).status).toBe(503);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await proxy.close();
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('does not hang on a target host that never completes the connection (connect timeout)', async () => {
    // A listener that never accepts, with its accept queue filled: the kernel drops further SYNs, so a new
    // connection stays "connecting" like one to a vanished host. Node accepts by itself, hence Python.
    const listener = spawn('python3', ['-c', STALLED_LISTENER], { stdio: ['ignore', 'pipe', 'inherit'] });
    const proxy = await startTestProxy({ connectTimeoutMs: 300 });
    const fillers: net.Socket[] = [];
    try {
      const [portLine] = (await once(listener.stdout!, 'data')) as [Buffer];
      const port = Number(String(portLine).trim());
      for (let i = 0; i < 2; i++) fillers.push(net.connect(port, '127.0.0.1').on('error', () => undefined));
      await sleep(100);
      await addRoute(proxy, '/user/gone', `http://127.0.0.1:${port}`);
      const started = Date.now();
      expect((await request(proxy.publicUrl, '/user/gone/')).status).toBe(503);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      for (const socket of fillers) socket.destroy();
      listener.kill();
      await proxy.close();
    }
  });

  it('honours --no-include-prefix, --no-prepend-path and --no-x-forward', async () => {
    const proxy = await startTestProxy({ includePrefix: false, prependPath: false, xfwd: false });
    try {
      await addRoute(proxy, '/user/foo%40bar', `${backend.url}/ignored/`);
      const echo = JSON.parse((await request(proxy.publicUrl, '/user/foo%40bar/api/x?q=1')).body) as Echo;
      expect(echo.url).toBe('/api/x?q=1');
      expect(echo.headers['x-forwarded-for']).toBeUndefined();
    } finally {
      await proxy.close();
    }
  });

  it('closes websockets when it stops', async () => {
    const proxy = await startTestProxy({ defaultTarget: backend.url });
    const ws = await openWebsocket(`${proxy.publicUrl.replace('http', 'ws')}/ws`);
    const closed = once(ws, 'close');
    await proxy.close();
    await closed;
    expect(proxy.proxy.openWebsockets).toBe(0);
  });
});

describe('proxy over TLS', () => {
  let pki: TestPki;
  /** What a client of the proxy trusts and shows: the test CA, and the client certificate it signed. */
  let trusted: { ca: Buffer };
  let withCert: { ca: Buffer; key: Buffer; cert: Buffer };
  /** Serves with the CA's server certificate and asks for clients' certificates, as JupyterHub's internal_ssl does. */
  let mutual: TlsOptions;
  let targetCerts: TargetTlsOptions;
  /** An https target that only lets in clients with a certificate from the test CA. */
  let mtls: Backend;
  /** An https target with a self-signed certificate. */
  let stranger: Backend;

  beforeAll(async () => {
    pki = makeTestPki();
    const server = { key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert) };
    trusted = { ca: pki.read(pki.ca) };
    withCert = { ...trusted, key: pki.read(pki.clientKey), cert: pki.read(pki.clientCert) };
    mutual = { ...server, ca: pki.read(pki.bundle), requestCert: true, rejectUnauthorized: true };
    targetCerts = { key: withCert.key, cert: withCert.cert, ca: pki.read(pki.bundle) };
    [mtls, stranger] = await Promise.all([
      startBackend('mtls', mutual),
      startBackend('stranger', { key: pki.read(pki.strangerKey), cert: pki.read(pki.strangerCert) }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([mtls?.close(), stranger?.close()]);
    pki?.remove();
  });

  it('serves HTTPS and its API over HTTPS, forwarding X-Forwarded-Proto https', async () => {
    const tls = { key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert) };
    const backend = await startBackend('tls');
    const proxy = await startTestProxy({ tls, apiTls: tls, defaultTarget: backend.url });
    try {
      expect(proxy.publicUrl).toMatch(/^https:/);
      const echo = JSON.parse((await httpsRequest(`${proxy.publicUrl}/hub/`, trusted)).body) as Echo;
      expect(echo).toMatchObject({ backend: 'tls', url: '/hub/' });
      expect(echo.headers['x-forwarded-proto']).toBe('https');
      expect((await httpsRequest(`${proxy.apiUrl}/api/routes`, { ...trusted, headers: auth })).status).toBe(200);
    } finally {
      await proxy.close();
      await backend.close();
    }
  });

  it('requires client certificates on the public port and the API when asked to (--ssl-*, --api-ssl-*)', async () => {
    const backend = await startBackend('mutual');
    const proxy = await startTestProxy({ tls: mutual, apiTls: mutual, defaultTarget: backend.url });
    try {
      await expect(httpsRequest(`${proxy.apiUrl}/api/routes`, { ...trusted, headers: auth })).rejects.toThrow();
      await expect(httpsRequest(`${proxy.publicUrl}/hub/`, trusted)).rejects.toThrow();
      await expect(
        httpsRequest(`${proxy.apiUrl}/api/routes`, { ...trusted, key: pki.read(pki.strangerKey), cert: pki.read(pki.strangerCert), headers: auth }),
      ).rejects.toThrow();
      expect((await httpsRequest(`${proxy.apiUrl}/api/routes`, { ...withCert, headers: auth })).status).toBe(200);
      expect((JSON.parse((await httpsRequest(`${proxy.publicUrl}/hub/`, withCert)).body) as Echo).backend).toBe('mutual');
    } finally {
      await proxy.close();
      await backend.close();
    }
  });

  it('shows its client certificate to https targets that require one, and gets 503 without it', async () => {
    const proxy = await startTestProxy({ targetTls: targetCerts });
    const without = await startTestProxy({ targetTls: { ca: targetCerts.ca } });
    try {
      for (const p of [proxy, without]) await addRoute(p, '/user/mtls', mtls.url);
      const echo = JSON.parse((await request(proxy.publicUrl, '/user/mtls/api/status')).body) as Echo;
      expect(echo).toMatchObject({ backend: 'mtls', url: '/user/mtls/api/status' });
      expect(echo.headers['x-forwarded-proto']).toBe('http');
      const refused = await request(without.publicUrl, '/user/mtls/api/status');
      expect(refused.status).toBe(503);
    } finally {
      await Promise.all([proxy.close(), without.close()]);
    }
  });

  it('proxies websockets to a wss target with its client certificate', async () => {
    const proxy = await startTestProxy({ targetTls: targetCerts });
    const without = await startTestProxy({ targetTls: { ca: targetCerts.ca } });
    try {
      for (const p of [proxy, without]) await addRoute(p, '/user/mtls', mtls.url);
      const ws = await openWebsocket(`${proxy.publicUrl.replace('http', 'ws')}/user/mtls/api/kernels/k/channels`);
      const reply = nextMessage(ws);
      ws.send('over tls');
      expect(await reply).toBe('mtls:over tls');
      ws.close();
      await expect(openWebsocket(`${without.publicUrl.replace('http', 'ws')}/user/mtls/api/kernels/k/channels`)).rejects.toThrow('status 503');
    } finally {
      await Promise.all([proxy.close(), without.close()]);
    }
  });

  it('fetches error pages from an https error target with its client certificate', async () => {
    const proxy = await startTestProxy({ targetTls: targetCerts, errorTarget: `${mtls.url}/hub/error` });
    try {
      const res = await request(proxy.publicUrl, '/nowhere');
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body)).toMatchObject({ backend: 'mtls', url: '/hub/error/404?url=%2Fnowhere' });
    } finally {
      await proxy.close();
    }
  });

  it('refuses targets with certificates from an unknown CA (503), unless insecure', async () => {
    const strict = await startTestProxy({ targetTls: { ca: targetCerts.ca } });
    const defaults = await startTestProxy();
    const insecure = await startTestProxy({ targetTls: { rejectUnauthorized: false } });
    try {
      for (const p of [strict, defaults, insecure]) await addRoute(p, '/user/stranger', stranger.url);
      expect((await request(strict.publicUrl, '/user/stranger/')).status).toBe(503);
      expect((await request(defaults.publicUrl, '/user/stranger/')).status).toBe(503);
      await expect(openWebsocket(`${defaults.publicUrl.replace('http', 'ws')}/user/stranger/ws`)).rejects.toThrow('status 503');
      expect((JSON.parse((await request(insecure.publicUrl, '/user/stranger/')).body) as Echo).backend).toBe('stranger');
      const ws = await openWebsocket(`${insecure.publicUrl.replace('http', 'ws')}/user/stranger/ws`);
      const reply = nextMessage(ws);
      ws.send('anyway');
      expect(await reply).toBe('stranger:anyway');
      ws.close();
    } finally {
      await Promise.all([strict.close(), defaults.close(), insecure.close()]);
    }
  });
});

describe('custom headers', () => {
  it('are set on every proxied request and websocket, replacing what the client sent', async () => {
    const backend = await startBackend('custom');
    const proxy = await startTestProxy({
      defaultTarget: backend.url,
      customHeaders: [['X-Hub-Secret', 's3cret'], ['X-Forwarded-Proto', 'https']],
    });
    try {
      const echo = JSON.parse((await request(proxy.publicUrl, '/hub/', { headers: { 'x-hub-secret': 'forged' } })).body) as Echo;
      expect(echo.headers['x-hub-secret']).toBe('s3cret');
      expect(echo.headers['x-forwarded-proto']).toBe('https');
      expect(echo.headers['x-forwarded-for']).toBe('127.0.0.1');
      const ws = await openWebsocket(`${proxy.publicUrl.replace('http', 'ws')}/ws`);
      ws.close();
      expect(backend.upgrades.at(-1)?.['x-hub-secret']).toBe('s3cret');
    } finally {
      await proxy.close();
      await backend.close();
    }
  });
});

describe('proxy REST API', () => {
  let proxy: RunningProxy;
  const target = 'http://127.0.0.1:9';

  beforeAll(async () => {
    proxy = await startTestProxy();
  });

  afterAll(async () => {
    await proxy.close();
  });

  it('refuses requests without the right token with 403', async () => {
    expect((await request(proxy.apiUrl, '/api/routes')).status).toBe(403);
    expect((await request(proxy.apiUrl, '/api/routes', { headers: { authorization: 'token wrong' } })).status).toBe(403);
    expect((await request(proxy.apiUrl, '/api/routes', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(403);
    const res = await request(proxy.apiUrl, '/api/routes', { method: 'POST', headers: { authorization: 'token x' }, body: `{"target":"${target}"}` });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ status: 403 });
    expect(proxy.routes.size).toBe(0);
  });

  it('adds, reads, lists and deletes routes', async () => {
    const add = await api(proxy, 'POST', '/user/alice/', { target, jupyterhub: true, user: 'alice', server_name: '' });
    expect(add.status).toBe(201);
    expect(add.body).toBe('');
    const one = await api(proxy, 'GET', '/user/alice');
    expect(one.status).toBe(200);
    expect(JSON.parse(one.body)).toMatchObject({ target, jupyterhub: true, user: 'alice', server_name: '' });
    expect(JSON.parse(one.body).last_activity).toMatch(/Z$/);

    await addRoute(proxy, '/user/foo%40bar', target);
    await addRoute(proxy, '', target, { hub: true });
    const all = JSON.parse((await api(proxy, 'GET', '')).body) as Record<string, { target: string }>;
    expect(Object.keys(all).sort()).toEqual(['/', '/user/alice', '/user/foo@bar']);

    expect((await api(proxy, 'DELETE', '/user/foo%40bar')).status).toBe(204);
    expect((await api(proxy, 'DELETE', '/user/foo%40bar')).status).toBe(404);
    expect((await api(proxy, 'DELETE', '')).status).toBe(204);
    expect((await api(proxy, 'GET', '/user/foo@bar')).status).toBe(404);
    expect(Object.keys(JSON.parse((await api(proxy, 'GET', '/')).body) as object)).toEqual(['/user/alice']);
  });

  it('filters by inactive_since and inactiveSince', async () => {
    await addRoute(proxy, '/user/filtered', target);
    const future = new Date(Date.now() + 60_000).toISOString();
    const past = new Date(Date.now() - 60_000).toISOString();
    for (const param of ['inactive_since', 'inactiveSince']) {
      const later = JSON.parse((await api(proxy, 'GET', `?${param}=${future}`)).body) as object;
      expect(Object.keys(later)).toContain('/user/filtered');
      const earlier = JSON.parse((await api(proxy, 'GET', `?${param}=${past}`)).body) as object;
      expect(Object.keys(earlier)).not.toContain('/user/filtered');
    }
  });

  it('validates input with JSON errors', async () => {
    const bad = async (res: Promise<RawResponse>, status: number) => {
      const { status: actual, body } = await res;
      expect(actual).toBe(status);
      expect(JSON.parse(body)).toMatchObject({ status, message: expect.any(String) });
    };
    await bad(api(proxy, 'GET', '?inactive_since=yesterday'), 400);
    await bad(request(proxy.apiUrl, '/api/routes/x', { method: 'POST', headers: auth, body: '{not json' }), 400);
    await bad(request(proxy.apiUrl, '/api/routes/x', { method: 'POST', headers: auth, body: '' }), 400);
    await bad(api(proxy, 'POST', '/x', { nottarget: 1 }), 400);
    await bad(api(proxy, 'POST', '/x', { target: 5 }), 400);
    await bad(api(proxy, 'POST', '/x', [target]), 400);
    await bad(api(proxy, 'POST', '/x', null), 400);
    await bad(api(proxy, 'POST', '/x', { target: 'not a url' }), 400);
    await bad(request(proxy.apiUrl, '/api/routes/%E0%A4%A', { headers: auth }), 400);
    await bad(api(proxy, 'GET', '/user/nobody'), 404);
    await bad(request(proxy.apiUrl, '/api/other', { headers: auth }), 404);
    await bad(request(proxy.apiUrl, '/api/routes/x', { method: 'PUT', headers: auth, body: '{}' }), 405);
    await bad(request(proxy.apiUrl, '/api/routes/x', { method: 'POST', headers: auth, body: Buffer.alloc(2 * 1024 * 1024, 0x20) }), 413);
    expect(proxy.routes.get('/x')).toBeUndefined();
  });

  it('drives the proxy through ChpProxyClient', async () => {
    const client = new ChpProxyClient({ apiUrl: `${proxy.apiUrl}/`, authToken: TOKEN });
    await client.addRoute('/user/client%40x/', target, { jupyterhub: true, user: 'client@x', server_name: '' });
    await client.addRoute('/user/client%40x/lab2/', target, { jupyterhub: true, user: 'client@x', server_name: 'lab2' });
    const routes = await client.getRoutes();
    expect(routes['/user/client%40x']).toMatchObject({ target, jupyterhub: true, user: 'client@x' });
    expect(routes['/user/client%40x']?.last_activity).toMatch(/Z$/);
    expect(Object.keys(routes)).toContain('/user/client%40x/lab2');
    for (const key of Object.keys(routes)) await client.deleteRoute(key);
    expect(await client.getRoutes()).toEqual({});
    await client.deleteRoute('/user/never-there/');
  });

  it('ChpProxyClient fails fast on a rejected token and after bounded retries when the API is down', async () => {
    const wrong = new ChpProxyClient({ apiUrl: proxy.apiUrl, authToken: 'wrong', retryDelaysMs: [1000, 1000] });
    const started = Date.now();
    const rejected = await wrong.getRoutes().catch((err: unknown) => err);
    expect(rejected).toBeInstanceOf(ProxyApiError);
    expect((rejected as ProxyApiError).status).toBe(403);
    expect(Date.now() - started).toBeLessThan(1000);

    const down = new ChpProxyClient({ apiUrl: `http://127.0.0.1:${await freePort()}`, retryDelaysMs: [10, 10] });
    await expect(down.addRoute('/user/x', target, {})).rejects.toThrow(/failed after 3 attempts: ECONNREFUSED/);
  });

  it('ChpProxyClient retries 5xx answers', async () => {
    let calls = 0;
    const flaky = http.createServer((_req, res) => {
      calls += 1;
      res.writeHead(calls < 3 ? 502 : 200, { 'content-type': 'application/json' });
      res.end(calls < 3 ? '{"message":"starting"}' : '{"/":{"target":"http://h"}}');
    });
    flaky.listen(0, '127.0.0.1');
    await once(flaky, 'listening');
    try {
      const client = new ChpProxyClient({ apiUrl: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`, retryDelaysMs: [10, 10, 10] });
      expect(await client.getRoutes()).toEqual({ '/': { target: 'http://h' } });
      expect(calls).toBe(3);
    } finally {
      flaky.close();
    }
  });
});

describe('proxy CLI (dist/proxy/main.js)', () => {
  const mainJs = path.join(repoRoot, 'dist/proxy/main.js');

  function runCli(args: string[], env: Record<string, string> = {}): ChildProcess {
    return spawn(process.execPath, [mainJs, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async function exitOf(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stdout, stderr };
  }

  /** The public and API URLs from the proxy's startup log line. */
  function listening(child: ChildProcess): Promise<{ proxy: string; api: string }> {
    let output = '';
    return new Promise((resolve, reject) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const line = output.split('\n').find((l) => l.includes('proxy listening'));
        if (line) resolve(JSON.parse(line) as { proxy: string; api: string });
      });
      child.once('exit', () => reject(new Error(`proxy exited early: ${output}`)));
    });
  }

  it('serves, takes routes over the API, and stops cleanly on SIGTERM', async () => {
    const backend = await startBackend('cli');
    const child = runCli(['--ip', '127.0.0.1', '--port', '0', '--api-port', '0', '--default-target', backend.url, '--log-level', 'info'], {
      CONFIGPROXY_AUTH_TOKEN: TOKEN,
    });
    const exited = exitOf(child);
    try {
      const urls = await listening(child);
      expect((JSON.parse((await request(urls.proxy, '/hub/home')).body) as Echo).backend).toBe('cli');
      expect((await request(urls.api, '/api/routes')).status).toBe(403);
      const routes = JSON.parse((await request(urls.api, '/api/routes', { headers: auth })).body) as Record<string, { target: string }>;
      expect(routes['/']?.target).toBe(backend.url);
      child.kill('SIGTERM');
      expect((await exited).code).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await backend.close();
    }
  });

  it.each([
    [['--port', 'eighty'], '--port'],
    [['--port', '70000'], '--port'],
    [['--api-port', '-1'], '--api-port'],
    [['--timeout', '5s'], '--timeout'],
    [['--default-target', 'localhost:8081'], '--default-target'],
    [['--error-target', 'ftp://x'], '--error-target'],
    [['--log-level', 'loud'], '--log-level'],
    [['--ssl-key', '/nonexistent/key.pem'], '--ssl-cert'],
    [['--ip', 'not an ip'], '--ip'],
    [['--host-routing'], '--host-routing'],
    [['--custom-header', 'X-Hub'], '--custom-header'],
    [['--custom-header', ':value'], '--custom-header'],
    [['--custom-header', 'X Hub:1'], '--custom-header'],
    [['--custom-header', 'X-Ok:1', '--custom-header', 'X-Hub:a\r\nX-Evil: 1'], '--custom-header'],
    [['--custom-header', 'Content-Length:5'], '--custom-header'],
    [['--custom-header'], '--custom-header'],
    [['--ssl-ca', '/etc/hostname'], '--ssl-ca'],
    [['--ssl-request-cert'], '--ssl-request-cert'],
    [['--api-ssl-reject-unauthorized'], '--api-ssl-reject-unauthorized'],
    [['--client-ssl-key', '/nonexistent/key.pem'], '--client-ssl-cert'],
    [['--client-ssl-cert', '/nonexistent/cert.pem'], '--client-ssl-key'],
    [['--client-ssl-ca', '/nonexistent/ca.pem'], '--client-ssl-ca'],
    [['--insecure', '--client-ssl-reject-unauthorized'], '--insecure'],
  ])('exits 2 naming the flag for %j', async (args, flag) => {
    const { code, stderr } = await exitOf(runCli(args));
    expect(code).toBe(2);
    expect(stderr).toContain(flag);
    expect(stderr).not.toContain('X-Evil');
  });

  describe('with TLS flags', () => {
    let pki: TestPki;
    let mtls: Backend;

    beforeAll(async () => {
      pki = makeTestPki();
      mtls = await startBackend('cli-mtls', {
        key: pki.read(pki.serverKey), cert: pki.read(pki.serverCert), ca: pki.read(pki.ca), requestCert: true, rejectUnauthorized: true,
      });
    });

    afterAll(async () => {
      await mtls?.close();
      pki?.remove();
    });

    it.each([
      [['--ssl-key', 'stranger.key', '--ssl-cert', 'server.pem'], '--ssl-key'],
      [['--api-ssl-key', 'server.key', '--api-ssl-cert', 'ca.pem', '--api-ssl-ca', 'bundle.pem'], '--api-ssl-cert'],
      [['--api-ssl-key', 'server.key', '--api-ssl-cert', 'server.pem', '--api-ssl-ca', 'server.key'], '--api-ssl-ca'],
      [['--api-ssl-key', 'server.key', '--api-ssl-cert', 'server.pem', '--api-ssl-reject-unauthorized'], '--api-ssl-request-cert'],
      [['--client-ssl-key', 'client.pem', '--client-ssl-cert', 'client.pem'], '--client-ssl-key'],
      [['--client-ssl-key', 'client.key', '--client-ssl-cert', 'client.pem', '--client-ssl-ca', 'nowhere.pem'], '--client-ssl-ca'],
    ])('exits 2 naming the flag for unusable files: %j', async (args, flag) => {
      const { code, stderr } = await exitOf(runCli(args.map((arg) => (arg.startsWith('--') ? arg : path.join(pki.dir, arg)))));
      expect(code).toBe(2);
      expect(stderr).toContain(flag);
    });

    // JupyterHub's internal_ssl command line: mutual TLS on the API and towards targets.
    it.each([1, 2])('serves the API to certificate holders only and reaches targets with its client certificate (%i worker(s))', async (workers) => {
      const child = runCli(
        [
          '--ip', '127.0.0.1', '--port', '0', '--api-port', '0', '--log-level', 'info', '--workers', String(workers),
          '--api-ssl-key', pki.serverKey, '--api-ssl-cert', pki.serverCert, '--api-ssl-ca', pki.bundle, '--api-ssl-request-cert', '--api-ssl-reject-unauthorized',
          '--client-ssl-key', pki.clientKey, '--client-ssl-cert', pki.clientCert, '--client-ssl-ca', pki.bundle, '--client-ssl-request-cert', '--client-ssl-reject-unauthorized',
          '--custom-header', 'X-Hub-Secret: s3cret', '--default-target', mtls.url,
        ],
        { CONFIGPROXY_AUTH_TOKEN: TOKEN },
      );
      const exited = exitOf(child);
      try {
        const urls = await listening(child);
        expect(urls.api).toMatch(/^https:/);
        const ca = pki.read(pki.ca);
        await expect(httpsRequest(`${urls.api}/api/routes`, { ca, headers: auth })).rejects.toThrow();
        const routes = await httpsRequest(`${urls.api}/api/routes`, { ca, key: pki.read(pki.clientKey), cert: pki.read(pki.clientCert), headers: auth });
        expect(routes.status).toBe(200);
        expect(JSON.parse(routes.body)).toMatchObject({ '/': { target: mtls.url } });
        const echo = JSON.parse((await request(urls.proxy, '/hub/api')).body) as Echo;
        expect(echo).toMatchObject({ backend: 'cli-mtls', url: '/hub/api' });
        expect(echo.headers['x-hub-secret']).toBe('s3cret');
        const ws = await openWebsocket(`${urls.proxy.replace('http', 'ws')}/api/kernels/k/channels`);
        const reply = nextMessage(ws);
        ws.send('wss');
        expect(await reply).toBe('cli-mtls:wss');
        ws.close();
        expect(mtls.upgrades.at(-1)?.['x-hub-secret']).toBe('s3cret');
        child.kill('SIGTERM');
        expect((await exited).code).toBe(0);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });

  it('prints help', async () => {
    const { code, stdout } = await exitOf(runCli(['--help']));
    expect(code).toBe(0);
    expect(stdout).toContain('--default-target');
  });
});
