/**
 * DockerSpawner against a real Docker engine and the real labhub/notebook-debian image (jupyterhub-singleuser 3.0),
 * both set up by scripts/setup-docker.sh (called from scripts/setup-test-env.sh). Pull policy "never": there is no
 * registry here.
 *
 * Part 1 drives the spawner directly, with a minimal stand-in hub on the Docker bridge gateway (the address
 * containers reach the host at). Part 2 runs the real hub in-process (with its real proxy as a child process) on
 * that gateway address and goes through login, API start, the OAuth dance and stop.
 *
 * Everything this file creates carries a per-run hub id label and name prefix; afterAll removes it all.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type Hub } from '../../hub/app.js';
import { loadConfig } from '../../hub/config/load.js';
import { createLogger } from '../../hub/log.js';
import { sql } from 'kysely';
import { migrator, openDatabase } from '../../hub/db/database.js';
import { sqlitePathOf } from '../../hub/db/open-state.js';
import { accountKey as key } from '../helpers/accounts.js';
import { oauthClientId } from '../../hub/servers/naming.js';
import {
  containerName, DockerSpawner, engineOptionsFromUrl, escapeDockerName, expandVolumeTemplate, homeVolumeName, isSafeMountPath,
  parseDockerState, type DockerSpawnerOptions,
} from '../../spawners/docker.js';
import { parseByteSize } from '../../spawners/byte-size.js';
import type { ProgressEvent, SpawnRequest, SpawnerState } from '../../spawners/spawner.js';
import { Browser, REPO, api, eventually, landInServer } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { execIn as exec } from '../helpers/containers.js';
import { freePort } from '../helpers/ports.js';

const IMAGE = 'labhub/notebook-debian:latest';
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const engineUp = await docker.ping().then(() => true, () => false);
const engineOk = requireService('Docker engine (/var/run/docker.sock)', engineUp);
const imageOk = engineOk && requireService(`Docker image ${IMAGE}`, await docker.getImage(IMAGE).inspect().then(() => true, () => false));

const REGISTRY_BIN = '/usr/bin/docker-registry';
const registryOk = engineOk && requireService('docker-registry (Debian package, for pull tests)', existsSync(REGISTRY_BIN));

const RUN = randomBytes(3).toString('hex');
const HUB_ID = `test-${RUN}`;
const PREFIX = `labhub-t${RUN}`;
const logger = createLogger('test.docker-spawner', { level: 'error' });
const readyTimes: number[] = [];
describe('Docker names and notebook images (no engine needed)', () => {
  it('escapes user and server names into a collision-free, Docker- and DNS-safe alphabet', () => {
    expect(escapeDockerName('alice')).toBe('alice');
    expect(escapeDockerName('Alice')).toBe('-41lice');
    expect(escapeDockerName('a-b')).toBe('a-2db');
    expect(escapeDockerName('a.b_c@d')).toBe('a-2eb-5fc-40d');
    expect(escapeDockerName('é')).toBe('-c3-a9');
    const alice = { uid: 'aaaaaaaaaaaa' };
    expect(containerName('labhub', alice, '')).toBe('labhub-u_aaaaaaaaaaaa');
    expect(containerName('labhub', alice, 'gpu')).toBe('labhub-u_aaaaaaaaaaaa--gpu');
    expect(homeVolumeName('labhub', alice)).toBe('labhub-home-u_aaaaaaaaaaaa');
    expect(homeVolumeName('labhub', { ...alice, legacyName: 'a.b' })).toBe('labhub-home-a-2eb');
    const names = ['a', 'a-', 'a--', '-a', 'a-2d', 'A', '-41', 'a.b', 'a_b', 'ab', 'a b', 'x'.repeat(60), 'x'.repeat(61), `${'é'.repeat(30)}1`, `${'é'.repeat(30)}2`];
    const escaped = names.map(escapeDockerName);
    expect(new Set(escaped).size).toBe(names.length);
    for (const e of escaped) {
      expect(e).toMatch(/^[a-z0-9-][a-z0-9.-]*$/);
      expect(e.length).toBeLessThanOrEqual(49);
      expect(e).not.toContain('--');
      expect(e.endsWith('-')).toBe(false);
    }
    const pairs = new Set<string>();
    for (const u of ['aaaaaaaaaaaa', 'aaaaaaaaaaab']) for (const s of ['', ...names]) pairs.add(containerName('p', { uid: u }, s));
    expect(pairs.size).toBe(2 * (names.length + 1));
    // No uid-named volume is ever a legacy account's: escaped names have no `_`.
    for (const n of [...names, 'u_aaaaaaaaaaaa']) expect(homeVolumeName('p', { uid: 'aaaaaaaaaaaa', legacyName: n })).not.toBe(homeVolumeName('p', { uid: 'aaaaaaaaaaaa' }));
  });

  it('lints both notebook Dockerfiles and keeps their DataLab libraries in step', () => {
    const read = (dir: string) => readFileSync(join(REPO, 'images', dir, 'Dockerfile'), 'utf8');
    const instructions = (text: string) => text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const libraries = (text: string) => /^# labhub-libraries: (.+)$/m.exec(text)?.[1]?.trim().split(/\s+/).sort() ?? [];
    const debian = read('notebook-debian');
    const production = read('notebook');
    expect(libraries(debian)).toEqual(['ipykernel', 'matplotlib', 'notebook', 'paho-mqtt', 'pandas', 'psycopg2', 'pymongo']);
    expect(libraries(production)).toEqual(libraries(debian));
    for (const [text, installed] of [[debian, (lib: string) => `python3-${lib}`], [production, (lib: string) => lib]] as const) {
      const lines = instructions(text);
      expect(lines.filter((l) => !l.startsWith('ARG '))[0]).toMatch(/^FROM \S+$/);
      expect(lines.find((l) => l.startsWith('FROM'))).not.toMatch(/:latest$/);
      const install = lines.find((l) => /^RUN .*(apt-get install|mamba install)/.test(l)) ?? '';
      for (const lib of libraries(text)) expect(install.split(/\s+/), lib).toContain(installed(lib));
      // Runs as the non-root notebook user from the last USER on, and that comes after every RUN.
      const lastUser = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('USER ')).at(-1);
      expect(lastUser?.[0]).toMatch(/^USER (1000|\$\{NB_UID\})$/);
      expect(lines.findLastIndex((l) => l.startsWith('RUN '))).toBeLessThan(lastUser![1]);
      expect(lines).toContain('EXPOSE 8888');
      expect(lines.some((l) => /^(ADD|COPY) /.test(l) && /docker\.sock/.test(l))).toBe(false);
    }
    // The production image carries the idle warning for JupyterLab as tests/e2e/idle-warnings-lab.test.ts loads it.
    for (const path of ['python/labhub_idle', 'python/share/jupyter/labextensions/labhub-idle', 'python/etc/jupyter/jupyter_server_config.d/labhub_idle.json']) {
      expect(instructions(production).some((l) => l.startsWith(`COPY ${path} `)), path).toBe(true);
    }
    expect(debian).toMatch(/--no-install-recommends/);
    expect(debian).toMatch(/rm -rf \/var\/lib\/apt\/lists\/\*/);
  });

  it('validates stored state and byte sizes', () => {
    expect(parseDockerState({ containerId: 'a'.repeat(64), name: 'labhub-alice' })).toEqual({ containerId: 'a'.repeat(64), name: 'labhub-alice' });
    expect(parseDockerState({ containerId: '../x', name: 'labhub-alice' })).toBeNull();
    expect(parseDockerState({ containerId: 'a'.repeat(64), name: '/etc' })).toBeNull();
    expect(parseDockerState({})).toBeNull();
    expect(parseByteSize('512m')).toBe(512 * 1024 ** 2);
    expect(parseByteSize('2G')).toBe(2 * 1024 ** 3);
    expect(parseByteSize(1000)).toBe(1000);
    expect(() => parseByteSize('lots')).toThrow(/byte size/);
    expect(engineOptionsFromUrl('unix:///var/run/docker.sock')).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(engineOptionsFromUrl('/run/user/1000/docker.sock')).toEqual({ socketPath: '/run/user/1000/docker.sock' });
    expect(engineOptionsFromUrl('tcp://10.0.0.5:2376')).toEqual({ host: '10.0.0.5', port: 2376 });
    expect(() => engineOptionsFromUrl('ssh://me@host')).toThrow(/unsupported/);
  });

  it('templates extra volumes with escaped names that cannot reach another user\'s path', () => {
    const as = (name: string) => ({ name, uid: 'aaaaaaaaaaaa' });
    expect(expandVolumeTemplate('/srv/lab/{username}/{servername}', as('alice'), '')).toBe('/srv/lab/alice/default');
    expect(expandVolumeTemplate('/srv/lab/{uid}', as('alice'), '')).toBe('/srv/lab/u_aaaaaaaaaaaa');
    for (const evil of ['../bob', 'a/../../etc', '..', 'bob/x', 'Bob', 'bob\u0000']) {
      const out = expandVolumeTemplate('/srv/lab/{username}', as(evil), 'x');
      expect(out.startsWith('/srv/lab/')).toBe(true);
      expect(out.slice('/srv/lab/'.length)).toMatch(/^[a-z0-9-]+$/);
      expect(isSafeMountPath(out)).toBe(true);
    }
    expect(expandVolumeTemplate('/srv/lab/{username}', as('../bob'), '')).not.toBe(expandVolumeTemplate('/srv/lab/{username}', as('bob'), ''));
    expect(() => expandVolumeTemplate('/srv/{home}', as('alice'), '')).toThrow(/unknown field/);
    for (const bad of ['relative', '/', '/a/../b', '/a/./b', '/a//b', '/a:/b']) expect(isSafeMountPath(bad), bad).toBe(false);
    expect(() => new DockerSpawner({ image: IMAGE, volumes: [{ source: '/srv/lab/{username}', target: '/data' }] })).toThrow(/type: bind/);
    expect(() => new DockerSpawner({ image: IMAGE, volumes: [{ source: 'v', target: '/home/../etc' }] })).toThrow(/target/);
    expect(() => new DockerSpawner({ image: IMAGE, volumes: [{ source: '/srv/{username}', target: '/data', type: 'bind' }] })).not.toThrow();
  });

  it('applies a class profile: its image, limits and read-only class volumes win; bad profiles are refused', () => {
    const s = new DockerSpawner({ image: IMAGE, allowedImages: ['other:1'], memLimit: '1g', cpuLimit: 2, hubConnectUrl: 'http://172.17.0.1:8081' });
    const profile = { id: 'bio101/python', image: 'class/image:1', cpuLimit: 0.5, memLimit: 256 * 1024 ** 2, sharedVolumes: [{ volume: 'bio101-materials', mountPath: '/home/jovyan/shared/bio101' }] };
    expect(s.resolveImage({ userOptions: {}, profile })).toBe('class/image:1');
    expect(() => s.resolveImage({ userOptions: { image: 'other:1' }, profile })).toThrow(/sets the image/);
    const request = { user: { name: 'alice', uid: 'aaaaaaaaaaaa', admin: false, groups: ['bio101'] }, serverName: '', prefix: '/user/alice/', env: {}, profile };
    const options = s.createOptions(request, 'class/image:1', null);
    expect(options.HostConfig).toMatchObject({ Memory: 256 * 1024 ** 2, NanoCpus: 5e8 });
    expect(options.HostConfig?.Mounts).toContainEqual({ Type: 'volume', Source: 'bio101-materials', Target: '/home/jovyan/shared/bio101', ReadOnly: true });
    expect(options.Labels).toMatchObject({ 'org.labhub.profile': 'bio101/python' });
    expect(s.createOptions({ ...request, profile: undefined }, IMAGE, null).HostConfig).toMatchObject({ Memory: 1024 ** 3, NanoCpus: 2e9 });
    for (const sharedVolumes of [[{ volume: '../x', mountPath: '/data' }], [{ volume: 'v', mountPath: '/home/jovyan' }], [{ volume: 'v', mountPath: 'rel' }]]) {
      expect(() => s.checkOptions({ userOptions: {}, profile: { id: 'c/p', sharedVolumes } })).toThrow(/profile c\/p/);
    }
  });

  it('refuses root, host networking and a loopback hub address', () => {
    expect(() => new DockerSpawner({ image: IMAGE, user: '0:0' })).toThrow(/root/);
    expect(() => new DockerSpawner({ image: IMAGE, network: 'host' })).toThrow(/not supported/);
    const s = new DockerSpawner({ image: IMAGE });
    expect(() => s.containerEnv({ prefix: '/user/a/', env: { JUPYTERHUB_API_URL: 'http://127.0.0.1:8081/hub/api' } }, IMAGE)).toThrow(/cannot reach the hub/);
    const moved = new DockerSpawner({ image: IMAGE, hubConnectUrl: 'http://172.17.0.1:8081/' }).containerEnv({
      prefix: '/user/a/',
      env: { JUPYTERHUB_API_URL: 'http://127.0.0.1:8081/hub/api', JUPYTERHUB_ACTIVITY_URL: 'http://127.0.0.1:8081/hub/api/users/a/activity' },
    }, IMAGE);
    expect(moved).toMatchObject({
      JUPYTERHUB_API_URL: 'http://172.17.0.1:8081/hub/api',
      JUPYTERHUB_ACTIVITY_URL: 'http://172.17.0.1:8081/hub/api/users/a/activity',
      JUPYTERHUB_SERVICE_URL: 'http://0.0.0.0:8888/user/a/',
    });
  });
});

