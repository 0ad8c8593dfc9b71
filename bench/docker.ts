/**
 * `npm run bench:docker`: what LabHub adds to starting a notebook container, against starting the same container
 * without a hub, on this machine, in one run.
 *
 *  1. Sequential, BENCH_DOCKER_RUNS (9) rounds, each round in this order:
 *     - LabHub: `POST /hub/api/users/<u>/server` through the public proxy port until the API reports the server
 *       ready (201 at once, or 202 then `GET /hub/api/users/<u>` every 10 ms). LabHub's `ready` includes its own
 *       HTTP check of the server and the proxy route. The server is then stopped through the API (not timed).
 *     - bare `docker run -d` (the CLI) of the same image, with the container LabHub made's command, user,
 *       environment and limits, until `http://<container IP>:8888<prefix>api` answers 200 (polled every 10 ms).
 *     - the same container through the engine API directly (create + start, as dockerode does): the floor.
 *  2. Concurrent: BENCH_DOCKER_CONCURRENT (20) users start at once through LabHub, then 20 bare containers at once
 *     through the engine API; time until all are ready, and the median per server.
 *
 * The bare containers use the environment of a server LabHub started, so jupyterhub-singleuser finds the hub's API
 * at start-up in both cases and does the same work. Prints a table and writes bench/results/docker-<time>.json.
 * Needs the Docker engine and labhub/notebook-debian:latest (bash scripts/setup-docker.sh).
 * Knobs: BENCH_DOCKER_RUNS, BENCH_DOCKER_CONCURRENT, BENCH_DOCKER_IMAGE, BENCH_KEEP=1.
 */
import { execFile } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { DockerSpawner } from '../spawners/docker.js';
import { httpRequest, type HubApi } from './lib/http.js';
import { adminApi, LabHub, REPO } from './lib/hubs.js';
import { envInt } from './lib/env.js';
import { cleanupAll, installSignalCleanup, keepTempDirs, makeTempDir } from './lib/process.js';
import { machineInfo } from './lib/report.js';
import { median, sig, summarize } from './lib/stats.js';

const run = promisify(execFile);

const settings = {
  runs: envInt('BENCH_DOCKER_RUNS', 9, 1),
  concurrent: envInt('BENCH_DOCKER_CONCURRENT', 20, 1),
  image: process.env.BENCH_DOCKER_IMAGE || 'labhub/notebook-debian:latest',
  keep: process.env.BENCH_KEEP === '1',
};

const RUN_ID = randomBytes(3).toString('hex');
const HUB_ID = `bench-${RUN_ID}`;
const docker = new Docker({ socketPath: '/var/run/docker.sock' });

function log(msg: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** What a bare start needs to run the same server LabHub ran. */
interface ContainerSpec {
  user: string;
  prefix: string;
  image: string;
  cmd: string[];
  env: string[];
  runAs: string;
  memory: number;
  nanoCpus: number;
  pids: number;
}

/**
 * Starts `user`'s server and resolves with ms since `t0` once it is ready: a 201, or after a 202 the `ready` event of
 * the progress event-stream (no polling, so that 20 waiting clients do not load the hub they measure).
 */
async function waitReady(api: HubApi, user: string, t0: number): Promise<number> {
  const res = await api.request('POST', `/users/${user}/server`);
  if (res.status === 201) return performance.now() - t0;
  if (res.status !== 202) throw new Error(`start ${user}: ${res.status} ${res.body.slice(0, 300)}`);
  const event = await new Promise<{ ready?: boolean; failed?: boolean; message?: string }>((resolve, reject) => {
    const req = httpGet(`${api.base}/hub/api/users/${user}/server/progress`, { headers: { authorization: `token ${api.token}` }, timeout: 200_000 }, (stream) => {
      if (stream.statusCode !== 200) reject(new Error(`progress of ${user}: HTTP ${stream.statusCode}`));
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffered += chunk;
        for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
          const data = buffered.slice(0, end).split('\n').find((l) => l.startsWith('data:'));
          buffered = buffered.slice(end + 2);
          const parsed = data ? JSON.parse(data.slice(5)) as { ready?: boolean; failed?: boolean; message?: string } : {};
          if (parsed.ready || parsed.failed) {
            resolve(parsed);
            req.destroy();
          }
        }
      });
      stream.on('end', () => reject(new Error(`progress of ${user} ended without ready`)));
    });
    req.on('timeout', () => req.destroy(new Error(`progress of ${user}: no ready within 200 s`)));
    req.on('error', reject);
  });
  if (!event.ready) throw new Error(`start ${user}: ${event.message ?? 'failed'}`);
  return performance.now() - t0;
}

async function stopServer(api: HubApi, user: string): Promise<void> {
  const res = await api.request('DELETE', `/users/${user}/server`);
  if (res.status === 204) return;
  if (res.status !== 202) throw new Error(`stop ${user}: ${res.status} ${res.body.slice(0, 300)}`);
  for (;;) {
    const model = JSON.parse((await api.expect('GET', `/users/${user}`, [200])).body) as { servers?: Record<string, unknown> };
    if (!model.servers?.['']) return;
    await sleep(20);
  }
}

