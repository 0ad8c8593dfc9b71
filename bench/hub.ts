/**
 * `npm run bench:hub`: LabHub against Debian's JupyterHub 3.0.0 (with configurable-http-proxy), on this machine, in
 * one run, each driven only through its proxy's public port on 127.0.0.1:
 *
 *  1. requests/s and p50/p99 latency of `GET /hub/api/users/<name>` with an API token (closed-loop keep-alive load);
 *     then one run each (BENCH_EXTRA_S) of `GET /hub/api/user`, `GET /hub/api/users?limit=50` and the
 *     cookie-authenticated page `/hub/home`;
 *  2. time to create BENCH_USERS (10,000) users through the bulk API, in batches of BENCH_USER_BATCH (1,000);
 *  3. time for BENCH_SPAWNS (1,000) spawns with a spawner that starts instantly, BENCH_SPAWN_CONCURRENCY (10) at a
 *     time, and for stopping them again;
 *  4. hub start-up time with those users in the DB: SIGTERM, start again on the same data, time from spawn of the
 *     process to the first 200 of the hub API through the public port; BENCH_STARTUPS (3) times, median.
 *
 * Both hubs run at the same time but only one is under load at any moment (the other idles), and the repeated
 * measurements alternate between them, so that background load on a shared machine hits both alike.
 * Prints a Markdown table and writes everything to bench/results/hub-<timestamp>.json.
 * Other knobs: BENCH_DURATION_S, BENCH_WARMUP_S, BENCH_CONNECTIONS, BENCH_RPS_REPEATS, BENCH_SERVICE_TOKEN_S,
 * BENCH_LOADGEN (node | wrk), BENCH_HUBS (labhub,jupyterhub), BENCH_KEEP=1 (keep temp dirs and logs).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { envInt } from './lib/env.js';
import { browserLogin, HubApi, httpRequest } from './lib/http.js';
import { adminApi, Hub, JupyterHub, LabHub, REPO, type LogSummary, type StopResult } from './lib/hubs.js';
import { runLoad, runWrk, type LoadResult } from './lib/load.js';
import { pool } from './lib/pool.js';
import type { CpuUse } from './lib/cpu.js';
import { cleanupAll, installSignalCleanup, interrupted, keepTempDirs, makeTempDir } from './lib/process.js';
import { machineInfo, ratioOf, table, type Row } from './lib/report.js';
import { median, sig, summarize, type Summary } from './lib/stats.js';

const settings = {
  users: envInt('BENCH_USERS', 10_000, 1),
  userBatch: envInt('BENCH_USER_BATCH', 1_000, 1),
  spawns: envInt('BENCH_SPAWNS', 1_000, 1),
  spawnConcurrency: envInt('BENCH_SPAWN_CONCURRENCY', 10, 1),
  durationS: envInt('BENCH_DURATION_S', 10, 1),
  warmupS: envInt('BENCH_WARMUP_S', 3, 0),
  connections: envInt('BENCH_CONNECTIONS', 32, 1),
  rpsRepeats: envInt('BENCH_RPS_REPEATS', 3, 1),
  serviceTokenS: envInt('BENCH_SERVICE_TOKEN_S', 5, 0),
  extraS: envInt('BENCH_EXTRA_S', 5, 0),
  startups: envInt('BENCH_STARTUPS', 3, 1),
  loadgen: (process.env.BENCH_LOADGEN ?? 'node') as 'node' | 'wrk',
  hubs: (process.env.BENCH_HUBS ?? 'labhub,jupyterhub').split(',').map((s) => s.trim()).filter(Boolean),
  keep: process.env.BENCH_KEEP === '1',
};
if (!['node', 'wrk'].includes(settings.loadgen)) throw new Error('BENCH_LOADGEN: expected node or wrk');
for (const h of settings.hubs) if (!['labhub', 'jupyterhub'].includes(h)) throw new Error(`BENCH_HUBS: unknown hub ${h}`);
settings.spawns = Math.min(settings.spawns, settings.users);

const ADMIN = 'bench-admin';
const userName = (i: number) => `user${String(i).padStart(5, '0')}`;

interface SpawnStats {
  totalS: number;
  perSpawnMs: Summary;
  statuses: Record<string, number>;
  failures: string[];
}

interface HubResult {
  version: string;
  coldStartMs: number;
  createUsers?: { totalS: number; batchMs: number[] };
  rps: Measured[];
  rpsServiceToken?: Measured;
  /** One run per extra request (EXTRA_LOADS), by its key. */
  extra: Record<string, Measured>;
  spawn?: SpawnStats & { cpu: CpuUse };
  routeCheck?: Record<string, number>;
  stop?: SpawnStats & { cpu: CpuUse };
  restarts: { stop: StopResult; startMs: number }[];
  finalStop?: StopResult;
  log?: LogSummary;
}

