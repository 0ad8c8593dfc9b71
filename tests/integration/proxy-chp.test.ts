/**
 * Compatibility with configurable-http-proxy in both directions: LabHub's hub driving a real CHP 5.3.0
 * (`proxy.command`, installed by scripts/setup-proxy.sh into /opt/labhub/chp), and Debian's JupyterHub 3.0
 * running `labhub proxy` in CHP's place (`ConfigurableHTTPProxy.command`), also with `internal_ssl`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { httpsRequest } from '../helpers/proxy.js';

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

interface JupyterHubRun {
  base: string;
  hubPort: number;
  apiPort: number;
  dir: string;
  /** Everything JupyterHub and the proxy it started wrote. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Debian's JupyterHub with bench/jupyterhub's config and `labhub proxy` as its proxy, plus `extraConfig` (Python,
 * after the bench config); resolves once the hub answers through the proxy.
 */
async function startJupyterHub(token: string, extraConfig: (run: { dir: string; apiPort: number }) => string = () => ''): Promise<JupyterHubRun> {
  const dir = mkdtempSync(join(tmpdir(), 'labhub-jh-proxy-'));
  const [port, hubPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const base = `http://127.0.0.1:${port}`;
  const config = join(dir, 'jupyterhub_config.py');
  writeFileSync(config, `load_subconfig(${JSON.stringify(join(REPO, 'bench/jupyterhub/jupyterhub_config.py'))})\n${extraConfig({ dir, apiPort })}\n`);
  const child = spawn(JUPYTERHUB, ['-f', config], {
    cwd: dir,
    env: {
      ...process.env,
      BENCH_JH_DIR: dir, BENCH_JH_PORT: String(port), BENCH_JH_HUB_PORT: String(hubPort),
      BENCH_JH_API_PORT: String(apiPort), BENCH_JH_TOKEN: token,
      BENCH_JH_PROXY_CMD: JSON.stringify([process.execPath, LABHUB, 'proxy']),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await eventually(async () => (child.exitCode === null && (await fetch(`${base}/hub/api/`).then((r) => r.ok, () => false))) || null, 60_000);
  } catch (err) {
    await stop();
    throw new Error(`JupyterHub did not come up (exit code ${child.exitCode}): ${(err as Error).message}\n${output.slice(-3000)}`);
  }
  return { base, hubPort, apiPort, dir, output: () => output, stop };
}

describe.runIf(requireService('JupyterHub 3.0 (/usr/bin/jupyterhub)', existsSync(JUPYTERHUB)))('JupyterHub 3.0 with `labhub proxy` in place of CHP', () => {
  const token = 'jh-compat-service-token-0123456789';
  let jh: JupyterHubRun;

  const jhApi = (method: string, path: string, body?: unknown) =>
    fetch(`${jh.base}/hub/api${path}`, { method, headers: { authorization: `token ${token}` }, body: body === undefined ? undefined : JSON.stringify(body) });

  beforeAll(async () => {
    jh = await startJupyterHub(token);
  });

  afterAll(async () => {
    await jh?.stop();
  });

  it('is started by JupyterHub with its CHP flags and routes the hub', () => {
    expect(jh.output()).toContain('proxy listening');
    expect(jh.output()).not.toMatch(/labhub-proxy: .*Run with --help/);
  });

  it("carries a user's server route that JupyterHub adds and removes", async () => {
    const { base } = jh;
    expect((await jhApi('POST', '/users/dora')).status).toBe(201);
    expect([201, 202]).toContain((await jhApi('POST', '/users/dora/server')).status);
    await eventually(async () => ((await fetch(`${base}/user/dora/api`)).status === 200 ? true : null), 30_000);
    const info = (await (await jhApi('GET', '/users/dora')).json()) as { servers: Record<string, { ready: boolean }> };
    expect(info.servers['']?.ready).toBe(true);
    expect([202, 204]).toContain((await jhApi('DELETE', '/users/dora/server')).status);
    await eventually(async () => ((await fetch(`${base}/user/dora/api`, { redirect: 'manual' })).status !== 200 ? true : null), 30_000);
  });
});

describe.runIf(requireService('JupyterHub 3.0 (/usr/bin/jupyterhub)', existsSync(JUPYTERHUB)))('JupyterHub 3.0 with internal_ssl and `labhub proxy`', () => {
  const token = 'jh-ssl-service-token-0123456789';
  let jh: JupyterHubRun;
  let certs = '';

  beforeAll(async () => {
    jh = await startJupyterHub(token, ({ dir, apiPort }) => {
      certs = join(dir, 'internal-ssl');
      return [
        'c.JupyterHub.internal_ssl = True',
        `c.JupyterHub.internal_certs_location = ${JSON.stringify(certs)}`,
        // The bench config gives the API as http; internal_ssl serves it over https, with client certificates.
        `c.ConfigurableHTTPProxy.api_url = 'https://127.0.0.1:${apiPort}'`,
      ].join('\n');
    });
  });

  afterAll(async () => {
    await jh?.stop();
  });

  it('starts the proxy with its --api-ssl-* and --client-ssl-* flags; the hub answers through it over mutual TLS', async () => {
    expect(jh.output()).toMatch(/"api":"https:\/\/127\.0\.0\.1:\d+"/);
    expect(jh.output()).toMatch(/"target":"https:\/\/127\.0\.0\.1:\d+","msg":"route added"/);
    // The hub itself lets in only holders of a certificate from JupyterHub's CAs: what the proxy showed it.
    await expect(httpsRequest(`https://127.0.0.1:${jh.hubPort}/hub/api/`, { rejectUnauthorized: false })).rejects.toThrow();
    const res = await fetch(`${jh.base}/hub/api/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ version: expect.any(String) });
  });

  it("relays the hub's error pages, fetched over mutual TLS", async () => {
    const hubCert = { key: readFileSync(join(certs, 'hub-internal/hub-internal.key')), cert: readFileSync(join(certs, 'hub-internal/hub-internal.crt')) };
    const ca = readFileSync(join(certs, 'proxy-api-ca/proxy-api-ca.crt'));
    const addGhost = (clientCert: { key?: Buffer; cert?: Buffer }) =>
      httpsRequest(`https://127.0.0.1:${jh.apiPort}/api/routes/user/ghost`, {
        method: 'POST', ca, ...clientCert, headers: { authorization: `token ${token}-proxy` }, body: JSON.stringify({ target: `http://127.0.0.1:${deadPort}` }),
      });
    const deadPort = await freePort();
    // The API takes the token only from holders of a certificate from JupyterHub's CAs, the hub's as JupyterHub uses.
    await expect(addGhost({})).rejects.toThrow();
    expect((await addGhost(hubCert)).status).toBe(201);
    const res = await fetch(`${jh.base}/user/ghost/lab`);
    expect(res.status).toBe(503);
    const page = await res.text();
    expect(page).toContain('<title>JupyterHub</title>');
    expect(page).toContain('503 : Service Unavailable');
  });
});