/** LabHub's container for `user`, read back from the engine: the spec the bare starts copy. */
async function specOf(user: string): Promise<ContainerSpec> {
  const [found] = await docker.listContainers({ filters: { label: [`org.labhub.hub=${HUB_ID}`, `org.labhub.user=${user}`] } });
  if (!found) throw new Error(`no container of ${user}`);
  const info = await docker.getContainer(found.Id).inspect();
  const env = info.Config.Env ?? [];
  const prefix = env.find((e) => e.startsWith('JUPYTERHUB_SERVICE_PREFIX='))?.split('=')[1] ?? `/user/${user}/`;
  return {
    user, prefix, image: info.Config.Image, cmd: [...(info.Config.Entrypoint as string[] | null ?? []), ...(info.Config.Cmd ?? [])],
    env, runAs: info.Config.User, memory: info.HostConfig.Memory ?? 0, nanoCpus: info.HostConfig.NanoCpus ?? 0, pids: info.HostConfig.PidsLimit ?? 0,
  };
}

async function waitHttp(ip: string, prefix: string, t0: number): Promise<number> {
  for (;;) {
    const status = await httpRequest(`http://${ip}:8888${prefix}api`, { timeoutMs: 2000 }).then((r) => r.status, () => 0);
    if (status === 200) return performance.now() - t0;
    if (performance.now() - t0 > 120_000) throw new Error(`http://${ip}:8888${prefix}api did not answer within 120 s`);
    await sleep(10);
  }
}

const bareName = (spec: ContainerSpec, how: string) => `${HUB_ID}-bare-${how}-${spec.user}`;

/** `docker run -d` with the CLI, then the container's IP from the engine, then HTTP. */
async function bareCli(spec: ContainerSpec): Promise<number> {
  const name = bareName(spec, 'cli');
  const args = ['run', '-d', '--name', name, '--label', `org.labhub.bench=${HUB_ID}`, '--user', spec.runAs, '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges', ...(spec.memory ? ['--memory', String(spec.memory)] : []),
    ...(spec.nanoCpus ? ['--cpus', String(spec.nanoCpus / 1e9)] : []), ...(spec.pids ? ['--pids-limit', String(spec.pids)] : []),
    ...spec.env.flatMap((e) => ['-e', e]), '--entrypoint', spec.cmd[0]!, spec.image, ...spec.cmd.slice(1)];
  const t0 = performance.now();
  const { stdout } = await run('docker', args);
  const ip = (await docker.getContainer(stdout.trim()).inspect()).NetworkSettings.Networks.bridge?.IPAddress ?? '';
  return waitHttp(ip, spec.prefix, t0);
}

/** create + start through the engine API: the least any tool can do. */
async function bareApi(spec: ContainerSpec): Promise<number> {
  const t0 = performance.now();
  const container = await docker.createContainer({
    name: bareName(spec, 'api'), Image: spec.image, Entrypoint: [spec.cmd[0]!], Cmd: spec.cmd.slice(1), Env: spec.env, User: spec.runAs,
    Labels: { 'org.labhub.bench': HUB_ID },
    HostConfig: { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], Memory: spec.memory || undefined, NanoCpus: spec.nanoCpus || undefined, PidsLimit: spec.pids || undefined },
  });
  await container.start();
  const ip = (await container.inspect()).NetworkSettings.Networks.bridge?.IPAddress ?? '';
  return waitHttp(ip, spec.prefix, t0);
}

async function removeBare(): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`org.labhub.bench=${HUB_ID}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

async function removeEverything(): Promise<void> {
  await removeBare();
  const ours = await docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${HUB_ID}`] } });
  await Promise.all(ours.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  const { Volumes } = await docker.listVolumes({ filters: { label: [`org.labhub.hub=${HUB_ID}`] } });
  await Promise.all((Volumes ?? []).map((v) => docker.getVolume(v.Name).remove().catch(() => undefined)));
}

function ms(values: number[]): { median: number; min: number; max: number } {
  return { median: sig(median(values)), min: sig(Math.min(...values)), max: sig(Math.max(...values)) };
}

