/**
 * Compatibility with configurable-http-proxy in both directions: LabHub's hub driving a real CHP 5.3.0
 * (`proxy.command`, installed by scripts/setup-proxy.sh into /opt/labhub/chp), and Debian's JupyterHub 3.0
 * running `labhub proxy` in CHP's place (`ConfigurableHTTPProxy.command`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type Hub } from '../../hub/app.js';
import { loadConfig } from '../../hub/config/load.js';
import { createLogger } from '../../hub/log.js';
import { ChpProxyClient } from '../../proxy/chp-client.js';
import { InstantSpawner } from '../../spawners/instant.js';
import { api, eventually, LABHUB, REPO } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { freePort } from '../helpers/ports.js';

const CHP_BIN = '/opt/labhub/chp/node_modules/.bin/configurable-http-proxy';
const JUPYTERHUB = '/usr/bin/jupyterhub';
const quiet = createLogger('test.chp', { level: 'silent' });

describe.runIf(requireService('configurable-http-proxy 5.3.0', existsSync(CHP_BIN)))('LabHub driving configurable-http-proxy 5.3.0', () => {
  const spawner = new InstantSpawner();
  const token = 'chp-compat-api-token-123';
  const proxyToken = 'chp-compat-proxy-token-0123456789';
  let hub: Hub;
  let base = '';
  let apiUrl = '';
  let dataDir = '';

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'labhub-chp-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    apiUrl = `http://127.0.0.1:${await freePort()}`;
    const config = loadConfig({
      env: {
        LABHUB_DATA_DIR: dataDir, LABHUB_IP: '127.0.0.1', LABHUB_PORT: String(port), LABHUB_HUB__PORT: String(await freePort()),
        LABHUB_PROXY__API_URL: apiUrl, LABHUB_PROXY__AUTH_TOKEN: proxyToken, LABHUB_PROXY__CHECK_INTERVAL: '1',
        LABHUB_PROXY__COMMAND: JSON.stringify([CHP_BIN]),
        LABHUB_SERVICES: `[{name: tester, admin: true, api_token: ${token}}]`,
      },
    });
    hub = await startHub(config, { spawner, log: quiet });
  });

  afterAll(async () => {
    await hub?.close();
    await spawner.stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves the hub and users through CHP, with the routes JupyterHub would write', async () => {
    expect((await fetch(`${base}/hub/api/`)).status).toBe(200);
    expect((await api(base, token, 'POST', '/users', { usernames: ['cara'] })).status).toBe(201);
    expect((await api(base, token, 'POST', '/users/cara/server')).status).toBe(201);
    expect((await fetch(`${base}/user/cara/api`)).status).toBe(200);
    const routes = await new ChpProxyClient({ apiUrl, authToken: proxyToken }).getRoutes();
    expect(routes['/user/cara']).toMatchObject({ jupyterhub: true, user: 'cara', server_name: '' });
    expect(routes['/user/cara']?.last_activity).toEqual(expect.any(String));
  });

  it('takes the route away when the server stops', async () => {
    expect((await api(base, token, 'DELETE', '/users/cara/server')).status).toBe(204);
    const routes = await new ChpProxyClient({ apiUrl, authToken: proxyToken }).getRoutes();
    expect(routes['/user/cara']).toBeUndefined();
  });
});

describe.runIf(requireService('JupyterHub 3.0 (/usr/bin/jupyterhub)', existsSync(JUPYTERHUB)))('JupyterHub 3.0 with `labhub proxy` in place of CHP', () => {
  const token = 'jh-compat-service-token-0123456789';
  let dir = '';
  let base = '';
  let child: ChildProcess;
  let output = '';

  const jhApi = (method: string, path: string, body?: unknown) =>
    fetch(`${base}/hub/api${path}`, { method, headers: { authorization: `token ${token}` }, body: body === undefined ? undefined : JSON.stringify(body) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'labhub-jh-proxy-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(JUPYTERHUB, ['-f', join(REPO, 'bench/jupyterhub/jupyterhub_config.py')], {
      cwd: dir,
      env: {
        ...process.env,
        BENCH_JH_DIR: dir, BENCH_JH_PORT: String(port), BENCH_JH_HUB_PORT: String(await freePort()),
        BENCH_JH_API_PORT: String(await freePort()), BENCH_JH_TOKEN: token,
        BENCH_JH_PROXY_CMD: JSON.stringify([process.execPath, LABHUB, 'proxy']),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`jupyterhub exited ${child.exitCode}:\n${output.slice(-3000)}`);
      return (await fetch(`${base}/hub/api/`).then((r) => r.ok, () => false)) || null;
    }, 60_000);
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('is started by JupyterHub with its CHP flags and routes the hub', () => {
    expect(output).toContain('proxy listening');
    expect(output).not.toMatch(/labhub-proxy: .*Run with --help/);
  });

  it("carries a user's server route that JupyterHub adds and removes", async () => {
    expect((await jhApi('POST', '/users/dora')).status).toBe(201);
    expect([201, 202]).toContain((await jhApi('POST', '/users/dora/server')).status);
    await eventually(async () => ((await fetch(`${base}/user/dora/api`)).status === 200 ? true : null), 30_000);
    const info = (await (await jhApi('GET', '/users/dora')).json()) as { servers: Record<string, { ready: boolean }> };
    expect(info.servers['']?.ready).toBe(true);
    expect([202, 204]).toContain((await jhApi('DELETE', '/users/dora/server')).status);
    await eventually(async () => ((await fetch(`${base}/user/dora/api`, { redirect: 'manual' })).status !== 200 ? true : null), 30_000);
  });
});
