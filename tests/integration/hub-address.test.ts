/**
 * hub.connect_url is where the proxy reaches the hub, as JupyterHub's hub_connect_url: a hub on 0.0.0.0 in a
 * container or pod is not at 127.0.0.1 for a proxy elsewhere. 127.0.0.2 stands in for such an address here.
 */
import { afterAll, expect, it } from 'vitest';
import { HubProcess } from '../helpers/hub.js';
import { freePort } from '../helpers/ports.js';

const hubs: HubProcess[] = [];
afterAll(async () => {
  for (const hub of hubs) await hub.cleanup();
});

it('registers hub.connect_url, not 127.0.0.1, as the proxy\'s route to a hub listening on 0.0.0.0', async () => {
  const [port, hubPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const hub = new HubProcess({ env: { LABHUB_HUB__IP: '0.0.0.0', LABHUB_HUB__CONNECT_URL: `http://127.0.0.2:${hubPort}/` } });
  hubs.push(hub);
  Object.assign(hub, { port, hubPort, apiPort });
  await hub.start();
  const token = hub.proxyToken();
  const routes = (await (await fetch(`http://127.0.0.1:${apiPort}/api/routes`, { headers: { authorization: `token ${token}` } })).json()) as Record<string, { target: string }>;
  expect(routes['/']?.target).toBe(`http://127.0.0.2:${hubPort}`);
  const info = await fetch(`${hub.url}/hub/api/`);
  expect(info.status).toBe(200);
  expect(await info.json()).toHaveProperty('version');
});
