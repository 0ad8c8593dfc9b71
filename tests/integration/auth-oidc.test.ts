import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENERIC_FAILURE, logAfter, startConfiguredHub, stateDbContains, userModel } from '../helpers/auth-hub.js';
import { api, eventually, type HubProcess } from '../helpers/hub.js';
import { CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, TestProvider, TwoSiteBrowser } from '../helpers/oidc-provider.js';
import { freePort } from '../helpers/ports.js';

const accounts = {
  'sub-alice': { preferred_username: 'Alice', name: 'Alice Liddell', picture: 'https://example.org/alice.png', email: 'alice@example.org', email_verified: true, groups: ['physics', 'hub-admins'] },
  'sub-bob': { preferred_username: 'bob', name: 'Bob', picture: 'http://example.org/bob.png', groups: ['physics'] },
  'sub-carol': { preferred_username: 'carol', groups: ['chemistry'] },
  'sub-mallory': { preferred_username: 'mallory', groups: ['physics', 'banned'] },
  // Another person at the provider whose username claim is also "bob".
  'sub-impostor': { preferred_username: 'bob', groups: ['physics'] },
};

const isCallback = (url: URL) => url.pathname === '/hub/oauth_callback';

describe('OpenID Connect authenticator against oidc-provider', () => {
  let provider: TestProvider;
  let hub: HubProcess;
  let admin = '';

  beforeAll(async () => {
    provider = new TestProvider(await freePort(), accounts);
    ({ hub, adminToken: admin } = await startConfiguredHub(() => ({
      authenticator: { kind: 'oidc' },
      spawner: { kind: 'instant' },
      auth: {
        oidc: {
          issuer: provider.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, allow_insecure_http: true,
          scopes: ['openid', 'profile', 'groups', 'offline_access'], login_service: 'Test IdP', refresh_before_spawn: 86_400,
        },
        allowed_groups: ['physics'],
        admin_groups: ['hub-admins'],
        blocked_groups: ['banned'],
        manage_groups: true,
        auth_state: { enabled: true },
      },
    }), { LABHUB_CRYPT_KEY: randomBytes(32).toString('hex') }));
    await provider.start(hub.url);
  });

  afterAll(async () => {
    await hub?.cleanup();
    await provider?.stop();
  });

  it('shows a sign-in button instead of a password form', async () => {
    const page = await fetch(`${hub.url}/hub/login?next=/hub/home`);
    const html = await page.text();
    expect(html).toContain('Sign in with Test IdP');
    expect(html).toContain('href="/hub/oauth_login?next=%2Fhub%2Fhome"');
    expect(html).not.toContain('type="password"');
  });

  it('logs in through the provider with PKCE, state and nonce; claims give name, admin and hub groups', async () => {
    const browser = new TwoSiteBrowser(hub.url, provider.issuer);
    const { res, url } = await browser.go('/hub/oauth_login?next=%2Fhub%2Fhome', 'sub-alice');
    expect(res.status, browser.visited.map((u) => u.pathname).join(' -> ')).toBe(200);
    expect(url.pathname).toBe('/hub/home');
    const authorize = browser.visited.find((u) => u.origin === provider.issuer && u.searchParams.has('client_id'))!;
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(authorize.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    const alice = await userModel(hub, admin, 'alice');
    expect(alice.admin).toBe(true);
    expect(alice.groups).toEqual(['hub-admins', 'physics']);
    // JupyterHub 6's user_info from the profile claims, which jupyterhub-singleuser 6 shows in JupyterLab.
    expect((alice as { user_info?: unknown }).user_info).toEqual({ name: 'Alice Liddell', display_name: 'Alice Liddell', initials: 'AL', avatar_url: 'https://example.org/alice.png' });
  });

  it('keeps the provider tokens encrypted as auth_state, refreshes them before a spawn, and the spawn succeeds', async () => {
    const before = (await userModel(hub, admin, 'alice')).auth_state as Record<string, unknown>;
    expect(before.access_token).toEqual(expect.any(String));
    expect(before.refresh_token).toEqual(expect.any(String));
    expect(stateDbContains(hub, before.access_token as string)).toBe(false);
    const started = await api(hub.url, admin, 'POST', '/users/alice/server');
    expect([201, 202]).toContain(started.status);
    await eventually(async () => ((await userModel(hub, admin, 'alice')) as unknown as { server: string | null }).server);
    const after = (await userModel(hub, admin, 'alice')).auth_state as Record<string, unknown>;
    expect(after.access_token).toEqual(expect.any(String));
    expect(after.access_token).not.toBe(before.access_token);
    await api(hub.url, admin, 'DELETE', '/users/alice/server');
  });

  it('keeps a safe next= through the provider and drops one that leaves the hub', async () => {
    const kept = await new TwoSiteBrowser(hub.url, provider.issuer).go('/hub/oauth_login?next=%2Fhub%2Ftoken', 'sub-bob');
    expect(kept.url.pathname).toBe('/hub/token');
    // TwoSiteBrowser throws if a redirect leaves the hub and the provider.
    const dropped = await new TwoSiteBrowser(hub.url, provider.issuer).go('/hub/oauth_login?next=https%3A%2F%2Fevil.example%2F', 'sub-bob');
    expect(dropped.url.pathname).toBe('/hub/home');
    // An http:// picture is not an avatar the pages would load over https: user_info keeps the name only.
    expect((await userModel(hub, admin, 'bob') as { user_info?: unknown }).user_info).toEqual({ name: 'Bob', display_name: 'Bob', initials: 'B' });
    const page = await (await fetch(`${hub.url}/hub/login?next=${encodeURIComponent('"><script>alert(1)</script>')}`)).text();
    expect(page).not.toContain('<script>alert(1)');
  });

  it('refuses a provider error answer (access_denied)', async () => {
    const browser = new TwoSiteBrowser(hub.url, provider.issuer);
    const { url } = await browser.go('/hub/oauth_login', 'sub-bob', (u) => u.origin === provider.issuer);
    const res = await browser.hub.request(`/hub/oauth_callback?error=access_denied&state=${url.searchParams.get('state')}&iss=${encodeURIComponent(provider.issuer)}`);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain(GENERIC_FAILURE);
  });

  it('refuses a forged state', async () => {
    const browser = new TwoSiteBrowser(hub.url, provider.issuer);
    const { url } = await browser.go('/hub/oauth_login', 'sub-bob', isCallback);
    url.searchParams.set('state', 'forged-state-value-from-an-attacker');
    const res = await browser.hub.request(url.pathname + url.search);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain(GENERIC_FAILURE);
    expect(browser.hub.cookie('labhub-session', '/hub/')).toBeUndefined();
  });

  it('refuses a replayed code, and a callback the browser did not start', async () => {
    const browser = new TwoSiteBrowser(hub.url, provider.issuer);
    const { url: first } = await browser.go('/hub/oauth_login', 'sub-bob', isCallback);
    expect((await browser.hub.request(first.pathname + first.search)).status).toBe(302);
    // The same callback again: its pending login is gone.
    expect((await browser.hub.request(first.pathname + first.search)).status).toBe(400);
    // The used code under a new login's state: the provider refuses the code (and the PKCE verifier differs).
    const { url: second } = await new TwoSiteBrowser(hub.url, provider.issuer).go('/hub/oauth_login', 'sub-bob', isCallback);
    const fresh = await browser.go('/hub/oauth_login', 'sub-bob', isCallback);
    fresh.url.searchParams.set('code', first.searchParams.get('code')!);
    const replay = await browser.hub.request(fresh.url.pathname + fresh.url.search);
    expect(replay.status).toBe(403);
    // A stranger's callback URL in a browser that started no login.
    expect((await new TwoSiteBrowser(hub.url, provider.issuer).hub.request(second.pathname + second.search)).status).toBe(400);
  });

  it('refuses a code issued to another client', async () => {
    const browser = new TwoSiteBrowser(hub.url, provider.issuer);
    const { url } = await browser.go('/hub/oauth_login', 'sub-bob', (u) => u.origin === provider.issuer);
    url.searchParams.set('client_id', OTHER_CLIENT_ID);
    const { url: callback } = await browser.go(url.href, 'sub-bob', isCallback);
    expect(callback.searchParams.get('code')).toBeTruthy();
    const from = hub.output.length;
    const res = await browser.hub.request(callback.pathname + callback.search);
    expect(res.status).toBe(403);
    expect(await logAfter(hub, from, /OpenID Connect callback refused/)).toMatch(/invalid_grant|unauthorized_client|invalid_client/);
  });

  it('refuses a correctly signed ID token whose audience is another client', async () => {
    const browser = new TwoSiteBrowser(hub.url, provider.issuer);
    const { url } = await browser.go('/hub/oauth_login', 'sub-bob', (u) => u.origin === provider.issuer);
    url.searchParams.set('client_id', OTHER_CLIENT_ID);
    const { url: callback } = await browser.go(url.href, 'sub-bob', isCallback);
    const from = hub.output.length;
    provider.tokenRequestsAs = { clientId: OTHER_CLIENT_ID, secret: OTHER_CLIENT_SECRET };
    try {
      const res = await browser.hub.request(callback.pathname + callback.search);
      expect(res.status).toBe(403);
    } finally {
      provider.tokenRequestsAs = null;
    }
    // The provider did issue tokens (to other-app); the hub refused them for their audience.
    expect(await logAfter(hub, from, /OpenID Connect callback refused/)).toMatch(/aud\\" \(audience\) claim value[^\n]*OpenID Connect callback refused/);
    expect((await api(hub.url, admin, 'GET', '/users/bob')).status).toBe(200);
  });

  it('refuses users outside the allowed groups and in a blocked group with the generic message', async () => {
    for (const account of ['sub-carol', 'sub-mallory']) {
      const browser = new TwoSiteBrowser(hub.url, provider.issuer);
      const { res, url } = await browser.go('/hub/oauth_login', account);
      expect(url.pathname).toBe('/hub/oauth_callback');
      expect(res.status).toBe(403);
      expect(await res.text()).toContain(GENERIC_FAILURE);
    }
    const { status } = await api(hub.url, admin, 'GET', '/users/mallory');
    expect(status).toBe(404);
  });

  it('binds a hub user to one provider subject: another person with the same username claim is refused', async () => {
    const bob = await new TwoSiteBrowser(hub.url, provider.issuer).go('/hub/oauth_login', 'sub-bob');
    expect(bob.url.pathname).toBe('/hub/home');
    const from = hub.output.length;
    const impostor = await new TwoSiteBrowser(hub.url, provider.issuer).go('/hub/oauth_login', 'sub-impostor');
    expect(impostor.res.status).toBe(403);
    expect(await impostor.res.text()).toContain(GENERIC_FAILURE);
    expect(await logAfter(hub, from, /belongs to another identity/)).toContain('"user":"bob"');
    expect((await new TwoSiteBrowser(hub.url, provider.issuer).go('/hub/oauth_login', 'sub-bob')).url.pathname).toBe('/hub/home');
  });

  it('logs out at the hub, then at the provider\'s end-session endpoint, and comes back to the login page', async () => {
    const browser = new TwoSiteBrowser(hub.url, provider.issuer);
    await browser.go('/hub/oauth_login', 'sub-bob');
    expect(browser.hub.cookie('labhub-session', '/hub/')).toBeTruthy();
    const { res, url } = await browser.go('/hub/logout', 'sub-bob');
    expect(browser.hub.cookie('labhub-session', '/hub/')).toBeUndefined();
    const endSession = browser.visited.find((u) => u.origin === provider.issuer && u.pathname.startsWith('/session/end'))!;
    expect(endSession.searchParams.get('id_token_hint')).toMatch(/^ey/);
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(`${hub.url}/hub/login`);
    expect(url.href.startsWith(`${hub.url}/hub/login`)).toBe(true);
    expect(res.status).toBe(200);
  });
});

describe('OpenID Connect with the e-mail address as username (GHSA-rrvg-cxh4-qhrv)', () => {
  let provider: TestProvider;
  let hub: HubProcess;
  let admin = '';

  beforeAll(async () => {
    provider = new TestProvider(await freePort(), {
      'sub-verified': { email: 'Dora@Example.org', email_verified: true },
      'sub-unverified': { email: 'alice@example.org', email_verified: false },
    });
    ({ hub, adminToken: admin } = await startConfiguredHub(() => ({
      authenticator: { kind: 'oidc' },
      auth: {
        oidc: {
          issuer: provider.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, allow_insecure_http: true,
          scopes: ['openid', 'email'], username_claim: 'email', end_session: false,
        },
      },
    })));
    await provider.start(hub.url);
  });

  afterAll(async () => {
    await hub?.cleanup();
    await provider?.stop();
  });

  it('takes a verified address as the (normalized) username', async () => {
    const { res, url } = await new TwoSiteBrowser(hub.url, provider.issuer).go('/hub/oauth_login', 'sub-verified');
    expect(url.pathname).toBe('/hub/home');
    expect(res.status).toBe(200);
    expect((await api(hub.url, admin, 'GET', '/users/dora@example.org')).status).toBe(200);
  });

  it('refuses an address the provider did not verify, so nobody can claim another person\'s name', async () => {
    const { res } = await new TwoSiteBrowser(hub.url, provider.issuer).go('/hub/oauth_login', 'sub-unverified');
    expect(res.status).toBe(403);
    expect((await api(hub.url, admin, 'GET', '/users/alice@example.org')).status).toBe(404);
  });

  it('logs out locally only when end-session is turned off', async () => {
    const browser = new TwoSiteBrowser(hub.url, provider.issuer);
    await browser.go('/hub/oauth_login', 'sub-verified');
    await browser.go('/hub/logout', 'sub-verified');
    expect(browser.visited.some((u) => u.origin === provider.issuer && u.pathname.startsWith('/session/end'))).toBe(false);
    expect(browser.hub.cookie('labhub-session', '/hub/')).toBeUndefined();
  });
});
