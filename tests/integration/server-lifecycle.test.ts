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

/**
 * A hub whose servers run `cmd`, started for the enclosing describe block, with an admin token (`token`, set once
 * it has started) and `users` created.
 */
function labWith(cmd: string[], extra: Record<string, string>, users: string[]): { hub: HubProcess; token: string } {
  const hub = new HubProcess({
    env: {
      LABHUB_SPAWNER__CMD: JSON.stringify(cmd), LABHUB_SPAWNER__ALLOW_ROOT: 'true', LABHUB_AUTHENTICATOR__KIND: 'dummy', ...extra,
    },
  });
  const lab = { hub, token: '' };
  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'admin', '--admin'])).status).toBe(0);
    lab.token = (await hub.cli(['token', 'admin'])).stdout.trim();
    expect((await api(hub.url, lab.token, 'POST', '/users', { usernames: users })).status).toBe(201);
  });
  afterAll(() => hub.cleanup());
  return lab;
}

describe('a server that fails to start', () => {
  const lab = labWith(['/bin/false'], { LABHUB_SPAWNER__HTTP_TIMEOUT: '2' }, ['fay']);

  it('reports the failure through the API and the progress stream, and is not pending forever', async () => {
    const started = await api(lab.hub.url, lab.token, 'POST', '/users/fay/server');
    expect(started.status).toBe(500);
    expect((started.body as { message: string }).message).toMatch(/Spawn failed/);
    const events = await progress(lab.hub.url, lab.token, 'fay');
    expect(events.at(-1)).toMatchObject({ failed: true, progress: 100 });
    expect(events.at(-1)!.message).toMatch(/^Spawn failed: /);
    const user = await api(lab.hub.url, lab.token, 'GET', '/users/fay');
    expect(user.body).toMatchObject({ pending: null, server: null, servers: {} });
  });

  it('can be started again once the cause is fixed (the row is stopped, not stuck)', async () => {
    const again = await api(lab.hub.url, lab.token, 'POST', '/users/fay/server');
    expect(again.status).toBe(500);
  });
});

describe('a server that never answers HTTP', () => {
  // A process that runs but never listens (it ignores the arguments the spawner appends).
  const lab = labWith(['python3', '-c', 'import time; time.sleep(300)'], { LABHUB_SPAWNER__HTTP_TIMEOUT: '1.5', LABHUB_CONCURRENT_SPAWN_LIMIT: '1' }, ['gus', 'hal']);

  it('holds a spawn slot while pending: the next start gets 429 with Retry-After', async () => {
    const first = fetch(`${lab.hub.url}/hub/api/users/gus/server`, { method: 'POST', headers: { authorization: `token ${lab.token}` } });
    await eventually(async () => ((await api(lab.hub.url, lab.token, 'GET', '/users/gus')).body as { pending: string | null }).pending === 'spawn', 5000, 50);
    const second = await api(lab.hub.url, lab.token, 'POST', '/users/hal/server');
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    const firstRes = await first;
    expect(firstRes.status).toBe(500);
  });

  it('fails with the readiness timeout in the message and stops the process', async () => {
    const events = await progress(lab.hub.url, lab.token, 'gus');
    expect(events.at(-1)).toMatchObject({ failed: true });
    expect(events.at(-1)!.message).toMatch(/^Spawn failed: the server did not answer at \/user\/gus\/api within \d+ s/);
    const user = await api(lab.hub.url, lab.token, 'GET', '/users/gus?include_stopped_servers');
    expect((user.body as { servers: Record<string, { stopped: boolean }> }).servers['']?.stopped).toBe(true);
    expect(lab.hub.output).not.toMatch(/unhandled error/);
  });
});

describe('a server that exits after it started but before it answers', () => {
  // Past the spawner's own startup check (300 ms), so only the hub's polling during the HTTP wait can see the exit.
  const lab = labWith(['python3', '-c', 'import time, sys; time.sleep(1.5); sys.exit(4)'], { LABHUB_SPAWNER__HTTP_TIMEOUT: '30' }, ['ivy']);

  it('fails within seconds with its exit code, not after the 30 s HTTP timeout', async () => {
    const t0 = Date.now();
    const started = await api(lab.hub.url, lab.token, 'POST', '/users/ivy/server');
    expect(started.status).toBe(500);
    expect((started.body as { message: string }).message).toMatch(/the server exited with code 4 before it answered/);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(lab.hub.output).not.toMatch(/unhandled/i);
  });
});

describe('a server that dies behind the hub\'s back', () => {
  const lab = labWith(['python3', TINY], { LABHUB_SPAWNER__POLL_INTERVAL: '1' }, ['ida']);

  it('is found by polling; its route, token and OAuth client go', async () => {
    expect((await api(lab.hub.url, lab.token, 'POST', '/users/ida/server')).status).toBe(201);
    const through = await fetch(`${lab.hub.url}/user/ida/api`);
    expect(await through.json()).toEqual({ version: 'tiny' });
    // Admins see the spawner's state (admin:server_state), which holds the server's pid.
    const user = await api(lab.hub.url, lab.token, 'GET', '/users/ida');
    const server = (user.body as { servers: Record<string, { ready: boolean; state: { pid: number } }> }).servers[''];
    expect(server?.ready).toBe(true);
    const pid = server!.state.pid;
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGKILL');

    await eventually(async () => {
      const u = await api(lab.hub.url, lab.token, 'GET', '/users/ida');
      return Object.keys((u.body as { servers: Record<string, unknown> }).servers).length === 0;
    }, 15_000, 200);
    const gone = await fetch(`${lab.hub.url}/user/ida/api`);
    expect(gone.status).toBe(424);
    const routes = await fetch(`http://127.0.0.1:${lab.hub.apiPort}/api/routes`, {
      headers: { authorization: `token ${lab.hub.proxyToken()}` },
    });
    expect(Object.keys((await routes.json()) as Record<string, unknown>)).toEqual(['/']);
  });
});