/** What a hub answers a single-user server with at startup: just enough (GET /hub/api, activity). */
interface FakeHub {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

async function startFakeHub(host: string): Promise<FakeHub> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${(req.url ?? '/').split('?')[0]}`);
    req.resume();
    res.setHeader('X-JupyterHub-Version', '3.0.0');
    res.setHeader('Content-Type', 'application/json');
    if (req.method === 'GET' && /^\/hub\/api\/?$/.test(req.url ?? '')) res.end(JSON.stringify({ version: '3.0.0' }));
    else if (req.method === 'POST' && /\/activity$/.test(req.url ?? '')) res.end('{}');
    else {
      res.statusCode = 403;
      res.end('{"status":403}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function hubEnv(hub: FakeHub, user: string, server = ''): Record<string, string> {
  const prefix = server ? `/user/${user}/${server}/` : `/user/${user}/`;
  const apiUrl = `${hub.url}/hub/api`;
  return {
    JUPYTERHUB_API_TOKEN: randomBytes(16).toString('hex'),
    JUPYTERHUB_CLIENT_ID: oauthClientId(key(user).uid, server),
    JUPYTERHUB_API_URL: apiUrl,
    JUPYTERHUB_ACTIVITY_URL: `${apiUrl}/users/${user}/activity`,
    JUPYTERHUB_USER: user,
    JUPYTERHUB_SERVER_NAME: server,
    JUPYTERHUB_BASE_URL: '/',
    JUPYTERHUB_SERVICE_PREFIX: prefix,
    JUPYTERHUB_OAUTH_CALLBACK_URL: `${prefix}oauth_callback`,
    JUPYTERHUB_OAUTH_ACCESS_SCOPES: JSON.stringify([`access:servers!server=${user}/${server}`]),
    JUPYTERHUB_OAUTH_SCOPES: JSON.stringify([`access:servers!server=${user}/${server}`]),
    JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES: '[]',
    JUPYTERHUB_HOST: '',
  };
}

interface Recorded {
  request: SpawnRequest;
  events: ProgressEvent[];
  saved: SpawnerState[];
  abort: AbortController;
}

function spawnRequest(hub: FakeHub, user: string, options: { server?: string; userOptions?: Record<string, unknown>; onSave?: (s: SpawnerState) => void } = {}): Recorded {
  const server = options.server ?? '';
  const events: ProgressEvent[] = [];
  const saved: SpawnerState[] = [];
  const abort = new AbortController();
  const request: SpawnRequest = {
    user: { name: user, ...key(user), admin: false, groups: [] },
    serverName: server,
    prefix: server ? `/user/${user}/${server}/` : `/user/${user}/`,
    env: hubEnv(hub, user, server),
    userOptions: options.userOptions ?? {},
    signal: abort.signal,
    progress: (e) => events.push(e),
    saveState: async (s) => {
      saved.push(s);
      options.onSave?.(s);
    },
  };
  return { request, events, saved, abort };
}

async function getStatus(url: string): Promise<number> {
  return fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
}

/** start() and then the hub's readiness check (`<url><prefix>api` answers); returns the ms from start() to ready. */
async function startAndWait(spawner: DockerSpawner, rec: Recorded): Promise<{ url: string; state: SpawnerState; ms: number }> {
  const t0 = performance.now();
  const result = await spawner.start(rec.request);
  await eventually(async () => (await getStatus(`${result.url}${rec.request.prefix}api`)) === 200, 30_000, 50);
  const ms = Math.round(performance.now() - t0);
  readyTimes.push(ms);
  return { ...result, ms };
}

/** Creates a volume of this run (labelled, so cleanupEngine removes it) and runs a root shell script over it at /m. */
async function seedVolume(name: string, script: string): Promise<void> {
  await docker.createVolume({ Name: name, Labels: { 'org.labhub.hub': HUB_ID } });
  const seeded = await docker.createContainer({ Image: IMAGE, User: '0:0', Cmd: ['sh', '-c', script], HostConfig: { Mounts: [{ Type: 'volume', Source: name, Target: '/m' }] } });
  await seeded.start();
  await seeded.wait();
  await seeded.remove();
}

const containerExists = (idOrName: string) => docker.getContainer(idOrName).inspect().then(() => true, () => false);
const ourContainers = () => docker.listContainers({ all: true, filters: { label: [`org.labhub.hub=${HUB_ID}`] } });

async function cleanupEngine(): Promise<void> {
  if (!engineUp) return;
  for (const c of await ourContainers().catch(() => [])) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  const { Volumes } = await docker.listVolumes({ filters: { label: [`org.labhub.hub=${HUB_ID}`] } }).catch(() => ({ Volumes: [] }));
  for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => undefined);
}

afterAll(async () => {
  await cleanupEngine();
  if (readyTimes.length) {
    const sorted = [...readyTimes].sort((a, b) => a - b);
    console.log(`[docker-spawner] spawn to ready (ms): ${readyTimes.join(', ')}; median ${sorted[Math.floor(sorted.length / 2)]}`);
  }
});

describe.skipIf(!imageOk)('DockerSpawner on a real engine', () => {
  let gateway = '';
  let hub: FakeHub;
  const options = (): DockerSpawnerOptions => ({
    image: IMAGE, pullPolicy: 'never', hubId: HUB_ID, namePrefix: PREFIX, logger,
    memLimit: '512m', cpuLimit: 1.5, pidsLimit: 256,
  });
  let spawner: DockerSpawner;

  beforeAll(async () => {
    spawner = new DockerSpawner(options());
    gateway = (await spawner.gatewayAddress()) ?? '';
    expect(gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    hub = await startFakeHub(gateway);
  });

  afterAll(async () => {
    await hub?.close();
  });

  let alice: { url: string; state: SpawnerState };
  let aliceId = '';

  it('starts alice\'s server: state saved right after create, reachable at its container IP, reaches the hub', async () => {
    const rec = spawnRequest(hub, 'alice');
    let existedAtSave: boolean | undefined;
    let runningAtSave: boolean | undefined;
    rec.request.saveState = async (s) => {
      rec.saved.push(s);
      const info = await docker.getContainer(String(s.containerId)).inspect();
      existedAtSave = true;
      runningAtSave = info.State.Running;
    };
    alice = await startAndWait(spawner, rec);
    const state = parseDockerState(alice.state)!;
    aliceId = state.containerId;
    expect(state.name).toBe(`${containerName(PREFIX, key('alice'), '')}`);
    expect(rec.saved).toEqual([alice.state]);
    expect(existedAtSave).toBe(true);
    expect(runningAtSave).toBe(false);
    expect(alice.url).toMatch(/^http:\/\/\d+\.\d+\.\d+\.\d+:8888$/);
    const res = await fetch(`${alice.url}/user/alice/api`);
    expect(res.status).toBe(200);
    expect(await res.json()).toHaveProperty('version');
    expect(rec.events.map((e) => e.message)).toEqual(expect.arrayContaining([`Creating container ${containerName(PREFIX, key('alice'), '')}`, `Starting container ${containerName(PREFIX, key('alice'), '')}`]));
    // jupyterhub-singleuser checks the hub's version at start: the container reached the hub on the gateway.
    await eventually(async () => hub.requests.includes('GET /hub/api'), 15_000);
  });

  it('is hardened and limited as docker inspect shows, with the home volume owned by the notebook user', async () => {
    const info = await docker.getContainer(aliceId).inspect();
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.CapAdd ?? []).toEqual([]);
    expect(info.HostConfig.SecurityOpt).toContain('no-new-privileges');
    expect(info.Config.User).toBe('1000:1000');
    expect(info.HostConfig.Memory).toBe(512 * 1024 ** 2);
    expect(info.HostConfig.PidsLimit).toBe(256);
    expect(info.HostConfig.NanoCpus).toBe(1.5e9);
    expect(info.HostConfig.Binds ?? []).toEqual([]);
    expect(info.Mounts).toHaveLength(1);
    expect(info.Mounts[0]).toMatchObject({ Type: 'volume', Name: `${homeVolumeName(PREFIX, key('alice'))}`, Destination: '/home/jovyan', RW: true });
    expect(JSON.stringify(info.Mounts)).not.toContain('docker.sock');
    expect(info.Config.Labels).toMatchObject({ 'org.labhub.hub': HUB_ID, 'org.labhub.user': 'alice', 'org.labhub.server': '' });
    expect(info.Config.Env).toContain('JUPYTERHUB_SERVICE_URL=http://0.0.0.0:8888/user/alice/');

    const inside = await exec(aliceId, ['sh', '-c', 'id -u; id -g; stat -c %u:%g /home/jovyan; grep -E "^(CapEff|NoNewPrivs)" /proc/1/status']);
    expect(inside.exitCode).toBe(0);
    expect(inside.output.split('\n')).toEqual(['1000', '1000', '1000:1000', 'CapEff:\t0000000000000000', 'NoNewPrivs:\t1']);
    const cg = await exec(aliceId, ['sh', '-c', 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes']);
    expect(Number(cg.output)).toBe(512 * 1024 ** 2);
  });

  it('polls running, keeps a file in the home across stop and start, and stop removes the container but not the volume', async () => {
    expect(await spawner.poll(alice.state)).toEqual({ running: true });
    const wrote = await exec(aliceId, ['sh', '-c', 'echo kept-across-restarts > /home/jovyan/notes.txt && ls -ln /home/jovyan/notes.txt']);
    expect(wrote.exitCode).toBe(0);
    expect(wrote.output).toMatch(/ 1000 +1000 /);

    const t0 = performance.now();
    await spawner.stop(alice.state);
    const stopMs = performance.now() - t0;
    expect(stopMs).toBeLessThan(5000); // tini forwards SIGTERM: no 10 s wait for SIGKILL
    expect(await containerExists(aliceId)).toBe(false);
    expect(await spawner.poll(alice.state)).toEqual({ running: false, exitCode: null });
    const volume = await docker.getVolume(`${homeVolumeName(PREFIX, key('alice'))}`).inspect();
    expect(volume.Labels).toMatchObject({ 'org.labhub.hub': HUB_ID, 'org.labhub.user': 'alice' });
    await spawner.stop(alice.state); // already gone: tolerated

    const again = await startAndWait(spawner, spawnRequest(hub, 'alice'));
    const id = parseDockerState(again.state)!.containerId;
    expect(id).not.toBe(aliceId);
    expect((await exec(id, ['cat', '/home/jovyan/notes.txt'])).output).toBe('kept-across-restarts');
    await spawner.stop(again.state, { now: true });
    expect(await containerExists(id)).toBe(false);
  });

  it('starts two users at the same time, each in their own container answering only its own prefix', async () => {
    const [bob, carol] = await Promise.all([startAndWait(spawner, spawnRequest(hub, 'bob')), startAndWait(spawner, spawnRequest(hub, 'carol'))]);
    const [b, c] = [parseDockerState(bob.state)!, parseDockerState(carol.state)!];
    expect(b.containerId).not.toBe(c.containerId);
    expect(bob.url).not.toBe(carol.url);
    expect(await getStatus(`${bob.url}/user/bob/api`)).toBe(200);
    expect(await getStatus(`${carol.url}/user/carol/api`)).toBe(200);
    expect(await getStatus(`${bob.url}/user/carol/api`)).toBe(404);
    const mounts = await Promise.all([b, c].map(async (s) => (await docker.getContainer(s.containerId).inspect()).Mounts[0]?.Name));
    expect(mounts).toEqual([`${homeVolumeName(PREFIX, key('bob'))}`, `${homeVolumeName(PREFIX, key('carol'))}`]);
    await Promise.all([spawner.stop(bob.state), spawner.stop(carol.state)]);
    expect(await containerExists(b.containerId)).toBe(false);
    expect(await containerExists(c.containerId)).toBe(false);
  });

  it('a named server gets its own container and shares the user\'s home volume', async () => {
    const named = await startAndWait(spawner, spawnRequest(hub, 'alice', { server: 'gpu' }));
    const s = parseDockerState(named.state)!;
    expect(s.name).toBe(`${containerName(PREFIX, key('alice'), 'gpu')}`);
    expect((await exec(s.containerId, ['cat', '/home/jovyan/notes.txt'])).output).toBe('kept-across-restarts');
    expect(await getStatus(`${named.url}/user/alice/gpu/api`)).toBe(200);
    await spawner.stop(named.state, { now: true });
  });

  it('mounts templated extra volumes and a read-only class volume, and hands secret files to the notebook user only', async () => {
    const classVolume = `${PREFIX}-class-materials`;
    await seedVolume(classVolume, 'echo lecture-1 > /m/notes.txt');
    const withExtras = new DockerSpawner({ ...options(), volumes: [{ source: `${PREFIX}-scratch-{username}`, target: '/scratch' }] });
    const rec = spawnRequest(hub, 'kim');
    rec.request.profile = { id: 'bio101/python', memLimit: 300 * 1024 ** 2, cpuLimit: 0.5, sharedVolumes: [{ volume: classVolume, mountPath: '/home/jovyan/shared/bio101' }] };
    rec.request.secretFiles = { 'credentials.json': '{"mqtt":{"password":"s3cret"}}' };
    const kim = await startAndWait(withExtras, rec);
    const id = parseDockerState(kim.state)!.containerId;
    const info = await docker.getContainer(id).inspect();
    expect(info.HostConfig).toMatchObject({ Memory: 300 * 1024 ** 2, NanoCpus: 5e8 });
    expect(info.Config.Env).toContain('LABHUB_SECRETS_DIR=/run/labhub');
    const look = await exec(id, ['sh', '-c', [
      'cat /home/jovyan/shared/bio101/notes.txt',
      'touch /home/jovyan/shared/bio101/x 2>/dev/null && echo writable || echo read-only',
      'touch /scratch/ok && echo scratch-ok',
      'stat -c "%u %a" /run/labhub /run/labhub/credentials.json',
      'cat /run/labhub/credentials.json',
    ].join('; ')]);
    expect(look.output.split('\n')).toEqual(['lecture-1', 'read-only', 'scratch-ok', '1000 700', '1000 600', '{"mqtt":{"password":"s3cret"}}']);
    expect(info.Mounts.map((m) => m.Name)).toContain(`${PREFIX}-scratch-kim`);
    await withExtras.stop(kim.state, { now: true });
    await docker.getVolume(`${PREFIX}-scratch-kim`).remove().catch(() => undefined);
    await docker.getVolume(classVolume).remove().catch(() => undefined);
  });

  it('refuses a class shared volume that is a user\'s own home, whoever it was made for, before creating a container', async () => {
    const spawner = new DockerSpawner(options());
    const gone = await startAndWait(spawner, spawnRequest(hub, 'gone'));
    await spawner.stop(gone.state, { now: true });
    // The hub checks names against the users it has; the engine's labels also cover homes of users since deleted.
    const home = spawner.userVolumes({ name: 'gone', ...key('gone') })[0]!;
    const rec = spawnRequest(hub, 'lee');
    rec.request.profile = { id: 'bio101/python', sharedVolumes: [{ volume: home, mountPath: '/home/jovyan/shared/bio101' }] };
    await expect(spawner.start(rec.request)).rejects.toMatchObject({ status: 403, message: expect.stringMatching(`shared volume ${home} of bio101/python is a user's own volume`) });
    expect(rec.saved).toEqual([]);
    expect(await containerExists(`${PREFIX}-lee`)).toBe(false);
  });

  it('a missing image fails fast with a message an admin can act on, and leaves nothing behind', async () => {
    const missing = new DockerSpawner({ ...options(), image: `labhub/does-not-exist-${RUN}:latest` });
    const rec = spawnRequest(hub, 'dave');
    const t0 = performance.now();
    await expect(missing.start(rec.request)).rejects.toThrow(/is not on the Docker engine and the pull policy is "never"/);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(rec.saved).toEqual([]);
    expect(await containerExists(`${containerName(PREFIX, key('dave'), '')}`)).toBe(false);
  });

  it('an engine that does not answer fails the spawn fast with the engine address in the message', async () => {
    const down = new DockerSpawner({ ...options(), socketPath: `/tmp/no-docker-${RUN}.sock` });
    const t0 = performance.now();
    await expect(down.start(spawnRequest(hub, 'dave').request)).rejects.toThrow(`Cannot reach the Docker engine at unix:///tmp/no-docker-${RUN}.sock (ENOENT; is dockerd running?)`);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('an image the user may not choose is refused before anything is created', async () => {
    const rec = spawnRequest(hub, 'dave', { userOptions: { image: 'evil/miner:latest' } });
    await expect(spawner.start(rec.request)).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/not allowed/) });
    expect(rec.saved).toEqual([]);
  });

  it('a server that exits while starting fails with its output, and its container is removed', async () => {
    const failing = new DockerSpawner({ ...options(), cmd: ['sh', '-c', 'echo "no notebook here: $JUPYTERHUB_USER"; exit 3'], startupCheckMs: 3000 });
    const rec = spawnRequest(hub, 'erin');
    await expect(failing.start(rec.request)).rejects.toThrow(/exited with code 3 while starting\.\nLast output:\nno notebook here: erin/);
    expect(rec.saved).toHaveLength(1);
    expect(await containerExists(String(rec.saved[0]!.containerId))).toBe(false);
  });

  it('a start aborted after the container was created removes it', async () => {
    const rec = spawnRequest(hub, 'frank', { onSave: () => rec.abort.abort(new Error('the user stopped the server')) });
    await expect(spawner.start(rec.request)).rejects.toThrow('the user stopped the server');
    expect(rec.saved).toHaveLength(1);
    expect(await containerExists(String(rec.saved[0]!.containerId))).toBe(false);
  });

  it('replaces a stale container of its own under the same name, but never someone else\'s', async () => {
    const stale = await docker.createContainer({ name: `${containerName(PREFIX, key('grace'), '')}`, Image: IMAGE, Labels: { 'org.labhub.hub': HUB_ID }, Cmd: ['true'] });
    const started = await startAndWait(spawner, spawnRequest(hub, 'grace'));
    expect(await containerExists(stale.id)).toBe(false);
    await spawner.stop(started.state, { now: true });

    const foreign = await docker.createContainer({ name: `${containerName(PREFIX, key('heidi'), '')}`, Image: IMAGE, Labels: { 'org.labhub.hub': `${HUB_ID}-other` }, Cmd: ['true'] });
    try {
      await expect(spawner.start(spawnRequest(hub, 'heidi').request)).rejects.toMatchObject({ status: 409 });
      expect(await containerExists(foreign.id)).toBe(true);
    } finally {
      await foreign.remove({ force: true });
    }
  });

  it('finds and removes orphans: containers labelled as this hub\'s that the DB does not know', async () => {
    const known = await startAndWait(spawner, spawnRequest(hub, 'ivan'));
    const orphan = await docker.createContainer({
      name: `${PREFIX}-orphan`, Image: IMAGE, Cmd: ['sleep', '600'],
      Labels: { 'org.labhub.hub': HUB_ID, 'org.labhub.user': 'ghost', 'org.labhub.server': '' },
    });
    await orphan.start();
    const orphans = await spawner.listOrphans([known.state]);
    expect(orphans.map((o) => o.name)).toEqual([`${PREFIX}-orphan`]);
    expect(orphans[0]).toMatchObject({ user: 'ghost', server: '', state: 'running' });
    // A restarted spawner (no memory of its own) re-attaches to the known server through its state.
    const restarted = new DockerSpawner(options());
    expect(await restarted.poll(known.state)).toEqual({ running: true });
    expect((await restarted.removeOrphans([known.state])).map((o) => o.id)).toEqual([orphan.id]);
    expect(await containerExists(orphan.id)).toBe(false);
    expect(await getStatus(`${known.url}/user/ivan/api`)).toBe(200);
    await restarted.stop(known.state);
    expect(await containerExists(parseDockerState(known.state)!.containerId)).toBe(false);
  });

  it('removeOnStop=false keeps the stopped container for inspection, and the next start replaces it', async () => {
    const keeping = new DockerSpawner({ ...options(), removeOnStop: false });
    const first = await startAndWait(keeping, spawnRequest(hub, 'judy'));
    const firstId = parseDockerState(first.state)!.containerId;
    await keeping.stop(first.state);
    expect((await docker.getContainer(firstId).inspect()).State.Running).toBe(false);
    expect(await keeping.poll(first.state)).toMatchObject({ running: false });
    const second = await startAndWait(keeping, spawnRequest(hub, 'judy'));
    expect(parseDockerState(second.state)!.containerId).not.toBe(firstId);
    expect(await containerExists(firstId)).toBe(false);
    await new DockerSpawner(options()).stop(second.state, { now: true });
  });

  it('an engine that goes away after the container was created fails the start clearly; the saved state still removes it', async () => {
    const proxy = await socketProxy('/var/run/docker.sock');
    try {
      const flaky = new DockerSpawner({ ...options(), socketPath: proxy.path });
      const rec = spawnRequest(hub, 'kim', { onSave: () => proxy.cut() });
      const t0 = performance.now();
      // ENOENT for a new connection; EPIPE/ECONNRESET when a kept-alive one was cut under it.
      await expect(flaky.start(rec.request)).rejects.toThrow(/^Cannot reach the Docker engine at unix:\/\/\S+ \((ENOENT|EPIPE|ECONNRESET); (is dockerd running|the connection was cut: did dockerd stop)\?\)/);
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(rec.saved).toHaveLength(1);
      // Created, recorded, never started: the hub stops it with the saved state once the engine answers again.
      const id = String(rec.saved[0]!.containerId);
      expect((await docker.getContainer(id).inspect()).State.Status).toBe('created');
      await spawner.stop(rec.saved[0]!);
      expect(await containerExists(id)).toBe(false);
    } finally {
      proxy.close();
    }
  });

  it('an engine that accepts connections but never answers fails the spawn within engineTimeoutMs', async () => {
    const path = join(tmpdir(), `labhub-hung-${RUN}.sock`);
    const held: Socket[] = [];
    const server = createNetServer((c) => held.push(c));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const hung = new DockerSpawner({ ...options(), socketPath: path, engineTimeoutMs: 800 });
      const t0 = performance.now();
      await expect(hung.start(spawnRequest(hub, 'kim').request)).rejects.toThrow(/did not answer \(inspect image .*\) within 1 s/);
      expect(performance.now() - t0).toBeLessThan(2500);
    } finally {
      for (const c of held) c.destroy();
      server.close();
    }
  });
});

