/**
 * `npm run bench:proxy`: LabHub's proxy against configurable-http-proxy 5.3.0 and nginx, and the backend served
 * directly, in one run on this machine. For 1, 10,000 and 100,000 routes (BENCH_ROUTES): wrk's requests/s and
 * p50/p99 latency for small (12 B) and 1 MiB answers, and websocket connect-echo-close cycles per second.
 * Each measurement is repeated BENCH_REPEATS (3) times, alternating between the proxies so background load on a
 * shared machine hits all alike; the median run is reported. Prints a Markdown table, writes
 * bench/results/proxy-<timestamp>.json. Needs scripts/setup-proxy.sh (nginx-light, CHP in /opt/labhub/chp).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { envInt } from './lib/env.js';
import { REPO } from './lib/hubs.js';
import { runWrk, type LoadResult } from './lib/load.js';
import { cleanupAll, freePort, installSignalCleanup, keepTempDirs, makeTempDir, ManagedProcess, waitFor200 } from './lib/process.js';
import { chp, direct, labhubProxy, nginx, routePath, type BenchTarget } from './lib/proxies.js';
import { machineInfo } from './lib/report.js';
import { median } from './lib/stats.js';
import { runWsLoad, type WsLoadResult } from './lib/ws-load.js';

const settings = {
  routes: (process.env.BENCH_ROUTES ?? '1,10000,100000').split(',').map(Number),
  durationS: envInt('BENCH_DURATION_S', 4, 1),
  warmupS: envInt('BENCH_WARMUP_S', 1, 0),
  repeats: envInt('BENCH_REPEATS', 3, 1),
  connections: envInt('BENCH_CONNECTIONS', 50, 1),
  wsClients: envInt('BENCH_WS_CLIENTS', 10, 1),
  workers: envInt('BENCH_PROXY_WORKERS', 1, 1),
  keep: process.env.BENCH_KEEP === '1',
};
for (const n of settings.routes) if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_ROUTES: expected positive integers, got ${n}`);

type Kind = 'small' | 'big' | 'ws';
const KINDS: Kind[] = ['small', 'big', 'ws'];

interface Measurement {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function fromWrk(r: LoadResult): Measurement {
  return { rps: r.rps, p50: r.latencyMs.p50, p99: r.latencyMs.p99, errors: r.statuses.error ?? 0 };
}

function fromWs(r: WsLoadResult): Measurement {
  return { rps: r.connectsPerS, p50: r.latencyMs.p50, p99: r.latencyMs.p99, errors: r.errors };
}

async function measure(target: BenchTarget, kind: Kind, path: string): Promise<Measurement> {
  const { durationS, warmupS, connections } = settings;
  if (kind === 'ws') return fromWs(await runWsLoad(`${target.url.replace('http', 'ws')}${path}`, settings.wsClients, durationS, warmupS));
  return fromWrk(await runWrk({ url: `${target.url}${path}${kind === 'big' ? '/big' : ''}`, connections, durationS, warmupS }));
}

/** The run with the median req/s, so its latencies come from one consistent run. */
function medianRun(runs: Measurement[]): Measurement {
  const m = median(runs.map((r) => r.rps));
  return runs.reduce((best, r) => (Math.abs(r.rps - m) < Math.abs(best.rps - m) ? r : best));
}

const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');
const ratio = (a: number | undefined, b: number | undefined) => (a && b && Number.isFinite(a / b) ? `${fmt(a / b, 2)}×` : 'n/a');

const KIND_LABEL: Record<Kind, string> = { small: 'HTTP 12 B', big: 'HTTP 1 MiB', ws: 'websocket connects' };

