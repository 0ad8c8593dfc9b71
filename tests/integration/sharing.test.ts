import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startConfiguredHub } from '../helpers/auth-hub.js';
import { api, Browser, eventually, xsrfFromHtml, type HubProcess } from '../helpers/hub.js';
import { findSingleuser, requireService } from '../helpers/jupyter.js';
import { executeInKernel } from '../helpers/kernel.js';

/**
 * JupyterHub 5.0 sharing against a hub running the real jupyterhub-singleuser: alice (allowed to share by a role,
 * as JupyterHub requires) shares her server with bob, with a group, and through a share code; each recipient gets
 * into that server through the OAuth flow and nothing else of hers; revocation and renames are checked as an
 * attacker holding a share would probe them.
 */
const singleuser = findSingleuser(3);
const ready = requireService('jupyterhub-singleuser 3.x', singleuser !== null);

type Page<T> = { items: T[]; _pagination: { total: number } };
type Share = { server: { name: string; url: string; ready: boolean; user: { name: string } }; scopes: string[]; user: { name: string } | null; group: { name: string } | null };

describe.skipIf(!ready)('sharing a server', () => {
  let hub: HubProcess;
  let admin = '';
  const tokens: Record<string, string> = {};

  const as = (name: string, method: string, path: string, body?: unknown) => api(hub.url, tokens[name]!, method, path, body);
  const signedIn = async (name: string) => {
    const browser = new Browser(hub.url);
    expect((await browser.login(name, `${name}-password-1`)).status).toBe(200);
    return browser;
  };
  /** Opens alice's server as `browser`, consenting on the hub's page when asked; then its API's answer. */
  const openAlices = async (browser: Browser) => {
    let res = await browser.navigate('/user/alice/');
    if (res.status === 200 && browser.visited.at(-1)!.startsWith('/hub/api/oauth2/authorize')) {
      const form = await res.text();
      const fields = Object.fromEntries([...form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!.replaceAll('&amp;', '&')]));
      res = await browser.navigate('/hub/api/oauth2/authorize', {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...fields, _xsrf: xsrfFromHtml(form) }).toString(),
      });
    }
    if (res.status !== 200) return res;
    return browser.request('/user/alice/api/status');
  };

  beforeAll(async () => {
    ({ hub, adminToken: admin } = await startConfiguredHub({
      authenticator: { kind: 'dummy' },
      spawner: { kind: 'local', cmd: [singleuser], allow_root: true, poll_interval: 2 },
      allow_named_servers: true,
      roles: [{ name: 'sharers', scopes: ['shares!user', 'read:users:name', 'read:groups:name'], users: ['alice'] }],
    }));
    for (const name of ['bob', 'carol', 'dave']) expect((await api(hub.url, admin, 'POST', `/users/${name}`)).status).toBe(201);
    expect((await api(hub.url, admin, 'POST', '/groups/lab', { users: ['carol'] })).status).toBe(201);
    for (const name of ['alice', 'bob', 'carol', 'dave']) tokens[name] = (await hub.cli(['token', name])).stdout.trim();
    expect([201, 202]).toContain((await api(hub.url, admin, 'POST', '/users/alice/server')).status);
    await eventually(async () => ((await api(hub.url, admin, 'GET', '/users/alice')).body as { server: string | null }).server, 60_000);
  }, 90_000);

  afterAll(async () => {
    await api(hub.url, admin, 'DELETE', '/users/alice/server').catch(() => undefined);
    await hub?.cleanup();
  });

  it('grants a share with JupyterHub\'s model, lists it for the owner and the recipient, and no one else', async () => {
    const granted = await as('alice', 'POST', '/shares/alice/', { user: 'bob' });
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
    expect(granted.body).toMatchObject({
      server: { name: '', url: '/user/alice/', ready: true, user: { name: 'alice' } },
      scopes: ['access:servers!server=alice/'], user: { name: 'bob' }, group: null, created_at: expect.any(String),
    });
    const mine = (await as('alice', 'GET', '/shares/alice')).body as Page<Share>;
    expect(mine.items.map((s) => s.user?.name)).toEqual(['bob']);
    expect(mine._pagination.total).toBe(1);
    expect(((await as('bob', 'GET', '/users/bob/shared')).body as Page<Share>).items.map((s) => s.server.user.name)).toEqual(['alice']);
    expect((await as('bob', 'GET', '/users/bob/shared/alice/')).status).toBe(200);
    // The recipient cannot read the owner's shares, nor anyone else's list of what they hold.
    // Each holds the read scope for their own name only: another name is as unknown as a missing one (404).
    expect((await as('bob', 'GET', '/shares/alice')).status).toBe(404);
    expect((await as('dave', 'GET', '/users/bob/shared')).status).toBe(404);
    expect((await as('bob', 'GET', '/user')).body).toMatchObject({ scopes: expect.arrayContaining(['access:servers!server=alice/']) });
  });

  it('refuses what a share may not be: other scopes, other servers, the owner, unknown names, and sharers without the power', async () => {
    const cases: Array<[string, string, unknown, number]> = [
      ['alice', '/shares/alice/', { user: 'bob', group: 'lab' }, 400],
      ['alice', '/shares/alice/', {}, 400],
      ['alice', '/shares/alice/', { user: 'bob', scopes: ['read:users'] }, 400],
      ['alice', '/shares/alice/', { user: 'bob', scopes: ['access:servers'.concat('!server=alice/other')] }, 400],
      ['alice', '/shares/alice/', { user: 'bob', scopes: ['access:servers!user=alice'] }, 400],
      ['alice', '/shares/alice/', { user: 'bob', scopes: 'access:servers' }, 400],
      ['alice', '/shares/alice/', { user: 'alice' }, 400],
      ['alice', '/shares/alice/', { user: 'nobody-here' }, 404],
      ['alice', '/shares/alice/', { group: 'no-such-group' }, 404],
      ['alice', '/shares/alice/', { user: 'bob', expires_in: 60 }, 400],
      ['alice', '/shares/alice/notebook', { user: 'bob' }, 404],
      ['bob', '/shares/bob/', { user: 'alice' }, 403],
      ['bob', '/shares/alice/', { user: 'dave' }, 403],
      ['alice', '/shares/bob/', { user: 'dave' }, 404],
    ];
    for (const [who, path, body, status] of cases) {
      const res = await as(who, 'POST', path, body);
      expect(res.status, `${who} POST ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`).toBe(status);
      expect(res.body).toMatchObject({ status, message: expect.any(String) });
    }
    expect(((await as('alice', 'GET', '/shares/alice')).body as Page<Share>).items).toHaveLength(1);
  });

  it('lets the recipient into the shared server through the OAuth consent, and nothing else of the owner\'s', async () => {
    const bob = await signedIn('bob');
    const status = await openAlices(bob);
    expect(status.status, bob.visited.slice(-5).join(' -> ')).toBe(200);
    expect(await status.json()).toHaveProperty('started');
    for (const [method, path] of [['GET', '/users/alice'], ['DELETE', '/users/alice/server'], ['GET', '/users/alice/tokens'], ['POST', '/users/alice/tokens'], ['POST', '/shares/alice/']] as const) {
      const res = await as('bob', method, path, method === 'POST' ? { user: 'dave' } : undefined);
      expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(403);
    }
    const dave = await signedIn('dave');
    const refused = await dave.navigate('/user/alice/');
    expect(refused.status).toBe(403);
    expect(dave.visited.at(-1)).toMatch(/^\/hub\/api\/oauth2\/authorize/);
  });

  it('cuts a revoked recipient\'s open session at once: its next request and its kernel websocket, not the owner\'s', async () => {
    expect((await as('alice', 'POST', '/shares/alice/', { user: 'dave' })).status).toBe(200);
    const dave = await signedIn('dave');
    expect((await openAlices(dave)).status).toBe(200);
    const kernel = await fetch(`${hub.url}/user/alice/api/kernels`, { method: 'POST', headers: { authorization: `token ${tokens.alice!}` }, body: '{}' });
    expect(kernel.status).toBe(201);
    const kernelId = ((await kernel.json()) as { id: string }).id;
    const channels = `/user/alice/api/kernels/${kernelId}/channels`;
    const wsUrl = `${hub.url.replace(/^http/, 'ws')}${channels}`;
    const davesSocket = new WebSocket(wsUrl, { headers: { cookie: dave.cookieHeader(channels) } });
    await once(davesSocket, 'open');
    const closed = once(davesSocket, 'close');

    const revoked = await as('alice', 'PATCH', '/shares/alice/', { user: 'dave', scopes: ['access:servers!server=alice/'] });
    expect(revoked.status).toBe(200);
    // No wait: singleuser still holds the hub's answer about dave's token for minutes, so only the proxy can say no now.
    const refused = await dave.request('/user/alice/api/status');
    expect(refused.status).toBe(403);
    await expect(refused.json()).resolves.toMatchObject({ status: 403, message: expect.stringContaining('revoked') });
    await closed;
    expect(await executeInKernel(hub.url, '/user/alice/', kernelId, '6*7', { authorization: `token ${tokens.alice!}` })).toBe('42');
    // The refusal removed the server's cookie, so the next visit signs in afresh and the hub says no.
    const again = await dave.navigate('/user/alice/tree');
    expect(again.status).toBe(403);
    expect(dave.visited.at(-1)).toMatch(/^\/hub\/api\/oauth2\/authorize/);
    // Shared again, the same browser gets in at once: nothing of the revocation lingers for a new token.
    expect((await as('alice', 'POST', '/shares/alice/', { user: 'dave' })).status).toBe(200);
    expect((await openAlices(dave)).status).toBe(200);
    expect((await as('alice', 'PATCH', '/shares/alice/', { user: 'dave', scopes: ['access:servers!server=alice/'] })).status).toBe(200);
  });

  it('cuts an open session at once when its holder revokes the server\'s token on the API, as on the token page', async () => {
    const bob = await signedIn('bob');
    expect((await openAlices(bob)).status).toBe(200);
    type Token = { id: string; oauth_client: string | null };
    const listed = (await as('bob', 'GET', '/users/bob/tokens')).body as { api_tokens: Token[] };
    const forAlices = listed.api_tokens.find((t) => t.oauth_client === 'Server at /user/alice/');
    expect(forAlices, JSON.stringify(listed)).toBeDefined();
    expect((await as('bob', 'DELETE', `/users/bob/tokens/${forAlices!.id}`)).status).toBe(204);
    expect((await bob.request('/user/alice/api/status')).status).toBe(403);
    // The share itself stands: signing in there again gives a new token that works.
    expect((await openAlices(bob)).status).toBe(200);
  });

  it('shares with a group: its members get in, and lose access when the group share is revoked', async () => {
    expect((await as('alice', 'POST', '/shares/alice/', { group: 'lab' })).status).toBe(200);
    expect((await openAlices(await signedIn('carol'))).status).toBe(200);
    expect((await as('carol', 'GET', '/user')).body).toMatchObject({ scopes: expect.arrayContaining(['access:servers!server=alice/']) });
    const revoked = await as('alice', 'PATCH', '/shares/alice/', { group: 'lab', scopes: ['access:servers!server=alice/'] });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({});
    expect((await as('carol', 'GET', '/user')).body).not.toMatchObject({ scopes: expect.arrayContaining(['access:servers!server=alice/']) });
    // Her OAuth token for alice's server went with the share: a new sign-in there is refused at the hub.
    expect((await (await signedIn('carol')).navigate('/user/alice/')).status).toBe(403);
  });

  it('cuts access lost any other way at once too: leaving the group it is shared with, losing admin, the account deleted', async () => {
    const status = async (browser: Browser) => (await browser.request('/user/alice/api/status')).status;
    // Carol, in the group alice shares with, is taken out of the group.
    expect((await as('alice', 'POST', '/shares/alice/', { group: 'lab' })).status).toBe(200);
    const carol = await signedIn('carol');
    expect((await openAlices(carol)).status).toBe(200);
    expect((await api(hub.url, admin, 'DELETE', '/groups/lab/users', { users: ['carol'] })).status).toBe(200);
    const page = await carol.navigate('/user/alice/tree');
    expect(page.status).toBe(403);
    // The hub's page for it offers to sign in there afresh, for whoever can still use the server another way.
    expect(await page.text()).toMatch(/<a class="button primary" href="\/user\/alice\/tree">Open it again<\/a>/);
    expect((await api(hub.url, admin, 'POST', '/groups/lab/users', { users: ['carol'] })).status).toBe(200);
    expect((await openAlices(carol)).status).toBe(200);
    // The whole group goes.
    expect((await api(hub.url, admin, 'POST', '/groups/lab2', { users: ['carol'] })).status).toBe(201);
    expect((await as('alice', 'POST', '/shares/alice/', { group: 'lab2' })).status).toBe(200);
    expect((await as('alice', 'PATCH', '/shares/alice/', { group: 'lab', scopes: ['access:servers!server=alice/'] })).status).toBe(200);
    // Her sign-in there went with the first group's share; signing in afresh, she gets in through the second's.
    expect(await status(carol)).toBe(403);
    expect((await openAlices(carol)).status).toBe(200);
    expect((await api(hub.url, admin, 'DELETE', '/groups/lab2')).status).toBe(204);
    expect(await status(carol)).toBe(403);
    // An admin, who may use every server, is made a plain user.
    expect((await api(hub.url, admin, 'POST', '/users/erin', { admin: true })).status).toBe(201);
    const erin = await signedIn('erin');
    expect((await openAlices(erin)).status).toBe(200);
    expect((await api(hub.url, admin, 'PATCH', '/users/erin', { admin: false })).status).toBe(200);
    expect(await status(erin)).toBe(403);
    // An account deleted while its tab is open.
    expect((await api(hub.url, admin, 'POST', '/users/fred')).status).toBe(201);
    expect((await as('alice', 'POST', '/shares/alice/', { user: 'fred' })).status).toBe(200);
    const fred = await signedIn('fred');
    expect((await openAlices(fred)).status).toBe(200);
    expect((await api(hub.url, admin, 'DELETE', '/users/fred')).status).toBe(204);
    expect(await status(fred)).toBe(403);
  });

  it('makes a share code that someone accepts on the hub\'s page, lists it, and revokes it', async () => {
    const made = await as('alice', 'POST', '/share-codes/alice/', { expires_in: 3600 });
    expect(made.status).toBe(200);
    const code = made.body as { code: string; accept_url: string; id: string; expires_at: string };
    expect(code.accept_url).toBe(`/hub/accept-share?code=${code.code}`);
    expect(Date.parse(code.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    const dave = await signedIn('dave');
    const page = await dave.navigate(code.accept_url);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Use alice's default server?");
    const accepted = await dave.navigate('/hub/accept-share', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ code: code.code, _xsrf: xsrfFromHtml(html) }).toString(),
    });
    expect(dave.visited).toContain('/user/alice/');
    expect(accepted.status).toBe(200);
    expect((await openAlices(dave)).status).toBe(200);
    const listed = (await as('alice', 'GET', '/share-codes/alice/')).body as Page<{ id: string; exchange_count: number }>;
    expect(listed.items).toEqual([expect.objectContaining({ id: code.id, exchange_count: 1 })]);
    // Without an XSRF token the link grants nothing; after revocation it is dead.
    const forged = new Browser(hub.url);
    await forged.login('bob', 'bob-password-1');
    expect((await forged.navigate('/hub/accept-share', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `code=${code.code}` })).status).toBe(403);
    expect((await as('alice', 'DELETE', `/share-codes/alice/?id=${code.id}`)).status).toBe(204);
    expect((await dave.navigate(code.accept_url)).status).toBe(404);
  });

  it('keeps a named server\'s shares when the server is renamed (JupyterHub 6.0 PATCH), and frees its old name', async () => {
    expect((await as('alice', 'PUT', '/users/alice/servers/nb', {})).status).toBe(201);
    expect((await as('alice', 'POST', '/shares/alice/nb', { user: 'bob' })).status).toBe(200);
    expect((await as('alice', 'PATCH', '/users/alice/servers/nb', { name: 'nb2' })).status).toBe(200);
    const scopes = ((await as('bob', 'GET', '/user')).body as { scopes: string[] }).scopes;
    expect(scopes).toContain('access:servers!server=alice/nb2');
    expect(scopes).not.toContain('access:servers!server=alice/nb');
    // A new server under the old name is a new server: nobody has access to it.
    expect((await as('alice', 'PUT', '/users/alice/servers/nb', {})).status).toBe(201);
    expect(((await as('alice', 'GET', '/shares/alice/nb')).body as Page<Share>).items).toEqual([]);
  });

  it('lets a recipient leave, and keeps shares with the account, not the name, across a rename', async () => {
    expect((await as('dave', 'DELETE', '/users/dave/shared/alice/')).status).toBe(204);
    expect((await as('dave', 'GET', '/user')).body).not.toMatchObject({ scopes: expect.arrayContaining(['access:servers!server=alice/']) });
    await api(hub.url, admin, 'DELETE', '/users/alice/server');
    const renamed = await api(hub.url, admin, 'PATCH', '/users/alice', { name: 'alicia' });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect((await as('bob', 'GET', '/user')).body).toMatchObject({ scopes: expect.arrayContaining(['access:servers!server=alicia/']) });
    // A new account given the old name inherits nothing that was shared under it.
    expect((await api(hub.url, admin, 'POST', '/users/alice')).status).toBe(201);
    const scopes = ((await as('bob', 'GET', '/user')).body as { scopes: string[] }).scopes;
    expect(scopes.filter((s) => s.includes('server=alice/'))).toEqual([]);
    expect((await api(hub.url, admin, 'GET', '/shares/alice')).body).toMatchObject({ items: [] });
    expect((await api(hub.url, admin, 'PATCH', '/users/alicia', { name: 'alice-old' })).status).toBe(200);
  });

  it('records grants and revocations in the audit log', async () => {
    const audit = await api(hub.url, admin, 'GET', '/audit?kind=share');
    expect(audit.status, JSON.stringify(audit.body)).toBe(200);
    const actions = (audit.body as Array<{ action: string; details: { with: { name: string } } }>).map((e) => `${e.action}:${e.details.with.name}`);
    expect(actions).toEqual(expect.arrayContaining(['share.grant:bob', 'share.grant:lab', 'share.revoke:lab', 'share.grant:dave', 'share.revoke:dave']));
  });
});
