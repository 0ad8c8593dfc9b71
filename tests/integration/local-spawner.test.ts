/**
 * LocalSpawner against real jupyterhub-singleuser servers: Debian's 3.0 (/usr/bin) and 5.x from PyPI
 * (/opt/labhub/venv-jh5), both installed by scripts/setup-test-env.sh.
 *
 * The hub side is a minimal test double (GET /hub/api, GET /hub/api/user, POST activity): the servers need
 * something to answer their startup version check and token lookups; the full hub is tested elsewhere.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../hub/log.js';
import { eventually } from '../helpers/hub.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';
import { homeDirName, LocalSpawner, uidDirName, type LocalSpawnerOptions } from '../../spawners/local.js';
import { accountKey as key } from '../helpers/accounts.js';
import { oauthClientId } from '../../hub/servers/naming.js';
import type { ProgressEvent, SpawnRequest, SpawnerState } from '../../spawners/spawner.js';

const SINGLEUSER = ([3, 5, 6] as const).map((major) => {
  const bin = findSingleuser(major);
  return { label: `${major}.x`, major: String(major), bin: bin ?? '', available: requireService(`jupyterhub-singleuser ${major}.x`, bin !== null) };
});
const isRoot = process.getuid?.() === 0;
const logger = createLogger('test.local-spawner', { level: 'error' });

/** What a hub answers a single-user server with: just enough for startup and token checks. */
interface FakeHub {
  url: string;
  serverToken: string;
  userToken: string;
  requests: string[];
  close(): Promise<void>;
}

