/**
 * The proxies of `npm run bench:proxy`, each started on free loopback ports with N routes `/user/u<i>` to one
 * backend: nginx (a generated config, restarted for each route count), configurable-http-proxy 5.3.0 and
 * LabHub's proxy (routes added through their REST API), and "direct" (no proxy, the backend itself).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { pool } from './pool.js';
import { freePort, ManagedProcess, waitFor200 } from './process.js';
import { REPO } from './hubs.js';

export const CHP_BIN = '/opt/labhub/chp/node_modules/.bin/configurable-http-proxy';
export const NGINX_BIN = '/usr/sbin/nginx';
const LABHUB_PROXY = join(REPO, 'dist/proxy/main.js');
export const TOKEN = 'bench-proxy-token';
const API_CONCURRENCY = 32;

export interface BenchTarget {
  name: string;
  /** Where requests go, e.g. `http://127.0.0.1:40000`. */
  url: string;
  /** The CHP REST API of LabHub's proxy and CHP. */
  apiUrl?: string;
  /** Process ids that make up the proxy (for CPU accounting and soak checks). */
  pids(): number[];
  /** Makes the table hold routes `/user/u0` … `/user/u<count-1>`, all to the backend. */
  setRoutes(count: number): Promise<void>;
  stop(): Promise<void>;
}

export function routePath(i: number): string {
  return `/user/u${i}`;
}

export function direct(backendUrl: string): BenchTarget {
  return { name: 'direct', url: backendUrl, pids: () => [], setRoutes: async () => undefined, stop: async () => undefined };
}

/** A CHP-API proxy (LabHub's or CHP) as a child process; routes are added through the API and never removed. */
async function apiProxy(name: string, cmd: string, args: string[], dir: string, backendUrl: string): Promise<BenchTarget> {
  const [port, apiPort] = [await freePort(), await freePort()];
  const proc = new ManagedProcess(name, {
    cmd,
    args: [...args, '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(apiPort), '--log-level', 'warn'],
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: TOKEN },
    logFile: join(dir, `${name}.log`),
  });
  proc.start();
  const url = `http://127.0.0.1:${port}`;
  await waitFor200(`${url}/_chp_healthz`, performance.now(), () => proc.running, 30_000);
  const agent = new Agent({ keepAlive: true, maxSockets: API_CONCURRENCY });
  let routes = 0;
  return {
    name,
    url,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    pids: () => (proc.pid ? [proc.pid, ...childPids(proc.pid)] : []),
    async setRoutes(count) {
      const missing = Array.from({ length: Math.max(0, count - routes) }, (_, k) => routes + k);
      await pool(missing, API_CONCURRENCY, (i) => postRoute(agent, apiPort, routePath(i), backendUrl));
      routes = Math.max(routes, count);
    },
    async stop() {
      agent.destroy();
      await proc.stop(10_000);
    },
  };
}

function postRoute(agent: Agent, apiPort: number, path: string, target: string): Promise<void> {
  const body = JSON.stringify({ target });
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: apiPort, method: 'POST', path: `/api/routes${path}`, agent, headers: { authorization: `token ${TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`adding route ${path}: ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The worker processes of a multi-process proxy, from /proc (Linux). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function labhubProxy(dir: string, backendUrl: string, workers: number): Promise<BenchTarget> {
  return apiProxy('labhub', process.execPath, [LABHUB_PROXY, '--workers', String(workers)], dir, backendUrl);
}

export function chp(dir: string, backendUrl: string): Promise<BenchTarget> {
  return apiProxy('chp', CHP_BIN, [], dir, backendUrl);
}

/**
 * nginx as a reverse proxy with the usual production settings: upstream keep-alive, websocket upgrade headers,
 * no access log, and streaming (no temp files) for large bodies. The routes are a `map` from the first two path
 * segments to the upstream (a hash lookup per request): one prefix `location` per route takes nginx minutes to
 * load at 100,000 routes.
 */
export async function nginx(dir: string, backendUrl: string, workers: number): Promise<BenchTarget> {
  const port = await freePort();
  const backend = new URL(backendUrl).host;
  let proc: ManagedProcess | undefined;
  const stopNginx = async () => {
    await proc?.stop(10_000);
    proc = undefined;
  };
  const target: BenchTarget = {
    name: 'nginx',
    url: `http://127.0.0.1:${port}`,
    pids: () => (proc?.pid ? [proc.pid, ...childPids(proc.pid)] : []),
    async setRoutes(count) {
      await stopNginx();
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, nginxConfig(dir, port, backend, workers, count));
      proc = new ManagedProcess('nginx', { cmd: NGINX_BIN, args: ['-p', dir, '-c', conf, '-g', 'daemon off;'], env: process.env, logFile: join(dir, 'nginx.log') });
      proc.start();
      const probe = count > 0 ? `${routePath(0)}/x` : '/';
      await waitFor200(`${target.url}${probe}`, performance.now(), () => proc?.running ?? false, 120_000, 50);
    },
    stop: stopNginx,
  };
  return target;
}

function nginxConfig(dir: string, port: number, backend: string, workers: number, routes: number): string {
  const entries: string[] = [];
  for (let i = 0; i < routes; i++) entries.push(`    ${routePath(i)} backend;\n`);
  return `worker_processes ${workers};
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  map_hash_max_size ${Math.max(2048, routes * 2)};
  map_hash_bucket_size 64;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  map $route_key $route_upstream {
    default "";
${entries.join('')}  }
  upstream backend { server ${backend}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_max_temp_file_size 0;
    location ~ ^(/user/[^/]+) {
      set $route_key $1;
      if ($route_upstream = "") { return 404; }
      proxy_pass http://$route_upstream;
    }
  }
}
`;
}