function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  console.error(`[${t}] ${msg}`);
}

async function createUsers(api: HubApi): Promise<{ totalS: number; batchMs: number[] }> {
  const batchMs: number[] = [];
  for (let first = 1; first <= settings.users; first += settings.userBatch) {
    const names = Array.from({ length: Math.min(settings.userBatch, settings.users - first + 1) }, (_, k) => userName(first + k));
    const t0 = performance.now();
    const res = await api.expect('POST', '/users', [201], { usernames: names });
    batchMs.push(performance.now() - t0);
    const created = (JSON.parse(res.body) as unknown[]).length;
    if (created !== names.length) throw new Error(`bulk create: asked for ${names.length} users, got ${created}`);
  }
  return { totalS: batchMs.reduce((a, b) => a + b, 0) / 1000, batchMs: batchMs.map((ms) => Math.round(ms)) };
}

type Measured = LoadResult & { cpu: CpuUse };

const BENCH_USER_PATH = () => `/hub/api/users/${userName(Math.ceil(settings.users / 2))}`;

/** The other requests the issue names, each measured once per hub after the main runs. */
const EXTRA_LOADS = [
  { key: 'self', label: 'GET /hub/api/user, token', path: '/hub/api/user', auth: 'token' },
  { key: 'list', label: 'GET /hub/api/users?limit=50, token', path: '/hub/api/users?limit=50', auth: 'token' },
  { key: 'home', label: 'GET /hub/home, cookie', path: '/hub/home', auth: 'cookie' },
] as const;

async function load(hub: Hub, token: string, durationS: number, warmupS: number, path = BENCH_USER_PATH(), headers?: Record<string, string>): Promise<Measured> {
  const options = {
    url: `${hub.publicUrl}${path}`,
    headers: headers ?? { authorization: `token ${token}` },
    connections: settings.connections, durationS, warmupS,
  };
  const meter = hub.cpuMeter();
  const result = await (settings.loadgen === 'wrk' ? runWrk(options) : runLoad(options));
  return { ...result, cpu: meter() };
}

interface UserModel {
  servers?: Record<string, { ready?: boolean }>;
}

async function serverState(api: HubApi, user: string): Promise<{ ready: boolean; present: boolean }> {
  const res = await api.expect('GET', `/users/${user}`, [200]);
  const server = (JSON.parse(res.body) as UserModel).servers?.[''];
  return { ready: Boolean(server?.ready), present: server !== undefined };
}

/** POST (start) or DELETE (stop) of each user's default server; a 202 is followed by polling until it is done. */
async function lifecycle(api: HubApi, users: string[], method: 'POST' | 'DELETE'): Promise<SpawnStats> {
  const statuses: Record<string, number> = {};
  const failures: string[] = [];
  const times: number[] = [];
  const t0 = performance.now();
  await pool(users, settings.spawnConcurrency, async (user) => {
    const start = performance.now();
    let res;
    try {
      res = await api.request(method, `/users/${user}/server`);
    } catch (err) {
      statuses.error = (statuses.error ?? 0) + 1;
      failures.push(`${user}: ${(err as Error).message}`);
      return;
    }
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    const done = method === 'POST' ? (s: { ready: boolean }) => s.ready : (s: { present: boolean }) => !s.present;
    if (res.status === 202) {
      const deadline = start + 120_000;
      for (;;) {
        if (done(await serverState(api, user))) break;
        if (performance.now() > deadline) {
          failures.push(`${user}: not ${method === 'POST' ? 'ready' : 'stopped'} after 120 s`);
          return;
        }
        await sleep(20);
      }
    } else if (res.status !== (method === 'POST' ? 201 : 204)) {
      failures.push(`${user}: ${res.status} ${res.body.slice(0, 200)}`);
      return;
    }
    times.push(performance.now() - start);
  });
  return { totalS: (performance.now() - t0) / 1000, perSpawnMs: summarize(times), statuses, failures: failures.slice(0, 20) };
}

