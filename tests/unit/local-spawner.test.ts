/**
 * LocalSpawner's decisions (names, state validation, how a server runs) and its process handling with plain
 * shell commands; InstantSpawner. The real jupyterhub-singleuser runs in tests/integration/local-spawner.test.ts.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../hub/log.js';
import { InstantSpawner } from '../../spawners/instant.js';
import { escapeName, LocalSpawner, parseLocalState, type LocalSpawnerOptions, type SystemAccount } from '../../spawners/local.js';
import type { ProgressEvent, SpawnRequest, SpawnerState } from '../../spawners/spawner.js';

const logger = createLogger('test.local-spawner', { level: 'silent' });
const isRoot = process.getuid?.() === 0;

function request(user: string, env: Record<string, string> = {}, extra: Partial<SpawnRequest> = {}) {
  const saved: SpawnerState[] = [];
  const events: ProgressEvent[] = [];
  const controller = new AbortController();
  const req: SpawnRequest = {
    user: { name: user, admin: false, groups: [] },
    serverName: '',
    prefix: `/user/${encodeURIComponent(user)}/`,
    env,
    userOptions: {},
    signal: controller.signal,
    progress: (e) => events.push(e),
    saveState: async (s) => {
      saved.push(s);
    },
    ...extra,
  };
  return { req, saved, events, controller };
}

/** Inverse of escapeName for unshortened results: proves the escaping is injective. */
function unescapeName(escaped: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    if (escaped[i] === '-') {
      bytes.push(parseInt(escaped.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(escaped.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

describe('escapeName', () => {
  it('keeps safe names and escapes everything else', () => {
    expect(escapeName('alice')).toBe('alice');
    expect(escapeName('a.b_c9')).toBe('a.b_c9');
    expect(escapeName('Alice')).toBe('-41lice');
    expect(escapeName('a-b')).toBe('a-2db');
    expect(escapeName('jörg')).toBe('j-c3-b6rg');
    expect(escapeName('a/b')).toBe('a-2fb');
    expect(escapeName('.')).toBe('-2e');
    expect(escapeName('..')).toBe('-2e.');
    expect(escapeName('.bashrc')).toBe('-2ebashrc');
  });

  it('is collision-free (decodes back) for tricky names', () => {
    const names = ['a-41', 'aA', 'a-2d41', 'a-', '-', '--', 'é', 'e\u0301', '用户', '🦄', 'a b', 'A', 'a', '.a', '-2ea', '..', '. '];
    const escaped = names.map(escapeName);
    expect(new Set(escaped).size).toBe(names.length);
    for (const [i, e] of escaped.entries()) {
      expect(e).toMatch(/^[a-z0-9._-]+$/);
      expect(e.startsWith('.')).toBe(false);
      expect(e.includes('--')).toBe(false);
      expect(unescapeName(e)).toBe(names[i]);
    }
  });

  it('shortens long names with a hash, still distinct', () => {
    const a = escapeName('ü'.repeat(100));
    const b = escapeName(`${'ü'.repeat(99)}ä`);
    expect(a.length).toBeLessThanOrEqual(200);
    expect(a).toContain('--');
    expect(a).not.toBe(b);
    expect(escapeName('x'.repeat(200))).toBe('x'.repeat(200));
  });

  it('rejects empty and malformed names', () => {
    expect(() => escapeName('')).toThrow();
    expect(() => escapeName('a\uD800')).toThrow();
  });
});

describe('parseLocalState', () => {
  it('accepts what start() stores', () => {
    expect(parseLocalState({ pid: 1234, port: 8888, startTime: 99 })).toEqual({ pid: 1234, port: 8888, startTime: 99 });
    expect(parseLocalState({ pid: 1234, port: 8888 })).toEqual({ pid: 1234, port: 8888, startTime: null });
  });

  it.each([
    null, undefined, {}, [], { pid: 1, port: 80 }, { pid: 0, port: 80 }, { pid: -5, port: 80 }, { pid: 2.5, port: 80 },
    { pid: '123', port: 80 }, { pid: process.pid, port: 80 }, { pid: 123, port: 0 }, { pid: 123, port: 70000 },
    { pid: 123, port: 80, startTime: -1 }, { pid: 123, port: 80, startTime: '5' }, { pid: 2 ** 60, port: 80 },
  ])('rejects %j', (state) => {
    expect(parseLocalState(state as SpawnerState)).toBeNull();
  });
});

describe('LocalSpawner.prepareLaunch', () => {
  let dataDir: string;
  let home: string;
  beforeAll(async () => {
    dataDir = await fsp.mkdtemp(path.join(tmpdir(), 'labhub-unit-local-'));
    home = path.join(dataDir, 'home-bob');
    await fsp.mkdir(home);
  });
  afterAll(async () => {
    await fsp.rm(dataDir, { recursive: true, force: true });
  });
  const bob = (uid: number): SystemAccount => ({ name: 'bob', uid, gid: uid + 1, home, shell: '/bin/bash' });
  const make = (options: Partial<LocalSpawnerOptions>) => new LocalSpawner({ dataDir, logger, cmd: ['jupyterhub-singleuser'], args: ['--debug'], ...options });

  it('root hub + system account: runs as that account through setpriv, in its home, log kept by the hub', async () => {
    const lookups: string[] = [];
    const local = make({ hubUid: 0, setprivPath: '/usr/bin/setpriv', lookupAccount: async (n) => (lookups.push(n), bob(1500)) });
    const plan = await local.prepareLaunch(request('bob').req, 4000);
    expect(lookups).toEqual(['bob']);
    expect(plan.mode).toBe('system-user');
    expect(plan.argv).toEqual(['/usr/bin/setpriv', '--reuid=1500', '--regid=1501', '--init-groups', '--', 'jupyterhub-singleuser', '--debug']);
    expect(plan.uid).toBeUndefined();
    expect(plan.cwd).toBe(home);
    expect(plan.env).toMatchObject({ HOME: home, USER: 'bob', LOGNAME: 'bob', SHELL: '/bin/bash' });
    expect(plan.logFile).toBe(path.join(dataDir, 'logs', 'bob', 'labhub.log'));
  });

  it('without setpriv, asks spawn() to switch uid and gid', async () => {
    const local = make({ hubUid: 0, setprivPath: null, lookupAccount: async () => bob(1500) });
    const plan = await local.prepareLaunch(request('bob').req, 4000);
    expect(plan).toMatchObject({ mode: 'system-user', argv: ['jupyterhub-singleuser', '--debug'], uid: 1500, gid: 1501 });
  });

  it('refuses daemon accounts below minUid and uid 0 unless allowed', async () => {
    await expect(make({ hubUid: 0, lookupAccount: async () => bob(110) }).prepareLaunch(request('bob').req, 4000)).rejects.toThrow(/below 1000/);
    await expect(make({ hubUid: 0, lookupAccount: async () => bob(0) }).prepareLaunch(request('bob').req, 4000)).rejects.toThrow(/as root/);
    const plan = await make({ hubUid: 0, allowRoot: true, setprivPath: null, lookupAccount: async () => bob(0) }).prepareLaunch(request('bob').req, 4000);
    expect(plan.argv).toContain('--allow-root');
    const low = await make({ hubUid: 0, minUid: 100, setprivPath: null, lookupAccount: async () => bob(110) }).prepareLaunch(request('bob').req, 4000);
    expect(low.uid).toBe(110);
  });

  it('refuses an account whose home does not exist', async () => {
    const local = make({ hubUid: 0, lookupAccount: async () => ({ ...bob(1500), home: path.join(dataDir, 'nope') }) });
    await expect(local.prepareLaunch(request('bob').req, 4000)).rejects.toThrow(/home directory/);
  });

  it('root hub, no account: refuses unless allowRoot, then runs in <dataDir>/users/<escaped> with --allow-root', async () => {
    await expect(make({ hubUid: 0, lookupAccount: async () => null }).prepareLaunch(request('Zoë').req, 4000)).rejects.toThrow(/no system account named .*never as root/);
    const plan = await make({ hubUid: 0, allowRoot: true, lookupAccount: async () => null }).prepareLaunch(request('Zoë').req, 4000);
    const dir = path.join(dataDir, 'users', '-5ao-c3-ab');
    expect(plan).toMatchObject({ mode: 'hub-user', cwd: dir, argv: ['jupyterhub-singleuser', '--debug', '--allow-root'] });
    expect(plan.env.HOME).toBe(dir);
    expect(plan.logFile).toBe(path.join(dir, '.labhub.log'));
    expect(((await fsp.stat(dir)).mode & 0o777).toString(8)).toBe('700');
  });

  it('non-root hub: hub-user mode without asking the account database, no --allow-root', async () => {
    const local = make({ hubUid: 1000, lookupAccount: async () => { throw new Error('must not be called'); } });
    const plan = await local.prepareLaunch({ ...request('carol').req, serverName: 'gpu', prefix: '/user/carol/gpu/' }, 4000);
    expect(plan.mode).toBe('hub-user');
    expect(plan.argv).toEqual(['jupyterhub-singleuser', '--debug']);
    expect(plan.logFile).toBe(path.join(dataDir, 'users', 'carol', '.labhub-gpu.log'));
    expect(plan.env.JUPYTERHUB_SERVICE_URL).toBe('http://127.0.0.1:4000/user/carol/gpu/');
  });

  it('runAsSystemUsers: false keeps a root hub in hub-user mode', async () => {
    const local = make({ hubUid: 0, allowRoot: true, runAsSystemUsers: false, lookupAccount: async () => bob(1500) });
    expect((await local.prepareLaunch(request('bob').req, 4000)).mode).toBe('hub-user');
  });

  it('builds the environment: kept hub variables < hub-prepared env < JUPYTERHUB_SERVICE_URL < configured environment', async () => {
    process.env.LABHUB_UNIT_KEEP = 'kept';
    process.env.LABHUB_UNIT_SECRET = 'not-passed';
    process.env.LABHUB_UNIT_OVERRIDE = 'from-hub-env';
    try {
      const local = make({
        hubUid: 1000,
        ip: '0.0.0.0',
        envKeep: ['LABHUB_UNIT_KEEP', 'LABHUB_UNIT_OVERRIDE', 'LABHUB_UNIT_MISSING'],
        environment: { CONFIGURED: 'yes', JUPYTERHUB_DEBUG: '1' },
      });
      const { req } = request('dave', { JUPYTERHUB_API_TOKEN: 't', LABHUB_UNIT_OVERRIDE: 'from-request', JUPYTERHUB_DEBUG: '0' });
      const plan = await local.prepareLaunch(req, 4321);
      expect(plan.env).toMatchObject({
        LABHUB_UNIT_KEEP: 'kept',
        LABHUB_UNIT_OVERRIDE: 'from-request',
        JUPYTERHUB_API_TOKEN: 't',
        JUPYTERHUB_SERVICE_URL: 'http://0.0.0.0:4321/user/dave/',
        CONFIGURED: 'yes',
        JUPYTERHUB_DEBUG: '1',
      });
      expect(plan.env).not.toHaveProperty('LABHUB_UNIT_SECRET');
      expect(plan.env).not.toHaveProperty('LABHUB_UNIT_MISSING');
    } finally {
      delete process.env.LABHUB_UNIT_KEEP;
      delete process.env.LABHUB_UNIT_SECRET;
      delete process.env.LABHUB_UNIT_OVERRIDE;
    }
  });

  it('rejects a prefix that is not a path ending in /', async () => {
    await expect(make({ hubUid: 1000 }).prepareLaunch({ ...request('erin').req, prefix: '/user/erin' }, 1)).rejects.toThrow(/prefix/);
  });
});

describe('LocalSpawner processes (shell commands)', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await fsp.mkdtemp(path.join(tmpdir(), 'labhub-unit-proc-'));
  });
  afterAll(async () => {
    await fsp.rm(dataDir, { recursive: true, force: true });
  });
  // `sh -c SCRIPT` ignores the `--allow-root` a root hub appends (it becomes $0).
  const sh = (script: string, options: Partial<LocalSpawnerOptions> = {}) =>
    new LocalSpawner({ dataDir, logger, allowRoot: true, runAsSystemUsers: false, cmd: ['/bin/sh', '-c', script], ...options });

  it('starts, saves state first, reports progress, polls, and stops gracefully', async () => {
    const local = sh('exec sleep 30');
    const { req, saved, events } = request('frank');
    const result = await local.start(req);
    const state = result.state as { pid: number; port: number; startTime: number };
    expect(saved).toEqual([state]);
    expect(result.url).toBe(`http://127.0.0.1:${state.port}`);
    expect(events[0]).toEqual({ progress: 20, message: 'Starting sh' });
    expect(await local.poll(state)).toEqual({ running: true });
    // Its own session and process group (setsid): a hub crash or Ctrl-C does not reach it.
    const stat = (await fsp.readFile(`/proc/${state.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    expect([Number(stat[2]), Number(stat[3])]).toEqual([state.pid, state.pid]);
    // A restarted hub (a new spawner instance) finds it from the state alone.
    expect(await sh('exit 0').poll({ ...state })).toEqual({ running: true });
    // Another process now holding the pid (different start time) is not our server.
    expect(await local.poll({ ...state, startTime: state.startTime + 1 })).toEqual({ running: false, exitCode: null });
    await local.stop({ ...state, startTime: state.startTime + 1 });
    expect(await local.poll(state)).toEqual({ running: true });
    await local.stop(state);
    expect(await local.poll(state)).toEqual({ running: false, exitCode: null });
  });

  it('kills a server that ignores SIGTERM after the grace period', async () => {
    const local = sh('trap "" TERM; sleep 30', { stopGraceMs: 300 });
    const result = await local.start(request('grace').req);
    const t0 = Date.now();
    await local.stop(result.state);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(3000);
    expect(await local.poll(result.state)).toEqual({ running: false, exitCode: null });
  });

  it('reports the exit code of a server that exited after starting', async () => {
    const local = sh('sleep 0.5; exit 7');
    const result = await local.start(request('gina').req);
    expect(await local.poll(result.state)).toEqual({ running: true });
    await new Promise((r) => setTimeout(r, 800));
    expect(await local.poll(result.state)).toEqual({ running: false, exitCode: 7 });
    await local.stop(result.state);
  });

  it('tolerates invalid or stale state', async () => {
    const local = sh('exit 0');
    expect(await local.poll({})).toEqual({ running: false, exitCode: null });
    expect(await local.poll({ pid: 1, port: 80 })).toEqual({ running: false, exitCode: null });
    await local.stop({});
    await local.stop({ pid: 4_000_000, port: 80, startTime: 1 });
  });

  it('an aborted request starts nothing', async () => {
    const { req, saved, controller } = request('hank');
    controller.abort(new Error('cancelled'));
    await expect(sh('exec sleep 30').start(req)).rejects.toThrow('cancelled');
    expect(saved).toEqual([]);
  });

  it('kills the process when the state cannot be saved', async () => {
    let pid = 0;
    const { req } = request('ivan', {}, {
      saveState: async (s) => {
        pid = (s as { pid: number }).pid;
        throw new Error('database is locked');
      },
    });
    await expect(sh('exec sleep 30').start(req)).rejects.toThrow('database is locked');
    expect(pid).toBeGreaterThan(1);
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('keeps each server\'s output in its log file', async () => {
    const local = sh('echo hello from the server; exec sleep 30');
    const result = await local.start({ ...request('judy').req, serverName: 'lab2', prefix: '/user/judy/lab2/' });
    await local.stop(result.state, { now: true });
    const log = await fsp.readFile(path.join(dataDir, 'users', 'judy', '.labhub-lab2.log'), 'utf8');
    expect(log).toContain('hello from the server');
  });

  it.runIf(isRoot)('a root hub without allowRoot refuses a user with no system account', async () => {
    const local = new LocalSpawner({ dataDir, logger, cmd: ['/bin/sh', '-c', 'exec sleep 30'] });
    await expect(local.start(request('no-such-account-labhub').req)).rejects.toMatchObject({ status: 500 });
  });
});

describe('InstantSpawner', () => {
  it('starts a server in a few milliseconds that answers the readiness check', async () => {
    const spawner = new InstantSpawner();
    await spawner.stopAll();
    const times: number[] = [];
    const states: SpawnerState[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const { req } = request(`u${i}`, { JUPYTERHUB_API_TOKEN: 'tok' });
      const result = await spawner.start(req);
      times.push(performance.now() - t0);
      states.push(result.state);
    }
    times.sort((a, b) => a - b);
    expect(times[10]).toBeLessThan(5);
    const state = states[3]!;
    const url = `http://127.0.0.1:${(state as { port: number }).port}`;
    const res = await fetch(`${url}/user/u3/api`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-jupyterhub-version')).toBe('5.5.1');
    expect(await res.json()).toEqual({ version: 'instant' });
    expect((await fetch(`${url}/user/u3/lab`)).status).toBe(200);
    expect((await fetch(`${url}/user/other/api`)).status).toBe(404);
    expect(spawner.server(state)).toMatchObject({ user: 'u3', prefix: '/user/u3/', env: { JUPYTERHUB_API_TOKEN: 'tok' } });
    expect(spawner.running).toBe(20);

    expect(await spawner.poll(state)).toEqual({ running: true });
    expect(await new InstantSpawner().poll(state)).toEqual({ running: false, exitCode: null });
    await spawner.stop(state);
    expect(await spawner.poll(state)).toEqual({ running: false, exitCode: null });
    await expect(fetch(`${url}/user/u3/api`)).rejects.toThrow();
    await spawner.stop(state);
    await spawner.stopAll();
    expect(spawner.running).toBe(0);
  });

  it('can be told to fail or to take its time (and then be cancelled)', async () => {
    await expect(new InstantSpawner({ failWith: 'no capacity' }).start(request('a').req)).rejects.toThrow('no capacity');
    const slow = new InstantSpawner({ delayMs: 50 });
    const t0 = Date.now();
    const result = await slow.start(request('b').req);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    await slow.stop(result.state);
    const { req, controller, saved } = request('c');
    const pending = new InstantSpawner({ delayMs: 5000 }).start(req);
    controller.abort(new Error('timeout'));
    await expect(pending).rejects.toThrow('timeout');
    expect(saved).toEqual([]);
    expect(await slow.poll({ port: 'x' })).toEqual({ running: false, exitCode: null });
  });
});
