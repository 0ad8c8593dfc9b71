import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceClient, servicePrefix } from '../../hub/services/oauth-clients.js';
import { startConfiguredHub } from '../helpers/auth-hub.js';
import { api, Browser, xsrfFromHtml, type HubProcess } from '../helpers/hub.js';
import { JH5_VENV, requireService } from '../helpers/jupyter.js';
import { WhoamiService, whoamiAvailable } from '../helpers/whoami-service.js';
import { freePort } from '../helpers/ports.js';

/**
 * Services declared in config, used by a real client: a service written with the `jupyterhub` package's HubOAuth
 * (browser login through the hub's pages and OAuth provider, reached through the proxy at /services/<name>/) and
 * HubAuth (a user's token from a script), unchanged.
 */
const ready = requireService(`jupyterhub package in ${JH5_VENV} (scripts/setup-test-env.sh)`, whoamiAvailable());

const WHOAMI_TOKEN = randomBytes(24).toString('hex');
const REPORTER_TOKEN = randomBytes(24).toString('hex');

describe.skipIf(!ready)('services from config with a real HubOAuth / HubAuth service', () => {
  let hub: HubProcess;
  let admin = '';
  let servicePort = 0;
  let service: WhoamiService | null = null;
  const whoami = { name: 'whoami', api_token: WHOAMI_TOKEN, info: { team: 'lab' } } as const;
  const reporter = { name: 'reporter', api_token: REPORTER_TOKEN, display: false };
  const config = (services: unknown[]) => ({
    authenticator: { kind: 'dummy' },
    spawner: { kind: 'instant' },
    services,
    roles: [
      { name: 'whoami-users', scopes: ['access:services!service=whoami'], users: ['alice'] },
      { name: 'reporting', scopes: ['list:services!service=whoami', 'read:services!service=whoami', 'list:users!user=alice'], services: ['reporter'] },
    ],
  });
  const whoamiConfig = () => ({ ...whoami, url: `http://127.0.0.1:${servicePort}` });
  const prefix = servicePrefix(whoami.name);

  async function userToken(name: string): Promise<string> {
    const created = await api(hub.url, admin, 'POST', `/users/${name}/tokens`, { note: 'script' });
    expect(created.status).toBe(201);
    return (created.body as { token: string }).token;
  }

  beforeAll(async () => {
    servicePort = await freePort();
    ({ hub, adminToken: admin } = await startConfiguredHub(config([whoamiConfig(), reporter])));
    // alice exists already: the role that grants her the service names her.
    expect((await api(hub.url, admin, 'POST', '/users/bob')).status).toBe(201);
    service = new WhoamiService(hub.url, whoamiConfig());
    await service.start();
  }, 60_000);

  afterAll(async () => {
    service?.stop();
    await hub?.cleanup();
  });

  it('lists services as JupyterHub does: an object keyed by name, each model cut to what the scopes show', async () => {
    const all = await api(hub.url, admin, 'GET', '/services');
    expect(all.status).toBe(200);
    expect(Object.keys(all.body as object).sort()).toEqual(['reporter', 'whoami']);
    expect((all.body as Record<string, unknown>).whoami).toEqual({
      kind: 'service', name: 'whoami', admin: false, roles: [], url: `http://127.0.0.1:${servicePort}`, prefix,
      command: [], pid: 0, info: { team: 'lab' }, display: true,
    });
    expect((await api(hub.url, admin, 'GET', '/services/reporter')).body).toMatchObject({ name: 'reporter', prefix: '', display: false, roles: ['reporting'] });
    const missing = await api(hub.url, admin, 'GET', '/services/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ status: 404, message: expect.stringContaining('nothing-here') });

    // A service whose role lists only whoami sees only whoami, in the list and by name.
    const narrow = await api(hub.url, REPORTER_TOKEN, 'GET', '/services');
    expect(Object.keys(narrow.body as object), JSON.stringify(narrow.body)).toEqual(['whoami']);
    expect((await api(hub.url, REPORTER_TOKEN, 'GET', '/services/whoami')).status).toBe(200);
    expect((await api(hub.url, REPORTER_TOKEN, 'GET', '/services/reporter')).status).toBe(404);
    // Filtered list scopes list what they name, for users as for services (a 403 before).
    expect(((await api(hub.url, REPORTER_TOKEN, 'GET', '/users')).body as Array<{ name: string }>).map((u) => u.name)).toEqual(['alice']);
    // A user's token lists nothing: users have no list:services.
    const alice = await userToken('alice');
    expect((await api(hub.url, alice, 'GET', '/services')).status).toBe(403);
    expect((await api(hub.url, alice, 'GET', '/services/whoami')).status).toBe(403);
  });

  it('routes /services/<name>/ through the proxy and logs a granted user in with HubOAuth after her consent', async () => {
    const alice = new Browser(hub.url);
    expect((await alice.login('alice', 'any-password-1')).status).toBe(200);
    const home = await (await alice.navigate('/hub/home')).text();
    expect(home).toContain(`href="${prefix}"`);
    const consent = await alice.navigate(prefix);
    expect(consent.status, alice.visited.join(' -> ')).toBe(200);
    expect(alice.visited.some((p) => p.startsWith('/hub/api/oauth2/authorize'))).toBe(true);
    const form = await consent.text();
    expect(form).toContain('Sign in to whoami?');
    const fields = Object.fromEntries([...form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!.replaceAll('&amp;', '&')]));
    const landed = await alice.navigate('/hub/api/oauth2/authorize', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...fields, _xsrf: xsrfFromHtml(form) }).toString(),
    });
    expect(landed.status, `${alice.visited.join(' -> ')}\n${service!.log.slice(-2000)}`).toBe(200);
    expect(alice.visited.some((p) => p.startsWith(`${prefix}oauth_callback`))).toBe(true);
    const seen = await landed.json() as { via: string; user: { name: string; kind: string; scopes: string[] } };
    expect(seen.via).toBe('oauth');
    expect(seen.user).toMatchObject({ name: 'alice', kind: 'user' });
    expect(seen.user.scopes).toContain('access:services!service=whoami');
    // The token the service holds is alice's, issued to its client, and listed with her tokens.
    const tokens = await api(hub.url, admin, 'GET', '/users/alice/tokens');
    expect((tokens.body as { api_tokens: Array<{ oauth_client: string }> }).api_tokens.map((t) => t.oauth_client)).toContain('Service whoami');
  });

  it('refuses a user without access to the service at the authorize step, and lists it nowhere for her', async () => {
    const bob = new Browser(hub.url);
    expect((await bob.login('bob', 'any-password-1')).status).toBe(200);
    expect(await (await bob.navigate('/hub/home')).text()).not.toContain(`href="${prefix}"`);
    const refused = await bob.navigate(prefix);
    expect(refused.status).toBe(403);
    expect(bob.visited.at(-1)).toMatch(/^\/hub\/api\/oauth2\/authorize/);
    expect(await refused.text()).toContain('not allowed to access the service whoami');
  });

  it('lets HubAuth identify a user by her token from a script, and refuses a token without access', async () => {
    const call = (token: string) => fetch(`${hub.url}${prefix}api/whoami`, { headers: { authorization: `token ${token}` } });
    const ok = await call(await userToken('alice'));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ via: 'token', user: { name: 'alice' } });
    expect((await call(await userToken('bob'))).status).toBe(403);
    // An unknown token is no identity: HubAuth sends the caller to sign in at the hub, as for an anonymous request.
    const unknown = await fetch(`${hub.url}${prefix}api/whoami`, { headers: { authorization: 'token not-a-token-at-all' }, redirect: 'manual' });
    expect(unknown.status).toBe(302);
    expect(unknown.headers.get('location')).toMatch(/^\/hub\/(login|api\/oauth2\/authorize)\?/);
  });

  it('holds the code to its PKCE challenge (S256): a missing or wrong verifier spends the code for nothing', async () => {
    const client = serviceClient({ ...whoamiConfig(), admin: false, display: true, oauth_client_allowed_scopes: [], oauth_no_confirm: false })!;
    const alice = new Browser(hub.url);
    await alice.login('alice', 'any-password-1');
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    /** A code issued for this challenge, through the consent page as a browser gets one. */
    const codeFor = async (extra: Record<string, string>) => {
      const query = new URLSearchParams({ client_id: client.identifier, redirect_uri: client.redirectUri, response_type: 'code', state: 's1', ...extra });
      const consent = await alice.request(`/hub/api/oauth2/authorize?${query}`);
      if (consent.status !== 200) return { status: consent.status, code: '' };
      const form = await consent.text();
      const fields = Object.fromEntries([...form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!.replaceAll('&amp;', '&')]));
      const back = await alice.request('/hub/api/oauth2/authorize', {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...fields, _xsrf: xsrfFromHtml(form) }).toString(),
      });
      return { status: back.status, code: new URL(back.headers.get('location')!, hub.url).searchParams.get('code') ?? '' };
    };
    const exchange = (code: string, verifierSent?: string) => fetch(`${hub.url}/hub/api/oauth2/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: client.identifier, client_secret: WHOAMI_TOKEN, code, redirect_uri: client.redirectUri, ...(verifierSent && { code_verifier: verifierSent }) }),
    });
    const pkce = { code_challenge: challenge, code_challenge_method: 'S256' };

    const wrong = await codeFor(pkce);
    expect(wrong.status).toBe(302);
    const refused = await exchange(wrong.code, randomBytes(32).toString('base64url'));
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await exchange(wrong.code, verifier)).status).toBe(400);
    expect((await exchange((await codeFor(pkce)).code)).status).toBe(400);
    const good = await exchange((await codeFor(pkce)).code, verifier);
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ access_token: expect.any(String), token_type: 'Bearer' });
    // A client without PKCE still gets its token (JupyterHub 5's single-user servers send none); plain is refused.
    expect((await exchange((await codeFor({})).code)).status).toBe(200);
    expect((await codeFor({ code_challenge: challenge, code_challenge_method: 'plain' })).status).toBe(400);
    expect((await codeFor({ code_challenge: 'short' })).status).toBe(400);
  });

  it('forgets a service removed from config: its model, its route, its OAuth client and the tokens users gave it', async () => {
    const hasServiceToken = async () => ((await api(hub.url, admin, 'GET', '/users/alice/tokens')).body as { api_tokens: Array<{ oauth_client: string }> })
      .api_tokens.some((t) => t.oauth_client === 'Service whoami');
    expect(await hasServiceToken()).toBe(true);
    const routes = async () => Object.keys(await (await fetch(`http://127.0.0.1:${hub.apiPort}/api/routes`, { headers: { authorization: `token ${hub.proxyToken()}` } })).json() as object);
    expect(await routes()).toContain(prefix.replace(/\/$/, ''));
    await hub.stop();
    writeFileSync(join(hub.dataDir, 'labhub.yaml'), stringify(config([reporter])));
    await hub.start();
    expect(Object.keys((await api(hub.url, admin, 'GET', '/services')).body as object)).toEqual(['reporter']);
    expect(await hasServiceToken()).toBe(false);
    expect(await routes()).not.toContain(prefix.replace(/\/$/, ''));
    expect((await fetch(`${hub.url}${prefix}api/whoami`)).status).toBe(404);
  });
});