async function startFakeHub(user: string): Promise<FakeHub> {
  const serverToken = randomBytes(16).toString('hex');
  const userToken = randomBytes(16).toString('hex');
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0]!;
    requests.push(`${req.method} ${url}`);
    res.setHeader('X-JupyterHub-Version', '3.0.0');
    res.setHeader('Content-Type', 'application/json');
    const token = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (req.method === 'GET' && (url === '/hub/api' || url === '/hub/api/')) {
      res.end(JSON.stringify({ version: '3.0.0' }));
    } else if (req.method === 'GET' && url === '/hub/api/user' && (token === userToken || token === serverToken)) {
      const scopes = token === userToken ? [`access:servers!server=${user}/`, `read:users:name!user=${user}`] : [];
      res.end(JSON.stringify({ kind: 'user', name: user, admin: false, groups: [], scopes, session_id: null }));
    } else if (req.method === 'POST' && url === `/hub/api/users/${user}/activity` && token === serverToken) {
      req.resume();
      res.end('{}');
    } else {
      res.statusCode = 403;
      res.end(JSON.stringify({ status: 403, message: 'Forbidden' }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    serverToken,
    userToken,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The environment the hub prepares (hub/servers/environment.ts), without JUPYTERHUB_SERVICE_URL. */
function hubEnv(hub: FakeHub, user: string): Record<string, string> {
  const api = `${hub.url}/hub/api`;
  const scopes = JSON.stringify([`access:servers!server=${user}/`, `access:servers!user=${user}`]);
  return {
    JUPYTERHUB_API_TOKEN: hub.serverToken,
    JUPYTERHUB_CLIENT_ID: oauthClientId(key(user).uid, ''),
    JUPYTERHUB_API_URL: api,
    JUPYTERHUB_USER: user,
    JUPYTERHUB_SERVER_NAME: '',
    JUPYTERHUB_SERVICE_PREFIX: `/user/${user}/`,
    JUPYTERHUB_OAUTH_CALLBACK_URL: `/user/${user}/oauth_callback`,
    JUPYTERHUB_OAUTH_ACCESS_SCOPES: scopes,
    JUPYTERHUB_BASE_URL: '/',
    JUPYTERHUB_ACTIVITY_URL: `${api}/users/${user}/activity`,
  };
}

interface Recorded {
  request: SpawnRequest;
  saved: SpawnerState[];
  events: ProgressEvent[];
  controller: AbortController;
}

function spawnRequest(user: string, env: Record<string, string>, onSave?: (r: Recorded) => void): Recorded {
  const controller = new AbortController();
  const rec: Recorded = {
    controller,
    saved: [],
    events: [],
    request: {
      user: { name: user, ...key(user), admin: false, groups: [] },
      serverName: '',
      prefix: `/user/${user}/`,
      env,
      userOptions: {},
      signal: controller.signal,
      progress: (e) => rec.events.push(e),
      saveState: async (s) => {
        rec.saved.push(s);
        onSave?.(rec);
      },
    },
  };
  return rec;
}

async function waitForApi(url: string, timeoutMs = 30_000): Promise<{ status: number; body: unknown; headers: Headers }> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(2000) });
      if (res.status < 500) return { status: res.status, body: await res.json(), headers: res.headers };
      last = res.status;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = execFileSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' });
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

let dataDir: string;
beforeAll(async () => {
  dataDir = await fsp.mkdtemp(path.join(tmpdir(), 'labhub-local-spawner-'));
});
afterAll(async () => {
  await fsp.rm(dataDir, { recursive: true, force: true });
});

function spawner(options: Partial<LocalSpawnerOptions> = {}): LocalSpawner {
  // The tests run as root on CI machines, with no system account named like the test users: hub-user mode as root.
  return new LocalSpawner({ dataDir, logger, allowRoot: true, ...options });
}

describe.each(SINGLEUSER)('LocalSpawner with jupyterhub-singleuser $label', ({ bin, major, available }) => {
  let hub: FakeHub;
  if (!available) {
    it.skip('needs jupyterhub-singleuser', () => {});
    return;
  }
  beforeAll(async () => {
    hub = await startFakeHub('alice');
  });
  afterAll(async () => {
    await hub?.close();
  });

  it('starts a server that answers on its prefix, polls it, and stops it with its kernels', async () => {
    const local = spawner({ cmd: [bin] });
    const rec = spawnRequest('alice', hubEnv(hub, 'alice'));
    const t0 = Date.now();
    const result = await local.start(rec.request);
    const started = Date.now() - t0;
    const state = result.state as { pid: number; port: number; startTime: number | null };
    try {
      expect(started).toBeLessThan(5000);
      expect(result.url).toBe(`http://127.0.0.1:${state.port}`);
      expect(rec.saved).toEqual([state]);
      expect(state.pid).toBeGreaterThan(1);
      expect(typeof state.startTime).toBe('number');
      expect(rec.events.map((e) => e.message)).toContain('Starting jupyterhub-singleuser');

      const api = await waitForApi(`${result.url}/user/alice/api`);
      expect(api.status).toBe(200);
      expect((api.body as { version: string }).version).toMatch(/^\d+\.\d+/);
      expect(api.headers.get('x-jupyterhub-version')?.split('.')[0]).toBe(major);
      // The server checked the hub's version at startup, at JUPYTERHUB_API_URL.
      expect(hub.requests).toContain('GET /hub/api');
      expect(await local.poll(result.state)).toEqual({ running: true });

      // The server runs as the hub's user in <dataDir>/users/@<uid>, in its own process group, output in a log file.
      const userDir = path.join(dataDir, 'users', homeDirName(key('alice')));
      expect((await fsp.readlink(`/proc/${state.pid}/cwd`))).toBe(userDir);
      expect(((await fsp.stat(userDir)).mode & 0o777).toString(8)).toBe('700');
      expect(groupAlive(state.pid)).toBe(true);
      const log = await fsp.readFile(path.join(userDir, '.labhub.log'), 'utf8');
      expect(log).toContain('jupyterhub');
      expect(log).not.toContain(hub.serverToken);

      // A kernel, started through the server's API with a user's token, runs in its own session.
      const kernelRes = await fetch(`${result.url}/user/alice/api/kernels`, {
        method: 'POST',
        headers: { Authorization: `token ${hub.userToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'python3' }),
      });
      expect(kernelRes.status).toBe(201);
      const kernelPids = await waitForKernel(state.pid);
      expect(kernelPids.length).toBeGreaterThan(0);
      // Usage covers the server and its kernel: more memory than the server alone, and CPU time that only grows.
      const serverOnly = Number(/^VmRSS:\s+(\d+) kB$/m.exec(await fsp.readFile(`/proc/${state.pid}/status`, 'utf8'))![1]) * 1024;
      const usage = (await local.stats(result.state))!;
      expect(usage.memBytes).toBeGreaterThan(serverOnly);
      expect(usage.cpuSecondsTotal).toBeGreaterThan(0);
      expect((await local.stats(result.state))!.cpuSecondsTotal).toBeGreaterThanOrEqual(usage.cpuSecondsTotal!);

      const t1 = Date.now();
      await local.stop(result.state);
      const stopMs = Date.now() - t1;
      expect(stopMs).toBeLessThan(6000);
      expect(await local.poll(result.state)).toMatchObject({ running: false });
      expect(await local.stats(result.state)).toBeUndefined();
      expect(pidAlive(state.pid)).toBe(false);
      expect(await portOpen(state.port)).toBe(false);
      for (const pid of kernelPids) expect(pidAlive(pid)).toBe(false);
      // Stopping again is harmless.
      await local.stop(result.state);
    } finally {
      await local.stop(result.state, { now: true });
    }
  });

  it('stop({now}) kills the server and the kernels it started at once', async () => {
    const local = spawner({ cmd: [bin] });
    const rec = spawnRequest('alice', hubEnv(hub, 'alice'));
    const result = await local.start(rec.request);
    const state = result.state as { pid: number; port: number };
    try {
      await waitForApi(`${result.url}/user/alice/api`);
      const kernelRes = await fetch(`${result.url}/user/alice/api/kernels`, {
        method: 'POST',
        headers: { Authorization: `token ${hub.userToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'python3' }),
      });
      expect(kernelRes.status).toBe(201);
      const kernelPids = await waitForKernel(state.pid);
      const t0 = Date.now();
      await local.stop(result.state, { now: true });
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(pidAlive(state.pid)).toBe(false);
      for (const pid of kernelPids) expect(pidAlive(pid)).toBe(false);
      expect(await local.poll(result.state)).toEqual({ running: false, exitCode: null });
    } finally {
      await local.stop(result.state, { now: true });
    }
  });

  it('abort during start kills the server process group and rejects', async () => {
    const local = spawner({ cmd: [bin] });
    const rec = spawnRequest('alice', hubEnv(hub, 'alice'), (r) => setTimeout(() => r.controller.abort(new Error('start timed out')), 50));
    await expect(local.start(rec.request)).rejects.toThrow('start timed out');
    const state = rec.saved[0] as { pid: number; port: number };
    expect(state).toBeDefined();
    expect(pidAlive(state.pid)).toBe(false);
    expect(groupAlive(state.pid)).toBe(false);
    expect(await local.poll(state)).toMatchObject({ running: false });
  });

  it('a server whose hub is unreachable reports failed version checks (and would exit after ~50 s of retries)', async () => {
    // The server's first request is GET $JUPYTERHUB_API_URL, 5 attempts 2-16 s apart, then exit 1 (~50 s; measured by hand).
    const local = spawner({ cmd: [bin] });
    const env = { ...hubEnv(hub, 'alice'), JUPYTERHUB_API_URL: 'http://127.0.0.1:9/hub/api' };
    const result = await local.start(spawnRequest('alice', env).request);
    try {
      const logFile = path.join(dataDir, 'users', homeDirName(key('alice')), '.labhub.log');
      const pattern = /Failed to connect to my Hub at http:\/\/127\.0\.0\.1:9\/hub\/api \(attempt 1\/5\)/;
      const deadline = Date.now() + 20_000;
      while (!pattern.test(await fsp.readFile(logFile, 'utf8')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await fsp.readFile(logFile, 'utf8')).toMatch(pattern);
      // Until the check passes the server does not answer.
      expect(await local.poll(result.state)).toEqual({ running: true });
    } finally {
      await local.stop(result.state, { now: true });
    }
  });
});

/** The kernel processes a server started (descendants of its pid), once they exist. */
async function waitForKernel(serverPid: number): Promise<number[]> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
    const kernels = out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => Number(f[1]) === serverPid && f.slice(2).join(' ').includes('ipykernel'))
      .map((f) => Number(f[0]));
    if (kernels.length) return kernels;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no kernel process appeared');
}

