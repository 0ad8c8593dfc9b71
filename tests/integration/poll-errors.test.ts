import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, type Hub } from '../../hub/app.js';
import { loadConfig } from '../../hub/config/load.js';
import { createLogger } from '../../hub/log.js';
import { InstantSpawner } from '../../spawners/instant.js';
import type { PollResult, SpawnerState } from '../../spawners/spawner.js';
import { api, REPO } from '../helpers/hub.js';
import { freePort } from '../helpers/ports.js';

/** A spawner whose poll can be made to fail, as a Docker engine or Kubernetes API that briefly does not answer. */
class FlakyPollSpawner extends InstantSpawner {
  failPolls = false;
  override async poll(state: SpawnerState): Promise<PollResult> {
    if (this.failPolls) throw new Error('engine did not answer');
    return super.poll(state);
  }
}

describe('a spawner that cannot be polled for a while', () => {
  const spawner = new FlakyPollSpawner();
  let hub: Hub;
  let base = '';
  let dataDir = '';
  let token = '';

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'labhub-poll-'));
    const [port, hubPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    base = `http://127.0.0.1:${port}`;
    const config = loadConfig({
      env: {
        LABHUB_DATA_DIR: dataDir, LABHUB_IP: '127.0.0.1', LABHUB_PORT: String(port), LABHUB_HUB__PORT: String(hubPort),
        LABHUB_PROXY__API_URL: `http://127.0.0.1:${apiPort}`, LABHUB_SPAWNER__POLL_INTERVAL: '1',
        LABHUB_PROXY__COMMAND: JSON.stringify([process.execPath, join(REPO, 'dist/proxy/main.js')]),
        LABHUB_SERVICES: '[{name: tester, admin: true, api_token: poll-test-token-123}]',
      },
    });
    hub = await startHub(config, { spawner, log: createLogger('test.poll', { level: 'error' }) });
    token = 'poll-test-token-123';
    expect((await api(base, token, 'POST', '/users', { usernames: ['pia'] })).status).toBe(201);
  });

  afterAll(async () => {
    await hub?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps the server while polls fail, and still finds a real death afterwards', async () => {
    expect((await api(base, token, 'POST', '/users/pia/server')).status).toBe(201);
    spawner.failPolls = true;
    await new Promise((r) => setTimeout(r, 3500));
    const during = await api(base, token, 'GET', '/users/pia');
    expect((during.body as { servers: Record<string, { ready: boolean }> }).servers['']?.ready).toBe(true);
    expect((await fetch(`${base}/user/pia/api`)).status).toBe(200);

    spawner.failPolls = false;
    await spawner.stopAll();
    const deadline = Date.now() + 10_000;
    let servers: Record<string, unknown> = { '': {} };
    while (Date.now() < deadline && Object.keys(servers).length) {
      await new Promise((r) => setTimeout(r, 250));
      servers = ((await api(base, token, 'GET', '/users/pia')).body as { servers: Record<string, unknown> }).servers;
    }
    expect(servers).toEqual({});
  });
});
