import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, eventually, HubProcess, REPO } from '../helpers/hub.js';

/**
 * The hub's server lifecycle with real processes: a spawn that fails, one that never answers, the concurrent
 * spawn limit, and a server that dies behind the hub's back. The stand-in server is a few lines of Python.
 */
const TINY = resolve(REPO, 'tests/fixtures/tiny-singleuser.py');

interface ProgressEvent { progress?: number; message: string; ready?: boolean; failed?: boolean }

async function progress(base: string, token: string, user: string): Promise<ProgressEvent[]> {
  const res = await fetch(`${base}/hub/api/users/${user}/server/progress`, { headers: { authorization: `token ${token}` } });
  expect(res.status).toBe(200);
  return (await res.text()).split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => JSON.parse(b.slice(6)) as ProgressEvent);
}

function hubWith(cmd: string[], extra: Record<string, string> = {}): HubProcess {
  return new HubProcess({
    env: {
      LABHUB_SPAWNER__CMD: JSON.stringify(cmd), LABHUB_SPAWNER__ALLOW_ROOT: 'true', LABHUB_AUTHENTICATOR__KIND: 'dummy', ...extra,
    },
  });
}

async function adminToken(hub: HubProcess, users: string[]): Promise<string> {
  expect((await hub.cli(['users', 'add', 'admin', '--admin'])).status).toBe(0);
  const token = (await hub.cli(['token', 'admin'])).stdout.trim();
  expect((await api(hub.url, token, 'POST', '/users', { usernames: users })).status).toBe(201);
  return token;
}

describe('a server that fails to start', () => {
  const hub = hubWith(['/bin/false'], { LABHUB_SPAWNER__HTTP_TIMEOUT: '2' });
  let token = '';
  beforeAll(async () => {
    await hub.start();
    token = await adminToken(hub, ['fay']);
  });
  afterAll(() => hub.cleanup());

  it('reports the failure through the API and the progress stream, and is not pending forever', async () => {
    const started = await api(hub.url, token, 'POST', '/users/fay/server');
    expect(started.status).toBe(500);
    expect((started.body as { message: string }).message).toMatch(/Spawn failed/);
    const events = await progress(hub.url, token, 'fay');
    expect(events.at(-1)).toMatchObject({ failed: true, progress: 100 });
    expect(events.at(-1)!.message).toMatch(/^Spawn failed: /);
    const user = await api(hub.url, token, 'GET', '/users/fay');
    expect(user.body).toMatchObject({ pending: null, server: null, servers: {} });
  });

  it('can be started again once the cause is fixed (the row is stopped, not stuck)', async () => {
    const again = await api(hub.url, token, 'POST', '/users/fay/server');
    expect(again.status).toBe(500);
  });
});

describe('a server that never answers HTTP', () => {
  // A process that runs but never listens (it ignores the arguments the spawner appends).
  const hub = hubWith(['python3', '-c', 'import time; time.sleep(300)'], { LABHUB_SPAWNER__HTTP_TIMEOUT: '1.5', LABHUB_CONCURRENT_SPAWN_LIMIT: '1' });
  let token = '';
  beforeAll(async () => {
    await hub.start();
    token = await adminToken(hub, ['gus', 'hal']);
  });
  afterAll(() => hub.cleanup());

  it('holds a spawn slot while pending: the next start gets 429 with Retry-After', async () => {
    const first = fetch(`${hub.url}/hub/api/users/gus/server`, { method: 'POST', headers: { authorization: `token ${token}` } });
    await eventually(async () => ((await api(hub.url, token, 'GET', '/users/gus')).body as { pending: string | null }).pending === 'spawn', 5000, 50);
    const second = await api(hub.url, token, 'POST', '/users/hal/server');
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    const firstRes = await first;
    expect(firstRes.status).toBe(500);
  });

  it('fails with the readiness timeout in the message and stops the process', async () => {
    const events = await progress(hub.url, token, 'gus');
    expect(events.at(-1)).toMatchObject({ failed: true });
    expect(events.at(-1)!.message).toMatch(/^Spawn failed: the server did not answer at \/user\/gus\/api within \d+ s/);
    const user = await api(hub.url, token, 'GET', '/users/gus?include_stopped_servers');
    expect((user.body as { servers: Record<string, { stopped: boolean }> }).servers['']?.stopped).toBe(true);
    expect(hub.output).not.toMatch(/unhandled error/);
  });
});

describe('a server that dies behind the hub\'s back', () => {
  const hub = hubWith(['python3', TINY], { LABHUB_SPAWNER__POLL_INTERVAL: '1' });
  let token = '';
  beforeAll(async () => {
    await hub.start();
    token = await adminToken(hub, ['ida']);
  });
  afterAll(() => hub.cleanup());

  it('is found by polling; its route, token and OAuth client go', async () => {
    expect((await api(hub.url, token, 'POST', '/users/ida/server')).status).toBe(201);
    const through = await fetch(`${hub.url}/user/ida/api`);
    expect(await through.json()).toEqual({ version: 'tiny' });
    // Admins see the spawner's state (admin:server_state), which holds the server's pid.
    const user = await api(hub.url, token, 'GET', '/users/ida');
    const server = (user.body as { servers: Record<string, { ready: boolean; state: { pid: number } }> }).servers[''];
    expect(server?.ready).toBe(true);
    const pid = server!.state.pid;
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGKILL');

    await eventually(async () => {
      const u = await api(hub.url, token, 'GET', '/users/ida');
      return Object.keys((u.body as { servers: Record<string, unknown> }).servers).length === 0;
    }, 15_000, 200);
    const gone = await fetch(`${hub.url}/user/ida/api`);
    expect(gone.status).toBe(424);
    const routes = await fetch(`http://127.0.0.1:${hub.apiPort}/api/routes`, {
      headers: { authorization: `token ${(await import('node:fs')).readFileSync(`${hub.dataDir}/proxy_auth_token`, 'utf8').trim()}` },
    });
    expect(Object.keys((await routes.json()) as Record<string, unknown>)).toEqual(['/']);
  });
});