/** A unix socket forwarding to the engine's, which can be cut (as if dockerd stopped) at any moment. */
async function socketProxy(target: string): Promise<{ path: string; cut(): void; close(): void }> {
  const path = join(tmpdir(), `labhub-docker-proxy-${RUN}.sock`);
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    const upstream = connect(target);
    for (const sock of [client, upstream]) {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const cut = () => {
    server.close();
    for (const sock of sockets) sock.destroy();
  };
  return { path, cut, close: cut };
}

describe.skipIf(!registryOk)('DockerSpawner image pulls (from a private docker-registry on 127.0.0.1)', () => {
  let registry: ChildProcess | null = null;
  let dir = '';
  let image = '';
  const progressOf = () => {
    const events: ProgressEvent[] = [];
    return { events, request: { userOptions: {}, signal: new AbortController().signal, progress: (e: ProgressEvent) => events.push(e) } };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'labhub-registry-'));
    const port = await freePort();
    writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
    registry = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
    await eventually(async () => (await getStatus(`http://127.0.0.1:${port}/v2/`)) === 200, 15_000, 100);
    // A tiny image (one file), pushed to the registry then removed locally: 127.0.0.1 registries need no TLS.
    image = `127.0.0.1:${port}/labhub-test/tiny:${RUN}`;
    writeFileSync(join(dir, 'hello.txt'), 'hello\n');
    execFileSync('tar', ['-C', dir, '-cf', join(dir, 'rootfs.tar'), 'hello.txt']);
    const [repo, tag] = [image.slice(0, image.lastIndexOf(':')), RUN];
    await followStream(await docker.importImage(createReadStream(join(dir, 'rootfs.tar')), { repo, tag }));
    // The engine wants an X-Registry-Auth header even for a registry without authentication.
    await followStream(await docker.getImage(image).push({ authconfig: { username: '', password: '', serveraddress: `127.0.0.1:${port}` } }));
    await docker.getImage(image).remove();
  });

  afterAll(async () => {
    registry?.kill('SIGTERM');
    await docker.getImage(image).remove({ force: true }).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('if-not-present pulls a missing image once, with progress, and concurrent spawns share the pull', async () => {
    const spawner = new DockerSpawner({ image, pullPolicy: 'if-not-present', hubId: HUB_ID, namePrefix: PREFIX, logger });
    const [a, b] = [progressOf(), progressOf()];
    const [ra, rb] = await Promise.all([spawner.prepare(a.request), spawner.prepare(b.request)]);
    expect(ra.image).toBe(image);
    expect(rb.info.Id).toBe(ra.info.Id);
    const messages = [...a.events, ...b.events].map((e) => e.message);
    expect(messages).toContain(`Pulling image ${image}`);
    expect(messages.some((m) => m.startsWith(`Pulled image ${image} in `))).toBe(true);
    expect(messages).toContain(`Waiting for the pull of ${image} another spawn started`);
    const again = progressOf();
    await spawner.prepare(again.request);
    expect(again.events).toEqual([]);
  });

  it('always pulls even when the image is present (at most once a minute per image)', async () => {
    const spawner = new DockerSpawner({ image, pullPolicy: 'always', hubId: HUB_ID, namePrefix: PREFIX, logger });
    const first = progressOf();
    await spawner.prepare(first.request);
    expect(first.events.map((e) => e.message)).toContain(`Pulling image ${image}`);
    const second = progressOf();
    await spawner.prepare(second.request);
    expect(second.events).toEqual([]);
  });

  it('an image the registry does not have fails the spawn with the registry\'s answer', async () => {
    const missing = `${image.slice(0, image.lastIndexOf(':'))}:nope-${RUN}`;
    const spawner = new DockerSpawner({ image: missing, pullPolicy: 'if-not-present', hubId: HUB_ID, namePrefix: PREFIX, logger });
    const t0 = performance.now();
    await expect(spawner.prepare(progressOf().request)).rejects.toThrow(new RegExp(`Pulling ${missing.replace(/[.]/g, '\\.')} failed: .*(manifest unknown|not found)`));
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('always falls back to the local copy when the registry is down (last: stops the registry)', async () => {
    registry?.kill('SIGTERM');
    await eventually(async () => (await getStatus(`http://${image.split('/')[0]}/v2/`)) === 0, 10_000, 100);
    const spawner = new DockerSpawner({ image, pullPolicy: 'always', hubId: HUB_ID, namePrefix: PREFIX, logger });
    const p = progressOf();
    const { info } = await spawner.prepare(p.request);
    expect(info.Id).toMatch(/^sha256:/);
    expect(p.events.map((e) => e.message)).toContain(`Could not pull ${image}; using the copy already on the engine`);
  });
});

function followStream(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
      const failed = output?.find((o) => o.error);
      if (err || failed) reject(err ?? new Error(failed!.error));
      else resolve();
    });
  });
}

