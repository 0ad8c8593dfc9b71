/**
 * `npm run bench:proxy-soak`: LabHub's proxy under BENCH_SOAK_S (600) seconds of mixed churn, then a check that
 * it gave back what it took. Not part of `npm test`.
 *
 * Load, all at once: HTTP clients on keep-alive and fresh connections fetching small, 1 MiB and slow streamed
 * answers; websocket clients looping connect, echo, close; long-lived websockets held for a few seconds; route
 * adds and deletes through the API; and every few seconds one of the backends is killed (cutting its streams and
 * websockets mid-way) and started again.
 *
 * Measured on the proxy's processes (primary and workers): open sockets and RSS after a warm-up and an idle
 * pause (the baseline), and again after the load and the same pause. Passes when sockets are back to the
 * baseline and RSS grew under 10%. Backends close idle keep-alive connections after 2 s, so pooled upstream
 * sockets do not count as leaks.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { envInt } from './lib/env.js';
import { REPO } from './lib/hubs.js';
import { cleanupAll, freePort, installSignalCleanup, keepTempDirs, makeTempDir, ManagedProcess, waitFor200 } from './lib/process.js';
import { labhubProxy, routePath, TOKEN } from './lib/proxies.js';

const settings = {
  durationS: envInt('BENCH_SOAK_S', 600, 10),
  warmupS: envInt('BENCH_SOAK_WARMUP_S', 60, 1),
  backends: envInt('BENCH_SOAK_BACKENDS', 4, 2),
  workers: envInt('BENCH_PROXY_WORKERS', 1, 1),
  keep: process.env.BENCH_KEEP === '1',
};
const IDLE_PAUSE_MS = 6_000;
const ROUTES = 200;

interface Backend {
  port: number;
  proc: ManagedProcess;
}

function socketsOf(pids: number[]): number {
  let count = 0;
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) count++;
      } catch {
        // closed meanwhile
      }
    }
  }
  return count;
}

function rssMiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return kib / 1024;
}

async function main(): Promise<void> {
  installSignalCleanup();
  keepTempDirs(settings.keep);
  const dir = makeTempDir('labhub-soak-');
  const backends: Backend[] = [];
  const startBackend = async (backend: Backend) => {
    backend.proc.start();
    await waitFor200(`http://127.0.0.1:${backend.port}/`, performance.now(), () => backend.proc.running, 30_000);
  };
  for (let i = 0; i < settings.backends; i++) {
    const port = await freePort();
    const proc = new ManagedProcess(`backend-${i}`, { cmd: process.execPath, args: [join(REPO, 'dist/bench/proxy-backend.js'), String(port), '2000'], env: process.env, logFile: join(dir, `backend-${i}.log`) });
    backends.push({ port, proc });
    await startBackend(backends[i]!);
  }
  const proxy = await labhubProxy(dir, `http://127.0.0.1:${backends[0]!.port}`, settings.workers);
  // Routes spread over the backends (lib/proxies' setRoutes points all to one).
  const api = new URL(proxy.url);
  const postRoute = (path: string, port: number) =>
    fetch(`${proxy.apiUrl}/api/routes${path}`, { method: 'POST', headers: { authorization: `token ${TOKEN}` }, body: JSON.stringify({ target: `http://127.0.0.1:${port}` }) });
  for (let i = 0; i < ROUTES; i++) await postRoute(routePath(i), backends[i % backends.length]!.port);

  let running = true;
  const counts = { http: 0, httpErrors: 0, ws: 0, wsErrors: 0, kills: 0, routeChanges: 0 };
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 16 });
  const pick = () => Math.floor(Math.random() * ROUTES);

  const httpClient = async (agent: Agent | false) => {
    while (running) {
      const kind = ['', '/big', '/stream'][Math.floor(Math.random() * 3)]!;
      const ok = await new Promise<boolean>((resolve) => {
        const req = get({ host: '127.0.0.1', port: api.port, path: `${routePath(pick())}/x${kind}`, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode === 200));
          res.on('error', () => resolve(false));
        });
        req.setTimeout(30_000, () => req.destroy());
        req.on('error', () => resolve(false));
      });
      if (ok) counts.http++;
      else counts.httpErrors++;
    }
  };

  const wsClient = async (holdMs: number) => {
    while (running) {
      const ok = await new Promise<boolean>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${api.port}${routePath(pick())}/ws`);
        const done = (result: boolean) => {
          ws.terminate();
          resolve(result);
        };
        ws.once('open', () => ws.send('ping'));
        ws.once('message', () => (holdMs ? setTimeout(() => done(true), Math.random() * holdMs) : done(true)));
        ws.once('error', () => done(false));
        ws.once('close', () => resolve(false));
      });
      if (ok) counts.ws++;
      else counts.wsErrors++;
    }
  };

  const killer = async () => {
    while (running) {
      await sleep(5_000);
      if (!running) break;
      const victim = backends[1 + Math.floor(Math.random() * (backends.length - 1))]!;
      victim.proc.killGroup();
      await victim.proc.exited;
      counts.kills++;
      await sleep(1_000);
      await startBackend(victim);
    }
  };

  const routeChurn = async () => {
    let n = ROUTES;
    while (running) {
      await sleep(200);
      const path = routePath(n++);
      await postRoute(path, backends[n % backends.length]!.port).catch(() => undefined);
      await fetch(`${proxy.apiUrl}/api/routes${path}`, { method: 'DELETE', headers: { authorization: `token ${TOKEN}` } }).catch(() => undefined);
      counts.routeChanges += 2;
    }
  };

  const measure = () => ({ sockets: socketsOf(proxy.pids()), rssMiB: Math.round(rssMiB(proxy.pids()) * 10) / 10 });
  const startLoad = () => [
    ...Array.from({ length: 8 }, () => httpClient(keepAlive)),
    ...Array.from({ length: 4 }, () => httpClient(false)),
    ...Array.from({ length: 4 }, () => wsClient(0)),
    ...Array.from({ length: 4 }, () => wsClient(5_000)),
    killer(),
    routeChurn(),
  ];

  const idle = measure();
  console.error(`idle before load: ${JSON.stringify(idle)}`);
  let load = startLoad();
  await sleep(settings.warmupS * 1000);
  running = false;
  await Promise.all(load);
  keepAlive.destroy();
  await sleep(IDLE_PAUSE_MS);
  const baseline = measure();
  console.error(`baseline after ${settings.warmupS} s warm-up: ${JSON.stringify(baseline)}`);

  running = true;
  const t0 = performance.now();
  load = startLoad();
  const sampler = setInterval(() => console.error(`${Math.round((performance.now() - t0) / 1000)} s: ${JSON.stringify({ ...measure(), ...counts })}`), 30_000);
  await sleep(settings.durationS * 1000);
  running = false;
  await Promise.all(load);
  clearInterval(sampler);
  keepAlive.destroy();
  await sleep(IDLE_PAUSE_MS);
  const after = measure();
  const growth = (after.rssMiB - baseline.rssMiB) / baseline.rssMiB;
  const socketsOk = after.sockets <= baseline.sockets;
  const rssOk = growth < 0.1;
  console.log(`## bench:proxy-soak — ${settings.durationS} s, LabHub proxy with ${settings.workers} worker(s), ${settings.backends} backends\n`);
  console.log('| | open sockets | RSS (MiB) |\n|:--|--:|--:|');
  console.log(`| idle, before any load | ${idle.sockets} | ${idle.rssMiB} |`);
  console.log(`| baseline (after ${settings.warmupS} s warm-up, ${IDLE_PAUSE_MS / 1000} s idle) | ${baseline.sockets} | ${baseline.rssMiB} |`);
  console.log(`| after the soak (${IDLE_PAUSE_MS / 1000} s idle) | ${after.sockets} | ${after.rssMiB} (${(growth * 100).toFixed(1)}%) |`);
  console.log(`\nTraffic: ${JSON.stringify(counts)}`);
  console.log(`\nsockets back to baseline: ${socketsOk ? 'yes' : 'NO'}; RSS growth under 10%: ${rssOk ? 'yes' : 'NO'}`);
  await proxy.stop();
  await cleanupAll();
  process.exit(socketsOk && rssOk ? 0 : 1);
}

main().catch(async (err: unknown) => {
  console.error(err);
  await cleanupAll();
  process.exit(1);
});
