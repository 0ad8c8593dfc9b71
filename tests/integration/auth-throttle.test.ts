import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRefused, startConfiguredHub, stateDbContains, tryLogin } from '../helpers/auth-hub.js';
import { api, Browser, runLabhub, xsrfFromHtml, type HubProcess } from '../helpers/hub.js';

async function addNativeUser(hub: HubProcess, name: string, password: string): Promise<void> {
  const added = await hub.cli(['users', 'add', name, '--password-stdin'], `${password}\n`);
  expect(added.status, added.stderr).toBe(0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('login throttling per account, with a growing delay', () => {
  let hub: HubProcess;

  beforeAll(async () => {
    ({ hub } = await startConfiguredHub({ auth: { rate_limit: { account_failures: 2, ip_failures: 1000, base_delay: 1, max_delay: 4 } } }));
    await addNativeUser(hub, 'alice', 'alice-password');
  });
  afterAll(async () => {
    await hub.cleanup();
  });

  it('answers 429 with Retry-After once the failures pass the threshold, doubling the wait, even for the right password', async () => {
    expectRefused(await tryLogin(hub, 'alice', 'wrong-1'));
    expectRefused(await tryLogin(hub, 'alice', 'wrong-2'));
    const held = await tryLogin(hub, 'alice', 'alice-password');
    expect(held.res.status).toBe(429);
    expect(held.res.headers.get('retry-after')).toBe('1');
    expect(held.body).toContain('Too many failed sign-ins');
    await sleep(1100);
    expectRefused(await tryLogin(hub, 'Alice', 'wrong-3'));
    const longer = await tryLogin(hub, 'alice', 'alice-password');
    expect(longer.res.status).toBe(429);
    expect(longer.res.headers.get('retry-after')).toBe('2');
    await sleep(2100);
    const ok = await tryLogin(hub, 'alice', 'alice-password');
    expect(ok.res.status).toBe(200);
    // The success cleared the account's count.
    expectRefused(await tryLogin(hub, 'alice', 'wrong-4'));
  });

  it('counts wrong current passwords at /hub/password into the same throttle: a borrowed session cannot guess faster than the login form', async () => {
    await addNativeUser(hub, 'pia', 'pia-password');
    const { res, browser } = await tryLogin(hub, 'pia', 'pia-password');
    expect(res.status).toBe(200);
    const change = async (current: string) => {
      const xsrf = xsrfFromHtml(await (await browser.navigate('/hub/password')).text());
      return browser.navigate('/hub/password', {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ current, password: 'pia-new-password', password2: 'pia-new-password', _xsrf: xsrf }).toString(),
      });
    };
    expect((await change('guess-1')).status).toBe(400);
    expect((await change('guess-2')).status).toBe(400);
    const held = await change('pia-password');
    expect(held.status).toBe(429);
    expect(held.headers.get('retry-after')).toBe('1');
    // Held at the login form too: both are one count per account.
    expect((await tryLogin(hub, 'pia', 'pia-password')).res.status).toBe(429);
    await sleep(1100);
    expect((await change('pia-password')).status).toBe(200);
    expectRefused(await tryLogin(hub, 'pia', 'pia-password'));
  });

  it('throttles names that do not exist exactly like real ones (no account enumeration)', async () => {
    expectRefused(await tryLogin(hub, 'ghost', 'x-1'));
    expectRefused(await tryLogin(hub, 'ghost', 'x-2'));
    expect((await tryLogin(hub, 'ghost', 'x-3')).res.status).toBe(429);
  });
});

describe('login throttling under concurrent attempts (issue 16 item 5)', () => {
  let hub: HubProcess;

  beforeAll(async () => {
    ({ hub } = await startConfiguredHub({ auth: { rate_limit: { account_failures: 3, ip_failures: 1000, base_delay: 30, max_delay: 60 } } }));
    await addNativeUser(hub, 'dora', 'dora-password');
  });
  afterAll(async () => {
    await hub.cleanup();
  });

  it('24 wrong passwords sent at once, then the right one while they are checked: only the threshold is heard, the right one is held', async () => {
    // Each attempt in its own browser with its login form already loaded, so all posts leave together.
    const browsers = await Promise.all(Array.from({ length: 25 }, async () => {
      const browser = new Browser(hub.url);
      return { browser, xsrf: xsrfFromHtml(await (await browser.navigate('/hub/login')).text()) };
    }));
    const post = ({ browser, xsrf }: { browser: Browser; xsrf: string }, password: string) => browser.navigate('/hub/login', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'dora', password, _xsrf: xsrf }).toString(),
    });
    const wrong = browsers.slice(0, 24).map((b, i) => post(b, `wrong-${i}`));
    await sleep(50);
    const right = await post(browsers[24]!, 'dora-password');
    expect(right.status).toBe(429);
    expect(browsers[24]!.browser.cookie('labhub-session', '/hub/')).toBeUndefined();
    const statuses = (await Promise.all(wrong)).map((r) => r.status);
    expect(statuses.filter((s) => s === 403)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(21);
  });
});

describe('login throttling per client address', () => {
  let hub: HubProcess;

  beforeAll(async () => {
    ({ hub } = await startConfiguredHub({ auth: { rate_limit: { account_failures: 100, ip_failures: 3, base_delay: 30, max_delay: 60 } } }));
    await addNativeUser(hub, 'bob', 'bob-password');
  });
  afterAll(async () => {
    await hub.cleanup();
  });

  it('holds an address that sprays passwords across accounts, whatever account it tries next', async () => {
    for (const name of ['u1', 'u2', 'u3']) expectRefused(await tryLogin(hub, name, 'guess'));
    const held = await tryLogin(hub, 'bob', 'bob-password');
    expect(held.res.status).toBe(429);
    expect(Number(held.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(29);
  });
});

describe('auth_state at rest', () => {
  it('a hub told to keep auth_state does not start without LABHUB_CRYPT_KEY', async () => {
    const { status, stderr, stdout } = await runLabhub(['start'], {
      ...(process.env as Record<string, string>), LABHUB_AUTH__AUTH_STATE__ENABLED: 'true', LABHUB_CRYPT_KEY: '', LABHUB_DATA_DIR: mkdtempSync(join(tmpdir(), 'labhub-no-key-')),
    });
    expect(status).not.toBe(0);
    expect(stderr + stdout).toContain('LABHUB_CRYPT_KEY');
  });

  describe('through the REST API', () => {
    let hub: HubProcess;
    let admin = '';

    beforeAll(async () => {
      ({ hub, adminToken: admin } = await startConfiguredHub({ auth: { auth_state: { enabled: true } } }, { LABHUB_CRYPT_KEY: randomBytes(32).toString('hex') }));
      await addNativeUser(hub, 'carol', 'carol-password');
    });
    afterAll(async () => {
      await hub.cleanup();
    });

    it('stores what an admin sets encrypted, and gives it back decrypted', async () => {
      const marker = `token-${randomBytes(8).toString('hex')}`;
      expect((await api(hub.url, admin, 'PATCH', '/users/carol', { auth_state: { access_token: marker } })).status).toBe(200);
      const { body } = await api(hub.url, admin, 'GET', '/users/carol');
      expect((body as { auth_state: unknown }).auth_state).toEqual({ access_token: marker });
      expect(stateDbContains(hub, marker)).toBe(false);
      expect(stateDbContains(hub, 'aes256gcm:')).toBe(true);
    });
  });
});