async function main(): Promise<void> {
  installSignalCleanup();
  keepTempDirs(settings.keep);
  const machine = machineInfo();
  log(`machine: ${machine.nproc} CPUs (${machine.cpu}), node ${machine.node}; settings ${JSON.stringify(settings)}`);
  await docker.getImage(settings.image).inspect().catch(() => {
    throw new Error(`image ${settings.image} is not on the engine: run bash scripts/setup-docker.sh`);
  });
  const gateway = await new DockerSpawner({ image: settings.image }).gatewayAddress();
  if (!gateway) throw new Error('cannot find the Docker bridge gateway address');

  const dir = makeTempDir('labhub-bench-docker-');
  const hub = new LabHub(dir);
  hub.extraEnv = {
    LABHUB_HUB__IP: gateway,
    LABHUB_SPAWNER__KIND: 'docker',
    LABHUB_SPAWNER__DOCKER__IMAGE: settings.image,
    LABHUB_SPAWNER__DOCKER__PULL_POLICY: 'never',
    LABHUB_SPAWNER__DOCKER__HUB_ID: HUB_ID,
    // 20 Jupyter servers starting at once on 2 cores can take longer than the default 30 s to answer.
    LABHUB_SPAWNER__HTTP_TIMEOUT: '180',
    LABHUB_SPAWNER__START_TIMEOUT: '180',
  };
  const sequential = { labhub: [] as number[], dockerRun: [] as number[], engineApi: [] as number[] };
  let concurrent: { labhub: { totalMs: number; perServer: number[] }; engineApi: { totalMs: number; perServer: number[] } } | undefined;
  try {
    await hub.prepare();
    await hub.start();
    const api = await adminApi(hub, 'bench-admin');
    const users = Array.from({ length: Math.max(settings.runs, settings.concurrent) }, (_, i) => `bench${String(i).padStart(3, '0')}`);
    await api.expect('POST', '/users', [201], { usernames: users });

    log('warm-up: one start through LabHub and one bare start (not counted)');
    await waitReady(api, users[0]!, performance.now());
    const warmSpec = await specOf(users[0]!);
    await stopServer(api, users[0]!);
    await bareApi(warmSpec);
    await removeBare();

    for (let i = 0; i < settings.runs; i++) {
      const user = users[i]!;
      const labhubMs = await waitReady(api, user, performance.now());
      const spec = await specOf(user);
      await stopServer(api, user);
      const cliMs = await bareCli(spec);
      await removeBare();
      const apiMs = await bareApi(spec);
      await removeBare();
      sequential.labhub.push(labhubMs);
      sequential.dockerRun.push(cliMs);
      sequential.engineApi.push(apiMs);
      log(`round ${i + 1}/${settings.runs}: LabHub ${Math.round(labhubMs)} ms, docker run ${Math.round(cliMs)} ms, engine API ${Math.round(apiMs)} ms`);
    }

    const group = users.slice(0, settings.concurrent);
    log(`${group.length} concurrent starts through LabHub`);
    let t0 = performance.now();
    const labhubTimes = await Promise.all(group.map((u) => waitReady(api, u, t0)));
    const labhubTotal = performance.now() - t0;
    const specs = await Promise.all(group.map(specOf));
    await Promise.all(group.map((u) => stopServer(api, u)));
    log(`${group.length} concurrent bare starts through the engine API`);
    t0 = performance.now();
    const bareTimes = await Promise.all(specs.map(bareApi));
    const bareTotal = performance.now() - t0;
    await removeBare();
    concurrent = { labhub: { totalMs: labhubTotal, perServer: labhubTimes }, engineApi: { totalMs: bareTotal, perServer: bareTimes } };
    api.close();
  } catch (err) {
    console.error(`--- hub log (failures) ---\n${hub.logTail(400).split('\n').filter((l) => /"level":(4|5)\d/.test(l)).slice(-10).join('\n')}`);
    throw err;
  } finally {
    await cleanupAll();
    await removeEverything();
  }

  const seq = { labhub: ms(sequential.labhub), dockerRun: ms(sequential.dockerRun), engineApi: ms(sequential.engineApi) };
  const rows: string[][] = [
    ['start to ready, sequential, median (min–max)', `${seq.labhub.median} (${seq.labhub.min}–${seq.labhub.max})`,
      `${seq.dockerRun.median} (${seq.dockerRun.min}–${seq.dockerRun.max})`, `${seq.engineApi.median} (${seq.engineApi.min}–${seq.engineApi.max})`],
    ['LabHub adds to the median', '', `${sig(seq.labhub.median - seq.dockerRun.median)}`, `${sig(seq.labhub.median - seq.engineApi.median)}`],
  ];
  if (concurrent) {
    rows.push([`${settings.concurrent} at once: all ready`, `${sig(concurrent.labhub.totalMs)}`, '', `${sig(concurrent.engineApi.totalMs)}`]);
    rows.push([`${settings.concurrent} at once: median per server`, `${sig(median(concurrent.labhub.perServer))}`, '', `${sig(median(concurrent.engineApi.perServer))}`]);
  }
  const header = ['ms', 'LabHub (API → ready)', 'bare `docker run`', 'bare engine API'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(['', line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line), ''].join('\n'));

  const outDir = join(REPO, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `docker-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({
    machine, settings, sequential, summary: seq,
    concurrent: concurrent && { ...concurrent, labhubSummary: summarize(concurrent.labhub.perServer), engineApiSummary: summarize(concurrent.engineApi.perServer) },
  }, null, 2));
  log(`wrote ${file}`);
}

main().catch(async (err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  await removeEverything().catch(() => undefined);
  process.exit(1);
});