describe('LocalSpawner failures', () => {
  it('a command that exits at once fails fast with its exit code', async () => {
    const local = spawner({ cmd: ['/bin/false'] });
    const rec = spawnRequest('alice', { JUPYTERHUB_API_TOKEN: 'x'.repeat(32) });
    const t0 = Date.now();
    await expect(local.start(rec.request)).rejects.toThrow(/false exited with code 1 while starting/);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(rec.saved).toHaveLength(1);
    expect(await local.poll(rec.saved[0]!)).toEqual({ running: false, exitCode: 1 });
  });

  it('the error shows the tail of the output but never the secrets in the environment', async () => {
    const token = randomBytes(16).toString('hex');
    const script = 'echo "starting with token $JUPYTERHUB_API_TOKEN"; echo "url http://x/?token=abcdef"; echo "fatal: no config" >&2; exit 3';
    const local = spawner({ cmd: ['/bin/sh', '-c', script] });
    const err = await local.start(spawnRequest('alice', { JUPYTERHUB_API_TOKEN: token }).request).then(
      () => null,
      (e: unknown) => e as Error & { status?: number },
    );
    expect(err?.message).toMatch(/exited with code 3 while starting/);
    expect(err?.message).toContain('fatal: no config');
    expect(err?.message).toContain('[redacted]');
    expect(err?.message).not.toContain(token);
    expect(err?.message).not.toContain('abcdef');
    expect(err?.status).toBe(500);
  });

  it('hands secret files to the server in a 0700 directory named by LABHUB_SECRETS_DIR, and removes them at stop', async () => {
    const out = path.join(dataDir, 'secret-probe.txt');
    const script = `stat -c '%a' "$LABHUB_SECRETS_DIR" "$LABHUB_SECRETS_DIR/credentials.json" > ${out}; cat "$LABHUB_SECRETS_DIR/credentials.json" >> ${out}; exec sleep 60`;
    const local = spawner({ cmd: ['/bin/sh', '-c', script] });
    const rec = spawnRequest('alice', { JUPYTERHUB_API_TOKEN: 'x'.repeat(32) });
    rec.request.secretFiles = { 'credentials.json': '{"postgres":{"password":"pw"}}' };
    const started = await local.start(rec.request);
    await eventually(async () => (await fsp.readFile(out, 'utf8').catch(() => '')).includes('pw'), 5000, 20);
    expect((await fsp.readFile(out, 'utf8')).trim().split('\n')).toEqual(['700', '600', '{"postgres":{"password":"pw"}}']);
    const dir = String(started.state.secretsDir);
    expect(dir.startsWith(path.join(dataDir, 'secrets') + path.sep)).toBe(true);
    await local.stop(started.state, { now: true });
    expect(await fsp.stat(dir).then(() => true, () => false)).toBe(false);
    await expect(local.start({ ...spawnRequest('alice', {}).request, secretFiles: { '../escape': 'x' } })).rejects.toThrow(/invalid secret file name/);
  });

  it('a command that does not exist fails with "command not found"', async () => {
    const local = spawner({ cmd: ['/nonexistent/jupyterhub-singleuser'] });
    await expect(local.start(spawnRequest('alice', {}).request)).rejects.toThrow(/command not found/);
  });

  it.runIf(isRoot)('as root, refuses hub-user mode unless allowRoot is set', async () => {
    const local = new LocalSpawner({ dataDir, logger, cmd: ['/bin/sleep', '30'] });
    await expect(local.start(spawnRequest('nosuchuser-labhub', {}).request)).rejects.toThrow(/no system account named .*never as root/);
  });
});