async function main(): Promise<void> {
  installSignalCleanup();
  keepTempDirs(settings.keep);
  const began = performance.now();
  const machine = machineInfo();
  const root = makeTempDir('labhub-bench-hub-');
  const hubs: Hub[] = settings.hubs.map((k) => {
    const dir = join(root, k);
    mkdirSync(dir);
    return k === 'labhub' ? new LabHub(dir) : new JupyterHub(dir);
  });
  const results = new Map<Hub, HubResult>();
  const apis = new Map<Hub, HubApi>();
  const anomalies: string[] = [];
  log(`machine: ${machine.nproc} CPUs (${machine.cpu}), node ${machine.node}, load average ${machine.loadavgStart.join(' ')}`);
  log(`settings: ${JSON.stringify(settings)}`);

  try {
    for (const hub of hubs) {
      await hub.prepare();
      log(`${hub.label}: starting on ${hub.publicUrl} (empty DB)`);
      const coldStartMs = await hub.start();
      const info = await httpRequest(`${hub.publicUrl}/hub/api/`).then((r) => JSON.parse(r.body) as { version?: string });
      hub.version = info.version ?? '?';
      results.set(hub, { version: hub.version, coldStartMs, rps: [], restarts: [], extra: {} });
      apis.set(hub, await adminApi(hub, ADMIN));
      log(`${hub.label} ${hub.version}: up in ${Math.round(coldStartMs)} ms`);
    }

    for (const hub of hubs) {
      log(`${hub.label}: creating ${settings.users} users in batches of ${settings.userBatch}`);
      const r = results.get(hub)!;
      r.createUsers = await createUsers(apis.get(hub)!);
      log(`${hub.label}: ${r.createUsers.totalS.toFixed(2)} s (batches: ${r.createUsers.batchMs.join(', ')} ms)`);
    }

    for (let rep = 0; rep < settings.rpsRepeats; rep++) {
      for (const hub of rep % 2 ? [...hubs].reverse() : hubs) {
        const res = await load(hub, apis.get(hub)!.token, settings.durationS, settings.warmupS);
        results.get(hub)!.rps.push(res);
        log(`${hub.label}: GET user, run ${rep + 1}: ${res.rps.toFixed(0)} req/s, p50 ${res.latencyMs.p50.toFixed(2)} ms, p99 ${res.latencyMs.p99.toFixed(2)} ms, ` +
          `statuses ${JSON.stringify(res.statuses)}, cores used: hub ${res.cpu.hub}, proxy ${res.cpu.proxy}, load generator ${res.cpu.bench}, other processes ${res.cpu.other}`);
      }
    }
    if (settings.serviceTokenS > 0) {
      for (const hub of hubs) {
        const res = await load(hub, hub.serviceToken, settings.serviceTokenS, 1);
        results.get(hub)!.rpsServiceToken = res;
        log(`${hub.label}: GET user with the config service token: ${res.rps.toFixed(0)} req/s, p99 ${res.latencyMs.p99.toFixed(1)} ms, statuses ${JSON.stringify(res.statuses)}`);
      }
    }
    if (settings.extraS > 0) {
      for (const hub of hubs) {
        const cookie = await browserLogin(hub.publicUrl, ADMIN, 'bench');
        for (const extra of EXTRA_LOADS) {
          const headers: Record<string, string> = extra.auth === 'cookie' ? { cookie } : { authorization: `token ${apis.get(hub)!.token}` };
          const res = await load(hub, '', settings.extraS, 1, extra.path, headers);
          results.get(hub)!.extra[extra.key] = res;
          log(`${hub.label}: ${extra.label}: ${res.rps.toFixed(0)} req/s, p99 ${res.latencyMs.p99.toFixed(1)} ms, statuses ${JSON.stringify(res.statuses)}, ` +
            `cores used: hub ${res.cpu.hub}, proxy ${res.cpu.proxy}, other processes ${res.cpu.other}`);
        }
      }
    }

    const spawnUsers = Array.from({ length: settings.spawns }, (_, i) => userName(i + 1));
    for (const hub of hubs) {
      const api = apis.get(hub)!;
      const r = results.get(hub)!;
      log(`${hub.label}: ${settings.spawns} spawns, ${settings.spawnConcurrency} at a time`);
      let meter = hub.cpuMeter();
      r.spawn = { ...(await lifecycle(api, spawnUsers, 'POST')), cpu: meter() };
      log(`${hub.label}: spawns ${r.spawn.totalS.toFixed(2)} s, median ${r.spawn.perSpawnMs.p50.toFixed(1)} ms, statuses ${JSON.stringify(r.spawn.statuses)}, cores used: hub ${r.spawn.cpu.hub}, proxy ${r.spawn.cpu.proxy}, other processes ${r.spawn.cpu.other}`);
      r.routeCheck = {};
      for (const user of [spawnUsers[0]!, spawnUsers[spawnUsers.length - 1]!]) {
        r.routeCheck[user] = await httpRequest(`${hub.publicUrl}/user/${user}/api`).then((x) => x.status, () => 0);
      }
      meter = hub.cpuMeter();
      r.stop = { ...(await lifecycle(api, spawnUsers, 'DELETE')), cpu: meter() };
      log(`${hub.label}: stops ${r.stop.totalS.toFixed(2)} s, median ${r.stop.perSpawnMs.p50.toFixed(1)} ms, statuses ${JSON.stringify(r.stop.statuses)}, cores used: hub ${r.stop.cpu.hub}, proxy ${r.stop.cpu.proxy}, other processes ${r.stop.cpu.other}`);
    }

    for (const hub of hubs) apis.get(hub)!.close();
    for (let rep = 0; rep < settings.startups; rep++) {
      for (const hub of rep % 2 ? [...hubs].reverse() : hubs) {
        const stop = await hub.stop();
        const startMs = await hub.start();
        results.get(hub)!.restarts.push({ stop, startMs });
        log(`${hub.label}: restart ${rep + 1} with ${settings.users + 1} users: stop ${Math.round(stop.ms)} ms, start ${Math.round(startMs)} ms`);
      }
    }
    for (const hub of hubs) {
      const r = results.get(hub)!;
      r.finalStop = await hub.stop();
      r.log = hub.summarizeLog();
    }
  } catch (err) {
    if (interrupted()) return; // the signal handler cleans up and exits
    console.error(`bench:hub failed: ${(err as Error).stack ?? String(err)}`);
    for (const hub of hubs) console.error(`--- ${hub.label} log (tail) ---\n${hub.logTail(20)}`);
    process.exitCode = 1;
    await cleanupAll();
    return;
  }

  // Anomalies worth a human look.
  for (const hub of hubs) {
    const r = results.get(hub)!;
    for (const [i, x] of [...r.rps, ...(r.rpsServiceToken ? [r.rpsServiceToken] : []), ...Object.values(r.extra)].entries()) {
      const bad = Object.entries(x.statuses).filter(([s]) => !s.startsWith('2'));
      if (bad.length) anomalies.push(`${hub.label}: load run ${i + 1} had non-2xx answers ${JSON.stringify(Object.fromEntries(bad))}`);
    }
    for (const [what, s] of [['spawn', r.spawn], ['stop', r.stop]] as const) {
      if (s?.failures.length) anomalies.push(`${hub.label}: ${s.failures.length} ${what} failures, e.g. ${s.failures.slice(0, 3).join('; ')}`);
      const other = Object.keys(s?.statuses ?? {}).filter((k) => !['201', '204'].includes(k));
      if (other.length) anomalies.push(`${hub.label}: ${what} answers ${JSON.stringify(s!.statuses)}`);
    }
    for (const [user, status] of Object.entries(r.routeCheck ?? {})) {
      if (status !== 200) anomalies.push(`${hub.label}: GET /user/${user}/api through the proxy answered ${status} after the spawn`);
    }
    for (const [i, x] of r.restarts.entries()) {
      if (!x.stop.graceful) anomalies.push(`${hub.label}: restart ${i + 1}: the hub did not exit within 30 s of SIGTERM`);
      else if (x.stop.exit !== '0') anomalies.push(`${hub.label}: restart ${i + 1}: the hub ended with ${x.stop.exit} on SIGTERM, not exit 0`);
      if (x.stop.proxyLeftBehind) anomalies.push(`${hub.label}: restart ${i + 1}: its proxy outlived the hub and was killed`);
    }
    if (r.log && (r.log.errors || r.log.http5xx)) anomalies.push(`${hub.label}: log has ${r.log.errors} errors and ${r.log.http5xx} logged 5xx`);
  }

  const L = hubs.find((h) => h.key === 'labhub');
  const J = hubs.find((h) => h.key === 'jupyterhub');
  const get = (h: Hub | undefined, f: (r: HubResult) => number | undefined): number | null => {
    if (!h) return null;
    const v = f(results.get(h)!);
    return v === undefined || !Number.isFinite(v) ? null : v;
  };
  /** The load run with the median req/s (its latencies go with it). */
  const medianRun = (r: HubResult): Measured | undefined => [...r.rps].sort((a, b) => a.rps - b.rps)[Math.floor((r.rps.length - 1) / 2)];
  const users = settings.users.toLocaleString('en-US');
  const spawns = settings.spawns.toLocaleString('en-US');
  const c = settings.connections;
  const rows: Row[] = [
    { metric: `GET /hub/api/users/<name>, token, c=${c}: requests/s (median of ${settings.rpsRepeats} × ${settings.durationS} s)`, labhub: get(L, (r) => medianRun(r)?.rps), jupyterhub: get(J, (r) => medianRun(r)?.rps), better: 'higher', digits: 0 },
    { metric: '  … p50 latency (ms)', labhub: get(L, (r) => medianRun(r)?.latencyMs.p50), jupyterhub: get(J, (r) => medianRun(r)?.latencyMs.p50), better: 'lower', digits: 2 },
    { metric: '  … p99 latency (ms)', labhub: get(L, (r) => medianRun(r)?.latencyMs.p99), jupyterhub: get(J, (r) => medianRun(r)?.latencyMs.p99), better: 'lower', digits: 2 },
    { metric: `create ${users} users, bulk API in batches of ${settings.userBatch.toLocaleString('en-US')} (s)`, labhub: get(L, (r) => r.createUsers?.totalS), jupyterhub: get(J, (r) => r.createUsers?.totalS), better: 'lower', digits: 2 },
    { metric: `${spawns} spawns, instant spawner, ${settings.spawnConcurrency} at a time: total (s)`, labhub: get(L, (r) => r.spawn?.totalS), jupyterhub: get(J, (r) => r.spawn?.totalS), better: 'lower', digits: 2 },
    { metric: '  … per spawn, median (ms)', labhub: get(L, (r) => r.spawn?.perSpawnMs.p50), jupyterhub: get(J, (r) => r.spawn?.perSpawnMs.p50), better: 'lower', digits: 1 },
    { metric: '  … per spawn, p99 (ms)', labhub: get(L, (r) => r.spawn?.perSpawnMs.p99), jupyterhub: get(J, (r) => r.spawn?.perSpawnMs.p99), better: 'lower', digits: 1 },
    { metric: `stop those ${spawns} servers, ${settings.spawnConcurrency} at a time: total (s)`, labhub: get(L, (r) => r.stop?.totalS), jupyterhub: get(J, (r) => r.stop?.totalS), better: 'lower', digits: 2 },
    { metric: `hub start-up with ${users} users in the DB, median of ${settings.startups} (ms)`, labhub: get(L, (r) => median(r.restarts.map((x) => x.startMs))), jupyterhub: get(J, (r) => median(r.restarts.map((x) => x.startMs))), better: 'lower', digits: 0 },
    { metric: 'hub start-up, empty DB, first start (ms)', labhub: get(L, (r) => r.coldStartMs), jupyterhub: get(J, (r) => r.coldStartMs), better: 'lower', digits: 0 },
    { metric: `hub shutdown (SIGTERM to exit) with ${users} users, median (ms)`, labhub: get(L, (r) => median(r.restarts.map((x) => x.stop.ms))), jupyterhub: get(J, (r) => median(r.restarts.map((x) => x.stop.ms))), better: 'lower', digits: 0 },
  ];
  if (settings.serviceTokenS > 0) {
    rows.push({ metric: `GET /hub/api/users/<name> with the service token from config (see README), c=${c}: requests/s`, labhub: get(L, (r) => r.rpsServiceToken?.rps), jupyterhub: get(J, (r) => r.rpsServiceToken?.rps), better: 'higher', digits: 0 });
  }

  if (settings.extraS > 0) {
    for (const extra of EXTRA_LOADS) {
      rows.push({ metric: `${extra.label}, c=${c}: requests/s (one ${settings.extraS} s run)`, labhub: get(L, (r) => r.extra[extra.key]?.rps), jupyterhub: get(J, (r) => r.extra[extra.key]?.rps), better: 'higher', digits: 0 });
      rows.push({ metric: '  … p99 latency (ms)', labhub: get(L, (r) => r.extra[extra.key]?.latencyMs.p99), jupyterhub: get(J, (r) => r.extra[extra.key]?.latencyMs.p99), better: 'lower', digits: 2 });
    }
  }

  machine.loadavgEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  const wallS = (performance.now() - began) / 1000;
  const overrides = Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_')).map(([k, v]) => `${k}=${v} `).join('');
  const command = `cd ${REPO} && ${overrides}npm run bench:hub`;

  const out: string[] = [];
  out.push('');
  const labhubVersion = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  out.push(`## bench:hub — LabHub ${labhubVersion}${L ? ` (REST API ${results.get(L)!.version})` : ''} vs JupyterHub ${J ? results.get(J)!.version : '–'} ` +
    `(Debian, with configurable-http-proxy ${J ? JupyterHub.chpVersion() : '–'})`);
  out.push('');
  out.push(table(rows));
  out.push('');
  out.push(`Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memGiB} GiB, ${machine.os}; node ${machine.node}; ${machine.python}; ` +
    `load average ${machine.loadavgStart.join(' ')} at start, ${machine.loadavgEnd.join(' ')} at the end.`);
  out.push(`Load generator: ${settings.loadgen === 'wrk' ? 'wrk' : 'bench/lib/load.ts (node:http keep-alive, closed loop)'}, ${c} connections, ` +
    `${settings.warmupS} s warm-up per run; everything on 127.0.0.1, through each hub's proxy; hubs idle while the other is measured.`);
  for (const hub of hubs) {
    const r = results.get(hub)!;
    out.push(`${hub.label}: req/s per run ${r.rps.map((x) => Math.round(x.rps)).join(', ')}; p99 per run ${r.rps.map((x) => sig(x.latencyMs.p99)).join(', ')} ms; ` +
      `cores used per run by the hub ${r.rps.map((x) => x.cpu.hub).join(', ')}, by its proxy ${r.rps.map((x) => x.cpu.proxy).join(', ')}, ` +
      `by other processes ${r.rps.map((x) => x.cpu.other).join(', ')}; ` +
      `start-ups ${r.restarts.map((x) => Math.round(x.startMs)).join(', ')} ms; user batches ${r.createUsers?.batchMs.join(', ')} ms.`);
  }
  out.push(`Wall time: ${wallS.toFixed(0)} s. Reproduce: ${command}`);
  if (anomalies.length) {
    out.push('');
    out.push('Anomalies:');
    for (const a of anomalies) out.push(`- ${a}`);
  }
  console.log(out.join('\n'));

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const resultsDir = join(REPO, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `hub-${stamp}.json`);
  writeFileSync(file, JSON.stringify({
    benchmark: 'hub', timestamp: new Date().toISOString(), command, wallS, machine, settings,
    table: rows.map((r) => ({ ...r, ratio: ratioOf(r), ratioIs: r.better === 'higher' ? 'labhub/jupyterhub' : 'jupyterhub/labhub' })),
    hubs: Object.fromEntries(hubs.map((h) => [h.key, { label: h.label, ...results.get(h)! }])),
    anomalies,
  }, null, 2) + '\n');
  console.log(`\nResults: ${file}`);
  await cleanupAll();
}

await main();