async function main(): Promise<void> {
  installSignalCleanup();
  keepTempDirs(settings.keep);
  const machine = machineInfo();
  const dir = makeTempDir('labhub-bench-proxy-');
  const backendPort = await freePort();
  const backend = new ManagedProcess('backend', { cmd: process.execPath, args: [join(REPO, 'dist/bench/proxy-backend.js'), String(backendPort)], env: process.env, logFile: join(dir, 'backend.log') });
  backend.start();
  const backendUrl = `http://127.0.0.1:${backendPort}`;
  await waitFor200(`${backendUrl}/`, performance.now(), () => backend.running, 30_000);

  const targets = [direct(backendUrl), await nginx(dir, backendUrl, settings.workers), await chp(dir, backendUrl), await labhubProxy(dir, backendUrl, settings.workers)];
  const results: Record<string, Record<string, Record<string, Measurement>>> = {};
  const setup: Record<string, Record<string, number>> = {};
  try {
    for (const routes of settings.routes) {
      setup[routes] = {};
      for (const target of targets) {
        const t0 = performance.now();
        await target.setRoutes(routes);
        setup[routes]![target.name] = Math.round(performance.now() - t0);
      }
      console.error(`${routes} routes loaded (ms): ${JSON.stringify(setup[routes])}`);
      const path = `${routePath(Math.floor(routes / 2))}/api/x`;
      results[routes] = {};
      for (const kind of KINDS) {
        const runs = new Map<string, Measurement[]>();
        for (let repeat = 0; repeat < settings.repeats; repeat++) {
          for (const target of targets) {
            // The backend alone does not depend on the number of routes: measured once.
            if (target.name === 'direct' && routes !== settings.routes[0]) continue;
            const m = await measure(target, kind, path);
            runs.set(target.name, [...(runs.get(target.name) ?? []), m]);
            console.error(`${routes} routes, ${kind}, ${target.name}: ${fmt(m.rps)}/s p50 ${fmt(m.p50, 2)} ms p99 ${fmt(m.p99, 2)} ms${m.errors ? `, ${m.errors} errors` : ''}`);
          }
        }
        results[routes]![kind] = Object.fromEntries([...runs].map(([name, r]) => [name, medianRun(r)]));
      }
    }
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
    await backend.stop();
  }

  const directRuns = results[settings.routes[0]!]!;
  const lines = [
    `## bench:proxy — ${machine.nproc} cores (${machine.cpu}), ${machine.os}, Node ${machine.node}; load average at start ${machine.loadavgStart.join(' ')}`,
    '',
    `wrk, ${settings.connections} keep-alive connections, ${settings.durationS} s after ${settings.warmupS} s warm-up; websockets: ${settings.wsClients} clients each looping connect, one echoed message, close. ` +
      `Median of ${settings.repeats} alternating runs. LabHub's proxy and nginx with ${settings.workers} worker process(es); CHP has one.`,
    '',
    '| routes | load | direct | nginx | CHP 5.3.0 | LabHub | LabHub ÷ CHP | LabHub ÷ nginx | p99 CHP ÷ LabHub |',
    '|---:|:---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const cell = (m: Measurement | undefined) => (m ? `${fmt(m.rps)}/s (p50 ${fmt(m.p50, 2)}, p99 ${fmt(m.p99, 2)} ms)` : 'n/a');
  for (const routes of settings.routes) {
    for (const kind of KINDS) {
      const r = results[routes]![kind]!;
      lines.push(
        `| ${fmt(routes)} | ${KIND_LABEL[kind]} | ${cell(directRuns[kind]!.direct)} | ${cell(r.nginx)} | ${cell(r.chp)} | ${cell(r.labhub)} | ` +
          `${ratio(r.labhub?.rps, r.chp?.rps)} | ${ratio(r.labhub?.rps, r.nginx?.rps)} | ${ratio(r.chp?.p99, r.labhub?.p99)} |`,
      );
    }
  }
  lines.push('', `Route loading (ms, through the API; nginx: config written and started): ${JSON.stringify(setup)}`);
  console.log(lines.join('\n'));

  const resultsDir = join(REPO, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `proxy-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ machine, settings, setup, results }, null, 2));
  console.error(`raw results: ${file}`);
  await cleanupAll();
}

main().catch(async (err: unknown) => {
  console.error(err);
  await cleanupAll();
  process.exit(1);
});