describe.runIf(isRoot && SINGLEUSER[0]!.available)('LocalSpawner as root with a system account', () => {
  const name = `lhtest${randomBytes(3).toString('hex')}`;
  let hub: FakeHub;
  beforeAll(async () => {
    execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', name]);
    hub = await startFakeHub(name);
  });
  afterAll(async () => {
    await hub?.close();
    try {
      execFileSync('userdel', ['--remove', name], { stdio: 'ignore' });
    } catch {
      // userdel complains about a missing mail spool; the account is gone anyway.
    }
  });

  it('runs jupyterhub-singleuser 3.0 as that account, in its home, without root groups', async () => {
    const local = new LocalSpawner({ dataDir, logger, cmd: [SINGLEUSER[0]!.bin] });
    const rec = spawnRequest(name, hubEnv(hub, name));
    const result = await local.start(rec.request);
    const state = result.state as { pid: number };
    try {
      const api = await waitForApi(`${result.url}/user/${name}/api`);
      expect(api.status).toBe(200);
      const status = await fsp.readFile(`/proc/${state.pid}/status`, 'utf8');
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }));
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }));
      expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'));
      expect(status).toMatch(new RegExp(`^Gid:\\s+${gid}\\s+${gid}\\s+${gid}\\s+${gid}$`, 'm'));
      const groups = /^Groups:(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).filter(Boolean).map(Number) ?? [];
      expect(groups).not.toContain(0);
      expect(await fsp.readlink(`/proc/${state.pid}/cwd`)).toBe(`/home/${name}`);
      const environ = (await fsp.readFile(`/proc/${state.pid}/environ`, 'utf8')).split('\0');
      expect(environ).toContain(`HOME=/home/${name}`);
      expect(environ).toContain(`USER=${name}`);
      // No --allow-root for a server that does not run as root; the log is hub-owned, outside the user's reach.
      const cmdline = (await fsp.readFile(`/proc/${state.pid}/cmdline`, 'utf8')).split('\0');
      expect(cmdline).not.toContain('--allow-root');
      const logFile = path.join(dataDir, 'logs', uidDirName(key(name)), 'labhub.log');
      expect((await fsp.stat(logFile)).uid).toBe(0);
      expect(await local.poll(result.state)).toEqual({ running: true });
      await local.stop(result.state);
      expect(await local.poll(result.state)).toMatchObject({ running: false });
    } finally {
      await local.stop(result.state, { now: true });
    }
  });
});