/** The name the release before uids gave olga's home volume (`<prefix>-home-<escaped name>`) in the end-to-end hub. */
const OLGAS_OLD_VOLUME = `${PREFIX}-e2e-home-${escapeDockerName('olga')}`;

describe.skipIf(!imageOk)('hub end to end with the Docker spawner', () => {
  let hub: Hub;
  let base = '';
  let dataDir = '';
  const serviceToken = randomBytes(24).toString('hex');
  let spawner: DockerSpawner;

  beforeAll(async () => {
    spawner = new DockerSpawner({ image: IMAGE, pullPolicy: 'never', hubId: HUB_ID, namePrefix: `${PREFIX}-e2e`, logger, memLimit: '1g', pidsLimit: 512 });
    const gateway = (await spawner.gatewayAddress())!;
    dataDir = mkdtempSync(join(tmpdir(), 'labhub-docker-e2e-'));
    // A state DB from the release before uids, with olga, and the home volume that release gave her.
    const old = openDatabase({ sqlitePath: sqlitePathOf(loadConfig({ env: { LABHUB_DATA_DIR: dataDir } }))! });
    expect((await migrator(old.db, old.dialect).migrateTo('003-credentials')).error).toBeUndefined();
    await sql`insert into users (name, admin, created, cookie_id) values ('olga', 0, '2026-01-01T00:00:00.000Z', 'c')`.execute(old.db);
    await old.close();
    await seedVolume(OLGAS_OLD_VOLUME, 'echo from-the-old-release > /m/kept.txt && chown -R 1000:1000 /m');
    const [port, hubPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    base = `http://127.0.0.1:${port}`;
    const config = loadConfig({
      env: {
        LABHUB_DATA_DIR: dataDir,
        LABHUB_IP: '127.0.0.1',
        LABHUB_PORT: String(port),
        // The hub listens on the bridge gateway: the proxy reaches it there, and so do the containers.
        LABHUB_HUB__IP: gateway,
        LABHUB_HUB__PORT: String(hubPort),
        LABHUB_PROXY__API_URL: `http://127.0.0.1:${apiPort}`,
        LABHUB_PROXY__COMMAND: JSON.stringify([process.execPath, join(REPO, 'dist/proxy/main.js')]),
        LABHUB_PROXY__CHECK_INTERVAL: '1',
        LABHUB_AUTHENTICATOR__KIND: 'dummy',
        LABHUB_AUTHENTICATOR__PASSWORD: 'docker-e2e-password',
        LABHUB_SERVICES: `[{name: tester, admin: true, api_token: "${serviceToken}"}]`,
        LABHUB_SPAWNER__POLL_INTERVAL: '2',
        LABHUB_LOG_LEVEL: 'warn',
      },
    });
    hub = await startHub(config, { spawner, log: createLogger('test.docker-e2e', { level: 'warn' }) });
  });

  afterAll(async () => {
    for (const u of ['alice', 'bob', 'olga', 'carl']) await api(base, serviceToken, 'DELETE', `/users/${u}/server`).catch(() => undefined);
    await hub?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('alice and bob start at the same time; each lands in their own container through the proxy and never in the other\'s; stop removes them', async () => {
    const alice = new Browser(base);
    const bob = new Browser(base);
    expect((await alice.login('alice', 'docker-e2e-password')).status).toBe(200);
    expect((await bob.login('bob', 'docker-e2e-password')).status).toBe(200);

    const t0 = performance.now();
    const started = await Promise.all(['alice', 'bob'].map((u) => api(base, serviceToken, 'POST', `/users/${u}/server`)));
    for (const s of started) expect([201, 202], JSON.stringify(s.body)).toContain(s.status);
    for (const u of ['alice', 'bob']) {
      await eventually(async () => {
        const model = await api(base, serviceToken, 'GET', `/users/${u}`);
        return (model.body as { servers: Record<string, { ready: boolean }> }).servers['']?.ready;
      }, 90_000, 50);
    }
    readyTimes.push(Math.round(performance.now() - t0));

    await landInServer(alice, '/user/alice/');
    await landInServer(bob, '/user/bob/');
    // alice's session is no key to bob's server: his server refuses her API calls, and the hub refuses her at its
    // authorize step when she opens his pages.
    expect((await alice.request('/user/bob/api/status')).status).toBe(403);
    const intrusion = await alice.navigate('/user/bob/');
    expect(intrusion.status).toBe(403);
    expect(alice.visited.at(-1)).toMatch(/^\/hub\/api\/oauth2\/authorize/);
    expect((await alice.request('/user/alice/api/status')).status).toBe(200);

    const containers = await docker.listContainers({ filters: { label: [`org.labhub.hub=${HUB_ID}`] } });
    const byUser = Object.fromEntries(containers.filter((c) => c.Names[0]!.startsWith(`/${PREFIX}-e2e-`)).map((c) => [c.Labels['org.labhub.user'], c]));
    expect(Object.keys(byUser).sort()).toEqual(['alice', 'bob']);

    for (const u of ['alice', 'bob']) {
      const stopped = await api(base, serviceToken, 'DELETE', `/users/${u}/server`);
      expect([202, 204]).toContain(stopped.status);
    }
    for (const u of ['alice', 'bob']) {
      await eventually(async () => !((await api(base, serviceToken, 'GET', `/users/${u}`)).body as { servers: Record<string, unknown> }).servers['']);
      await eventually(async () => !(await containerExists(byUser[u]!.Id)), 15_000);
    }
    expect((await alice.request('/user/alice/api/status')).status).toBe(424);
  });
  /** Starts a user's default server through the API and answers its container once it is ready. */
  async function startedContainer(user: string): Promise<Docker.ContainerInfo> {
    const started = await api(base, serviceToken, 'POST', `/users/${user}/server`);
    expect([201, 202], JSON.stringify(started.body)).toContain(started.status);
    await eventually(async () => ((await api(base, serviceToken, 'GET', `/users/${user}`)).body as { servers: Record<string, { ready: boolean }> }).servers['']?.ready, 90_000, 50);
    const [container] = await docker.listContainers({ filters: { label: [`org.labhub.hub=${HUB_ID}`, `org.labhub.user=${user}`] } });
    return container!;
  }
  const homeOf = (c: Docker.ContainerInfo) => c.Mounts.find((m) => m.Destination === '/home/jovyan')!.Name!;
  const volumeExists = (name: string) => docker.getVolume(name).inspect().then(() => true, () => false);

  it('after the upgrade, an account from before uids still mounts the home volume it had', async () => {
    const container = await startedContainer('olga');
    expect(homeOf(container)).toBe(OLGAS_OLD_VOLUME);
    expect((await exec(container.Id, ['cat', '/home/jovyan/kept.txt'])).output).toBe('from-the-old-release');
    expect((await api(base, serviceToken, 'DELETE', '/users/olga/server')).status).toBe(204);
  });

  it('a deleted account\'s successor of the same name gets a fresh, empty home; purge removes the volume', async () => {
    expect((await api(base, serviceToken, 'POST', '/users/carl')).status).toBe(201);
    const first = await startedContainer('carl');
    expect((await exec(first.Id, ['sh', '-c', 'echo carl-1 > /home/jovyan/mine.txt'])).exitCode).toBe(0);
    // Deleting stops the server; without purge the home volume stays, out of every later account's reach.
    expect((await api(base, serviceToken, 'DELETE', '/users/carl')).status).toBe(204);
    expect(await containerExists(first.Id)).toBe(false);
    expect(await volumeExists(homeOf(first))).toBe(true);

    expect((await api(base, serviceToken, 'POST', '/users/carl')).status).toBe(201);
    const second = await startedContainer('carl');
    expect(homeOf(second)).not.toBe(homeOf(first));
    expect((await exec(second.Id, ['sh', '-c', 'test -e /home/jovyan/mine.txt && echo found || echo absent'])).output).toBe('absent');
    expect((await api(base, serviceToken, 'DELETE', '/users/carl?purge=true')).status).toBe(204);
    expect(await volumeExists(homeOf(second))).toBe(false);
  });
});
