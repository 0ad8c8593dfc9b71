import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type Hub } from '../../hub/app.js';
import { hashPassword } from '../../hub/auth/passwords.js';
import { loadConfig } from '../../hub/config/load.js';
import { createLogger } from '../../hub/log.js';
import { startProxy, type RunningProxy } from '../../proxy/main.js';
import { InstantSpawner } from '../../spawners/instant.js';
import { eventually, xsrfFromHtml } from '../helpers/hub.js';
import { requireService } from '../helpers/jupyter.js';
import { freePort } from '../helpers/ports.js';

/**
 * The login throttle behind a proxy that is not on the hub's loopback (issue 16, likely item: the Helm chart's proxy
 * pod, a proxy container): the hub must key each browser by the address the proxy saw, not by the proxy's own
 * address, and still never let a client choose its address. The proxy here runs on a non-loopback address of this
 * machine, so the hub sees its connections come from there; browsers connect to the proxy from distinct loopback
 * addresses (127.0.0.x), which is what the proxy puts in X-Forwarded-For.
 */
const proxyIp = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
const ready = requireService('a non-loopback IPv4 address on this machine', proxyIp !== undefined);
const PROXY_TOKEN = 'forwarded-test-proxy-token-0123456789';
const quiet = createLogger('test.forwarded', { level: 'silent' });

/** A browser at `from` posting the login form through the proxy; the answer's status. */
async function loginFrom(port: number, from: string, username: string, password: string, forwardedFor?: string): Promise<number> {
  const send = (method: string, path: string, headers: Record<string, string>, body?: string) => new Promise<{ status: number; body: string; cookies: string[] }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, localAddress: from, method, path, headers: { ...headers, ...(forwardedFor && { 'x-forwarded-for': forwardedFor }) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, cookies: (res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!) }));
    });
    req.on('error', reject);
    req.end(body);
  });
  const page = await send('GET', '/hub/login', {});
  const body = new URLSearchParams({ username, password, _xsrf: xsrfFromHtml(page.body) }).toString();
  const post = await send('POST', '/hub/login', { cookie: page.cookies.join('; '), 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) }, body);
  return post.status;
}

describe.skipIf(!ready)('the login throttle behind an external proxy', () => {
  let dataDir = '';
  let proxy: RunningProxy;
  let hub: Hub;
  let port = 0;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'labhub-forwarded-'));
    port = await freePort();
    const apiPort = await freePort();
    proxy = await startProxy({ ip: '127.0.0.1', port, apiIp: proxyIp, apiPort, authToken: PROXY_TOKEN, log: quiet });
    const config = loadConfig({
      env: {
        LABHUB_DATA_DIR: dataDir, LABHUB_IP: '127.0.0.1', LABHUB_PORT: String(port),
        LABHUB_HUB__IP: proxyIp!, LABHUB_HUB__PORT: String(await freePort()),
        LABHUB_PROXY__MODE: 'external', LABHUB_PROXY__AUTH_TOKEN: PROXY_TOKEN, LABHUB_PROXY__API_URL: `http://${proxyIp}:${apiPort}`,
        LABHUB_AUTH__RATE_LIMIT__IP_FAILURES: '2', LABHUB_AUTH__RATE_LIMIT__ACCOUNT_FAILURES: '100', LABHUB_AUTH__RATE_LIMIT__BASE_DELAY: '30',
      },
    });
    hub = await startHub(config, { spawner: new InstantSpawner(), log: quiet });
    await hub.ctx.store.users.create('bea', { passwordHash: await hashPassword('bea-password') });
    await eventually(async () => ((await fetch(`http://127.0.0.1:${port}/hub/api/`)).ok ? true : null), 10_000);
  });
  afterAll(async () => {
    await hub?.close();
    await proxy?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('one browser spraying passwords is held; another browser behind the same proxy signs in', async () => {
    expect(await loginFrom(port, '127.0.0.2', 'u1', 'guess')).toBe(403);
    expect(await loginFrom(port, '127.0.0.2', 'u2', 'guess')).toBe(403);
    expect(await loginFrom(port, '127.0.0.2', 'bea', 'bea-password')).toBe(429);
    expect(await loginFrom(port, '127.0.0.3', 'bea', 'bea-password')).toBe(302);
  });

  it('a browser cannot pick its address with X-Forwarded-For: the right-most address the proxy did not vouch for counts', async () => {
    expect(await loginFrom(port, '127.0.0.2', 'bea', 'bea-password', '198.51.100.7')).toBe(429);
    // Claiming the held browser's address holds nobody else.
    expect(await loginFrom(port, '127.0.0.4', 'bea', 'bea-password', '127.0.0.2')).toBe(302);
  });
});
