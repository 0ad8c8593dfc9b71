import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, HubProcess, runLabhub } from '../helpers/hub.js';
import { loadConfig, publicOrigin } from '../../hub/config/load.js';

/**
 * The account commands an admin runs beside a running hub. A second shell's `labhub users invite`, with only the data dir in common with the running hub (not its port
 * flags), prints a link to the running hub's address; once the hub stops, the config's own address again.
 */
describe('links printed from a second shell', () => {
  const hub = new HubProcess();
  /** The environment of a second shell in the hub's directory: the data dir, none of the hub's other settings. */
  const secondShell = () => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('LABHUB_')) env[k] = v;
    return { ...env, LABHUB_DATA_DIR: hub.dataDir };
  };

  beforeAll(() => hub.start());
  afterAll(() => hub.cleanup());

  it('point to the running hub, then to the configured address once it has stopped', async () => {
    const running = await runLabhub(['users', 'invite', 'second-shell-user'], secondShell());
    expect(running.status, running.stderr).toBe(0);
    const link = new URL(running.stdout.trim());
    expect(link.origin).toBe(hub.url);
    // The link works: the invitation page answers at the printed address.
    expect((await fetch(link)).status).toBe(200);

    await hub.stop();
    const stopped = await runLabhub(['users', 'invite', 'second-shell-user-2'], secondShell());
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(new URL(stopped.stdout.trim()).origin).toBe(publicOrigin(loadConfig({ env: secondShell() })));
    expect(new URL(stopped.stdout.trim()).origin).not.toBe(hub.url);
  });
});

describe('labhub users passwd', () => {
  const hub = new HubProcess();
  beforeAll(async () => {
    await hub.start();
    expect((await hub.cli(['users', 'add', 'quin', '--password-stdin'], 'first-password-1\n')).status).toBe(0);
  });
  afterAll(() => hub.cleanup());

  it('sets the password, ends the account\'s sessions and links, and refuses what it cannot do', async () => {
    const browser = new Browser(hub.url);
    expect((await browser.login('quin', 'first-password-1')).ok).toBe(true);
    const link = (await hub.cli(['users', 'invite', 'quin'])).stdout.trim();

    const set = await hub.cli(['users', 'passwd', 'quin', '--password-stdin'], 'second-password-2\n');
    expect(set.status, set.stderr).toBe(0);
    expect((await browser.request('/hub/home')).status).toBe(302);
    expect((await fetch(link)).status).toBe(404);
    expect((await new Browser(hub.url).login('quin', 'first-password-1')).ok).toBe(false);
    expect((await new Browser(hub.url).login('quin', 'second-password-2')).ok).toBe(true);

    expect((await hub.cli(['users', 'passwd', 'quin'])).status).toBe(2);
    expect((await hub.cli(['users', 'passwd', 'quin', '--password-stdin'], 'short\n')).status).toBe(2);
    const missing = await hub.cli(['users', 'passwd', 'nobody-here', '--password-stdin'], 'second-password-2\n');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no such user');
  });
});
