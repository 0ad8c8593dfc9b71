/**
 * The rows of the isolation matrix (tests/helpers/isolation.ts): every attempt by A on B's resources, as data, and
 * what counts as a refusal.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import WebSocket from 'ws';
import { expect } from 'vitest';
import { oauthClientId, serverPrefix } from '../../hub/servers/naming.js';
import { accountOf } from './accounts.js';
import { api, Browser, xsrfFromHtml } from './hub.js';
import {
  ACTORS, B, B_NAMED, CLASS_OF_B, CLIENT_NAMED, DOTTED, GROUP_OF_B, OTHER_CLASS, PASSWORD, ROLES, SLUG_NAMED, startAndWait,
  type ActorRole, type Credentials, type World,
} from './isolation-world.js';

// ---------------------------------------------------------------------------------------------------------------
// Outcomes

export interface Outcome {
  held: boolean;
  /** What happened, for the failure message. */
  detail: string;
}

type ApiAnswer = Awaited<ReturnType<typeof api>>;

/** A clear API refusal: 4xx with `{status, message}` where status is the HTTP status. */
function apiRefusal(res: ApiAnswer): Outcome {
  const body = res.body as { status?: unknown; message?: unknown } | null;
  const shaped = typeof body === 'object' && body !== null && body.status === res.status && typeof body.message === 'string';
  return {
    held: res.status >= 400 && res.status < 500 && shaped,
    detail: `${res.status} ${JSON.stringify(res.body)?.slice(0, 300)}${shaped ? '' : ' (not a {status, message} error)'}`,
  };
}

/** A page refusal: 4xx, or a redirect to the hub's login. */
async function pageRefusal(res: Response): Promise<Outcome> {
  const location = res.headers.get('location') ?? '';
  const text = await res.text();
  const refused = (res.status >= 400 && res.status < 500) || ([302, 303].includes(res.status) && location.startsWith('/hub/login'));
  return { held: refused, detail: `${res.status}${location ? ` -> ${location}` : ''} ${text.slice(0, 200)}` };
}

/**
 * A notebook server's refusal: 4xx, or a redirect into the hub's login or OAuth authorize (where A is refused by
 * the OAuth rows); never a 2xx from B's server.
 */
async function serverRefusal(res: Response): Promise<Outcome> {
  const location = res.headers.get('location') ?? '';
  const text = await res.text();
  const toHub = [302, 303].includes(res.status) && /^(https?:\/\/[^/]+)?\/hub\/(login|api\/oauth2\/authorize)/.test(location);
  return { held: (res.status >= 400 && res.status < 500) || toHub, detail: `${res.status}${location ? ` -> ${location}` : ''} ${text.slice(0, 200)}` };
}

/** A permitted cell: 2xx, and none of B's secrets in what came back. */
function permittedWithoutSecrets(res: ApiAnswer, w: World): Outcome {
  const text = JSON.stringify(res.body);
  const secrets = [w.bToken.token, w.servers?.bSecrets.apiToken, ...Object.values(w.servers?.bSecrets.credentials ?? {}).map((c) => c.password)]
    .filter((s): s is string => !!s);
  const leaked = secrets.filter((s) => text.includes(s));
  return { held: res.status >= 200 && res.status < 300 && !leaked.length, detail: `${res.status}${leaked.length ? ' with a secret of B in the body' : ''} ${text.slice(0, 200)}` };
}

/** A request's outcome when it must not succeed, whatever way it fails (broker refusals come as errors). */
async function serviceRefusal(what: string, attempt: () => Promise<unknown>): Promise<Outcome> {
  try {
    const result = await attempt();
    return { held: false, detail: `${what} succeeded: ${JSON.stringify(result)?.slice(0, 200)}` };
  } catch (err) {
    return { held: true, detail: `${what} refused: ${(err as Error).message.slice(0, 200)}` };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The matrix

export type Channel = 'REST API' | 'pages' | 'proxy' | 'OAuth' | 'leases' | 'class properties' | 'audit log' | 'usage and quotas';

export interface MatrixRow {
  /** One of ACTORS' roles, or a user whose name collides with one of B's identifiers. */
  actor: string;
  channel: Channel;
  resource: string;
  attempt: string;
  /** `permitted`: a power this role holds by design; checked to answer 2xx without B's secrets. */
  expect: 'refused' | 'permitted';
  run(w: World): Promise<Outcome>;
}

export function rowLabel(r: MatrixRow): string {
  const note = { refused: '', permitted: ' (permitted by design)' }[r.expect];
  return `${r.actor} | ${r.channel} | ${r.resource} | ${r.attempt}${note}`;
}

export interface MatrixOptions {
  /** Servers run: proxy, websocket, OAuth and lease rows. */
  servers: boolean;
  leases: boolean;
  /** The spawner mounts volumes (Docker, Kubernetes): the shared_volume escalation is followed to the mount. */
  volumes: boolean;
}

const asActor = (actor: ActorRole) => ACTORS[actor];

/** The OAuth client id of a user's default server, from the account's uid as the hub stored it. */
const clientOf = (w: World, name: string) => oauthClientId(accountOf(w.hub, name).uid, '');

/** Posts a hub form as A, with A's XSRF token; no redirect is followed. */
async function postAsBrowser(browser: Browser, path: string, fields: Record<string, string> = {}): Promise<Response> {
  const xsrf = xsrfFromHtml(await (await browser.navigate('/hub/home')).text());
  return browser.request(path, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-mode': 'navigate' },
    body: new URLSearchParams({ ...fields, _xsrf: xsrf }).toString(),
  });
}

/** B's server's OAuth authorize query, as B's server itself sends an anonymous browser to the hub. */
async function bAuthorizeQuery(w: World): Promise<URLSearchParams> {
  const anonymous = new Browser(w.hub.url);
  await anonymous.navigate(serverPrefix(B, ''));
  const authorize = anonymous.visited.find((p) => p.startsWith('/hub/api/oauth2/authorize'));
  const query = new URL(authorize ?? '/', w.hub.url).searchParams;
  if (query.get('client_id') !== clientOf(w, B)) throw new Error(`B's server did not send a browser to its OAuth client: ${anonymous.visited.join(' -> ')}`);
  return query;
}

/** A code from the hub's authorize for the plain user's own server, as that user's browser obtains it. */
async function ownCode(w: World, name: string): Promise<{ code: string; redirectUri: string }> {
  const query = new URLSearchParams({ client_id: clientOf(w, name), redirect_uri: `${serverPrefix(name, '')}oauth_callback`, response_type: 'code', state: 's' });
  const res = await w.browsers[name]!.request(`/hub/api/oauth2/authorize?${query}`);
  const location = new URL(res.headers.get('location') ?? '/', w.hub.url);
  const code = location.searchParams.get('code');
  if (res.status !== 302 || !code) throw new Error(`${name} got no code for its own server: ${res.status} ${await res.text()}`);
  return { code, redirectUri: query.get('redirect_uri')! };
}

function websocketOutcome(url: string, headers: Record<string, string>): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.terminate();
      resolve({ held: false, detail: 'the websocket to B\'s kernel opened' });
    });
    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location ?? '';
      res.resume();
      ws.terminate();
      resolve({ held: (status >= 400 && status < 500) || (status === 302 && /\/hub\/(login|api\/oauth2\/authorize)/.test(location)), detail: `${status} ${location}` });
    });
    ws.on('error', (err) => resolve({ held: false, detail: `no clear refusal: ${err.message}` }));
  });
}

/** mqtt.js reports a refused subscription as a granted QoS of 128 (v3) or a reason code ≥ 0x80 (v5). */
async function mqttSubscribe(c: Credentials['mqtt'], topic: string): Promise<Outcome> {
  const client = await connectAsync(c.url, { username: c.username, password: c.password, reconnectPeriod: 0, protocolVersion: 5, connectTimeout: 5000 });
  try {
    const granted = await client.subscribeAsync(topic, { qos: 1 }).then((g) => g[0]?.qos ?? 128, (err: Error) => err.message);
    return { held: typeof granted === 'string' || granted >= 128, detail: `subscribe ${topic}: ${granted}` };
  } finally {
    await client.endAsync(true);
  }
}

/** Publishes as A to B's topic; refused when the broker says so (v5 PUBACK reason) and B's subscriber got nothing. */
async function mqttPublish(c: Credentials['mqtt'], b: Credentials['mqtt'], topic: string): Promise<Outcome> {
  const watcher: MqttClient = await connectAsync(b.url, { username: b.username, password: b.password, reconnectPeriod: 0, protocolVersion: 5, connectTimeout: 5000 });
  const client = await connectAsync(c.url, { username: c.username, password: c.password, reconnectPeriod: 0, protocolVersion: 5, connectTimeout: 5000 });
  try {
    const received: string[] = [];
    watcher.on('message', (t, payload) => received.push(`${t}: ${payload.toString()}`));
    await watcher.subscribeAsync(b.publish, { qos: 1 });
    const published = await client.publishAsync(topic, 'from A', { qos: 1 }).then(() => 'accepted', (err: Error) => `refused (${err.message})`);
    await new Promise((r) => setTimeout(r, 500));
    return { held: published !== 'accepted' && received.length === 0, detail: `publish ${topic}: ${published}; B received ${JSON.stringify(received)}` };
  } finally {
    await Promise.all([client.endAsync(true), watcher.endAsync(true)]);
  }
}

async function pgAs<T>(c: Credentials['postgres'], use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: c.url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function mongoAs<T>(url: string, use: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  try {
    return await use(client);
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** `user:password@` of one account in another's URL. */
function withAccount(url: string, username: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(username);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** Sets a password through a one-time link, as its holder would; held when refused and B's own password still works. */
async function passwordThroughLink(w: World, link: string, fields: Record<string, string>): Promise<Outcome> {
  const holder = new Browser(w.hub.url);
  const page = await holder.request(link);
  if (page.status !== 200) return pageRefusal(page);
  const stolen = 'taken-over-password-1';
  const res = await holder.request(link, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...fields, _xsrf: xsrfFromHtml(await page.text()), password: stolen, password2: stolen }).toString(),
  });
  const outcome = await pageRefusal(res);
  const stillB = (await new Browser(w.hub.url).login(B, PASSWORD)).status === 200;
  return { held: outcome.held && stillB, detail: `${outcome.detail.slice(0, 120)}; B's own password ${stillB ? 'still works' : 'no longer works'}` };
}

export function matrixRows(options: MatrixOptions): MatrixRow[] {
  const rows: MatrixRow[] = [];
  const add = (actors: readonly ActorRole[], channel: Channel, resource: string, attempt: string, run: (w: World, a: string) => Promise<Outcome>, permittedFor: readonly ActorRole[] = []) => {
    for (const actor of actors) {
      rows.push({ actor, channel, resource, attempt, expect: permittedFor.includes(actor) ? 'permitted' : 'refused', run: (w) => run(w, asActor(actor)) });
    }
  };
  const add2 = (actor: string, name: string, channel: Channel, resource: string, attempt: string, run: (w: World, a: string) => Promise<Outcome>) => {
    rows.push({ actor, channel, resource, attempt, expect: 'refused', run: (w) => run(w, name) });
  };
  const call = (w: World, a: string, method: string, path: string, body?: unknown) => api(w.hub.url, w.tokens[a]!, method, path, body);
  const refusedCall = (method: string, path: (w: World) => string, body?: (w: World, a: string) => unknown) =>
    async (w: World, a: string) => apiRefusal(await call(w, a, method, path(w), body?.(w, a)));
  const permittedOrRefused = (method: string, path: string, body?: unknown, permittedFor: readonly ActorRole[] = []) =>
    async (w: World, a: string) => {
      const res = await call(w, a, method, path, body);
      const role = ROLES.find((r) => ACTORS[r] === a)!;
      return permittedFor.includes(role) ? permittedWithoutSecrets(res, w) : apiRefusal(res);
    };
  const helpdesk: ActorRole[] = ['admin:users holder'];

  // REST API
  add(ROLES, 'REST API', 'B\'s user model', `GET /users/${B}`, permittedOrRefused('GET', `/users/${B}`, undefined, helpdesk), helpdesk);
  add(ROLES, 'REST API', 'B\'s user model', `PATCH /users/${B} {admin: true}`, refusedCall('PATCH', () => `/users/${B}`, () => ({ admin: true })));
  add(ROLES.slice(0, 3), 'REST API', 'B\'s user model', `PATCH /users/${B} {name}`, refusedCall('PATCH', () => `/users/${B}`, (_w, a) => ({ name: `${a}-owns-${B}` })));
  add(ROLES.slice(0, 3), 'REST API', 'B\'s account', `DELETE /users/${B}`, refusedCall('DELETE', () => `/users/${B}`));
  add(ROLES, 'REST API', 'B\'s default server', `POST /users/${B}/server (start)`, refusedCall('POST', () => `/users/${B}/server`));
  add(ROLES, 'REST API', 'B\'s default server', `DELETE /users/${B}/server (stop)`, refusedCall('DELETE', () => `/users/${B}/server`));
  add(ROLES, 'REST API', 'B\'s default server', `GET /users/${B}/server/progress`, refusedCall('GET', () => `/users/${B}/server/progress`));
  add(ROLES, 'REST API', 'B\'s named servers', `POST /users/${B}/servers/${B_NAMED} (start)`, refusedCall('POST', () => `/users/${B}/servers/${B_NAMED}`));
  add(ROLES, 'REST API', 'B\'s named servers', `POST /users/${B}/servers/mine (create)`, refusedCall('POST', () => `/users/${B}/servers/mine`));
  add(ROLES, 'REST API', 'B\'s named servers', `DELETE /users/${B}/servers/${B_NAMED} {remove: true}`, refusedCall('DELETE', () => `/users/${B}/servers/${B_NAMED}`, () => ({ remove: true })));
  add(ROLES, 'REST API', 'B\'s tokens', `GET /users/${B}/tokens`, refusedCall('GET', () => `/users/${B}/tokens`));
  add(ROLES, 'REST API', 'B\'s tokens', `GET /users/${B}/tokens/<id>`, refusedCall('GET', (w) => `/users/${B}/tokens/${w.bToken.id}`));
  add(ROLES, 'REST API', 'B\'s tokens', `POST /users/${B}/tokens`, refusedCall('POST', () => `/users/${B}/tokens`, () => ({ note: 'stolen' })));
  add(ROLES, 'REST API', 'B\'s tokens', `DELETE /users/${B}/tokens/<id>`, refusedCall('DELETE', (w) => `/users/${B}/tokens/${w.bToken.id}`));
  // The lease list is the helpdesk's by design (it holds no secret); revoking it would end B's sessions.
  add(ROLES, 'REST API', 'B\'s credentials', `GET /users/${B}/credentials`, permittedOrRefused('GET', `/users/${B}/credentials`, undefined, helpdesk), helpdesk);
  add(ROLES.slice(0, 3), 'REST API', 'B\'s credentials', `DELETE /users/${B}/credentials`, refusedCall('DELETE', () => `/users/${B}/credentials`));
  add(ROLES, 'REST API', 'a group B is in', `GET /groups/${GROUP_OF_B}`, refusedCall('GET', () => `/groups/${GROUP_OF_B}`));
  add(ROLES, 'REST API', 'a group B is in', `POST /groups/${GROUP_OF_B}/users (join)`, refusedCall('POST', () => `/groups/${GROUP_OF_B}/users`, (_w, a) => ({ users: [a] })));
  add(ROLES, 'REST API', 'a group B is in', `DELETE /groups/${GROUP_OF_B}/users (remove B)`, refusedCall('DELETE', () => `/groups/${GROUP_OF_B}/users`, () => ({ users: [B] })));
  add(ROLES, 'REST API', 'a group B is in', `PUT /groups/${GROUP_OF_B}/properties`, refusedCall('PUT', () => `/groups/${GROUP_OF_B}/properties`, () => ({ colour: 'red' })));
  add(ROLES, 'REST API', 'an invitation for B', `POST /users/${B}/invitation`, refusedCall('POST', () => `/users/${B}/invitation`));
  // Sharing: every actor may share their own servers (isolationRolesEnv); none may share, read or revoke B's.
  add(ROLES, 'REST API', 'B\'s shares', `POST /shares/${B}/ {user: A}`, refusedCall('POST', () => `/shares/${B}/`, (_w, a) => ({ user: a })));
  add(ROLES, 'REST API', 'B\'s shares', `POST /shares/${B}/${B_NAMED} {user: A}`, refusedCall('POST', () => `/shares/${B}/${B_NAMED}`, (_w, a) => ({ user: a })));
  add(ROLES, 'REST API', 'B\'s shares', `PATCH /shares/${B}/ {group}`, refusedCall('PATCH', () => `/shares/${B}/`, () => ({ group: GROUP_OF_B })));
  add(ROLES, 'REST API', 'B\'s shares', `DELETE /shares/${B}/`, refusedCall('DELETE', () => `/shares/${B}/`));
  add(ROLES, 'REST API', 'B\'s shares', `GET /shares/${B}`, refusedCall('GET', () => `/shares/${B}`));
  add(ROLES, 'REST API', 'B\'s shares', `GET /share-codes/${B}`, refusedCall('GET', () => `/share-codes/${B}`));
  add(ROLES, 'REST API', 'B\'s shares', `POST /share-codes/${B}/`, refusedCall('POST', () => `/share-codes/${B}/`, () => ({})));
  add(ROLES, 'REST API', 'B\'s shares', `GET /users/${B}/shared`, refusedCall('GET', () => `/users/${B}/shared`));
  add(ROLES, 'REST API', 'B\'s default server', `POST /shares/A/ {user: B, scopes: [access:servers!server=${B}/]}`,
    async (w, a) => apiRefusal(await call(w, a, 'POST', `/shares/${a}/`, { user: B, scopes: [`access:servers!server=${B}/`] })));
  add(ROLES, 'REST API', 'B\'s default server', `POST /shares/A/ {group: ${GROUP_OF_B}, scopes: [access:servers!user=${B}]}`,
    async (w, a) => apiRefusal(await call(w, a, 'POST', `/shares/${a}/`, { group: GROUP_OF_B, scopes: [`access:servers!user=${B}`] })));
  add(ROLES, 'REST API', 'B\'s activity', `POST /users/${B}/activity`,
    permittedOrRefused('POST', `/users/${B}/activity`, { last_activity: new Date().toISOString() }, helpdesk), helpdesk);

  // Pages
  add(ROLES, 'pages', 'B\'s home', 'GET /hub/home shows A\'s servers, never B\'s', async (w, a) => {
    const res = await w.browsers[a]!.request('/hub/home');
    const text = await res.text();
    const showsB = text.includes(`/hub/stop/${B}`) || text.includes(`/hub/spawn/${B}`) || text.includes(serverPrefix(B, ''));
    return { held: res.status === 200 && !showsB && text.includes(a), detail: `${res.status}${showsB ? ' showing B\'s server' : ''}` };
  });
  add(ROLES, 'pages', 'B\'s servers', `POST /hub/spawn/${B}`, async (w, a) => pageRefusal(await postAsBrowser(w.browsers[a]!, `/hub/spawn/${B}`)));
  add(ROLES, 'pages', 'B\'s servers', `POST /hub/spawn/${B}/mine`, async (w, a) => pageRefusal(await postAsBrowser(w.browsers[a]!, `/hub/spawn/${B}/mine`)));
  add(ROLES, 'pages', 'B\'s servers', `POST /hub/stop/${B}`, async (w, a) => pageRefusal(await postAsBrowser(w.browsers[a]!, `/hub/stop/${B}`)));
  add(ROLES, 'pages', 'B\'s servers', `GET /hub${serverPrefix(B, '')}`, async (w, a) => pageRefusal(await w.browsers[a]!.request(`/hub${serverPrefix(B, '')}`)));
  add(ROLES, 'pages', 'B\'s servers', `GET /hub/spawn-pending/${B}`, async (w, a) => pageRefusal(await w.browsers[a]!.request(`/hub/spawn-pending/${B}`)));
  for (const path of ['/hub/admin/users', `/hub/admin/users/${B}`, '/hub/admin/servers', '/hub/admin/leases', `/hub/admin/classes/${GROUP_OF_B}`]) {
    add(ROLES, 'pages', 'admin pages', `GET ${path}`, async (w, a) => pageRefusal(await w.browsers[a]!.request(path)));
  }
  add(ROLES, 'pages', 'admin pages', `POST /hub/admin/users/${B} (make B admin)`, async (w, a) => pageRefusal(await postAsBrowser(w.browsers[a]!, `/hub/admin/users/${B}`, { admin: 'on', name: B })));
  add(ROLES, 'pages', 'admin pages', `POST /hub/admin/users/${B}/delete`, async (w, a) => pageRefusal(await postAsBrowser(w.browsers[a]!, `/hub/admin/users/${B}/delete`)));

  if (options.servers) {
    const prefix = serverPrefix(B, '');
    // Proxy
    add(ROLES, 'proxy', 'B\'s running server', `GET ${prefix} as A's logged-in browser (through B's server's OAuth)`, async (w, a) => {
      const browser = w.browsers[a]!;
      const from = browser.visited.length;
      const outcome = await pageRefusal(await browser.navigate(prefix));
      const hops = browser.visited.slice(from);
      const viaOAuth = hops.some((p) => p.startsWith('/hub/api/oauth2/authorize'));
      return { held: outcome.held && viaOAuth, detail: `${hops.join(' -> ')}: ${outcome.detail}` };
    });
    add(ROLES, 'proxy', 'B\'s running server', `GET ${prefix}api/status with A's cookies`, async (w, a) =>
      serverRefusal(await w.browsers[a]!.request(`${prefix}api/status`)));
    add(ROLES, 'proxy', 'B\'s running server', `GET ${prefix}api/status with A's token`, async (w, a) =>
      serverRefusal(await fetch(`${w.hub.url}${prefix}api/status`, { redirect: 'manual', headers: { authorization: `token ${w.tokens[a]}` } })));
    add(ROLES, 'proxy', 'B\'s files', `GET ${prefix}api/contents with A's token`, async (w, a) =>
      serverRefusal(await fetch(`${w.hub.url}${prefix}api/contents`, { redirect: 'manual', headers: { authorization: `token ${w.tokens[a]}` } })));
    add(ROLES, 'proxy', 'B\'s kernel', 'websocket to B\'s kernel with A\'s token', async (w, a) =>
      websocketOutcome(`${w.hub.url.replace('http', 'ws')}${prefix}api/kernels/${w.servers!.bKernel}/channels`, { authorization: `token ${w.tokens[a]}` }));
    add(ROLES, 'proxy', 'B\'s kernel', 'websocket to B\'s kernel with A\'s cookies', async (w, a) => {
      const path = `${prefix}api/kernels/${w.servers!.bKernel}/channels`;
      return websocketOutcome(`${w.hub.url.replace('http', 'ws')}${path}`, { cookie: w.browsers[a]!.cookieHeader(path) || w.browsers[a]!.cookieHeader('/hub/') });
    });
    const plain: ActorRole[] = ['plain user'];
    add(plain, 'proxy', 'B\'s running server', 'A\'s server\'s own API token at B\'s server', async (w) =>
      serverRefusal(await fetch(`${w.hub.url}${prefix}api/status`, { redirect: 'manual', headers: { authorization: `token ${w.servers!.aSecrets.apiToken}` } })));
    add(plain, 'proxy', 'B\'s running server', 'A\'s server login cookie replayed under B\'s server\'s cookie name', async (w, a) => {
      const own = w.browsers[a]!;
      await own.navigate(serverPrefix(a, ''));
      const cookie = own.cookie(clientOf(w, a), serverPrefix(a, ''));
      if (!cookie) return { held: false, detail: `A has no login cookie for A's own server (visited ${own.visited.slice(-5).join(' -> ')})` };
      return serverRefusal(await fetch(`${w.hub.url}${prefix}api/status`, { redirect: 'manual', headers: { cookie: `${clientOf(w, B)}=${cookie}` } }));
    });
    add(plain, 'REST API', 'B\'s user model', 'A\'s server\'s own API token: GET and stop B', async (w) => {
      const token = w.servers!.aSecrets.apiToken;
      const read = apiRefusal(await api(w.hub.url, token, 'GET', `/users/${B}`));
      const stop = apiRefusal(await api(w.hub.url, token, 'DELETE', `/users/${B}/server`));
      return { held: read.held && stop.held, detail: `GET ${read.detail}; DELETE ${stop.detail}` };
    });

    // OAuth
    add(ROLES, 'OAuth', 'B\'s server\'s OAuth client', 'GET /hub/api/oauth2/authorize for B\'s client with A\'s cookie', async (w, a) => {
      const res = await w.browsers[a]!.request(`/hub/api/oauth2/authorize?${await bAuthorizeQuery(w)}`);
      const outcome = await pageRefusal(res);
      const code = new URL(res.headers.get('location') ?? '/', w.hub.url).searchParams.get('code');
      return { held: outcome.held && !code, detail: outcome.detail };
    });
    add(ROLES, 'OAuth', 'B\'s server\'s OAuth client', 'POST /hub/api/oauth2/authorize (consent) for B\'s client with A\'s XSRF', async (w, a) => {
      const query = await bAuthorizeQuery(w);
      const res = await postAsBrowser(w.browsers[a]!, '/hub/api/oauth2/authorize', Object.fromEntries(query));
      const outcome = await pageRefusal(res);
      const code = new URL(res.headers.get('location') ?? '/', w.hub.url).searchParams.get('code');
      return { held: outcome.held && !code, detail: outcome.detail };
    });
    add(plain, 'OAuth', 'B\'s server\'s OAuth client', 'A\'s code and A\'s server secret traded as B\'s client', async (w, a) => {
      const { code } = await ownCode(w, a);
      const res = await fetch(`${w.hub.url}/hub/api/oauth2/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, client_id: clientOf(w, B), client_secret: w.servers!.aSecrets.apiToken, redirect_uri: `${prefix}oauth_callback` }).toString(),
      });
      return { held: res.status >= 400 && res.status < 500, detail: `${res.status} ${(await res.text()).slice(0, 200)}` };
    });
    add(plain, 'OAuth', 'B\'s running server', 'A\'s OAuth access token (from A\'s own server\'s flow) at B\'s server and at B\'s API', async (w, a) => {
      const { code, redirectUri } = await ownCode(w, a);
      const traded = await fetch(`${w.hub.url}/hub/api/oauth2/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, client_id: clientOf(w, a), client_secret: w.servers!.aSecrets.apiToken, redirect_uri: redirectUri }).toString(),
      });
      if (traded.status !== 200) return { held: false, detail: `A could not complete A's own flow: ${traded.status} ${await traded.text()}` };
      const { access_token: token } = (await traded.json()) as { access_token: string };
      const atServer = await serverRefusal(await fetch(`${w.hub.url}${prefix}api/status`, { redirect: 'manual', headers: { authorization: `token ${token}` } }));
      const atApi = apiRefusal(await api(w.hub.url, token, 'GET', `/users/${B}`));
      return { held: atServer.held && atApi.held, detail: `server: ${atServer.detail}; API: ${atApi.detail}` };
    });
  }

  if (options.servers && options.leases) {
    const plain: ActorRole[] = ['plain user'];
    const creds = (w: World) => ({ a: w.servers!.aSecrets.credentials!, b: w.servers!.bSecrets.credentials! });
    add(plain, 'leases', 'B\'s MQTT topics', 'subscribe to B\'s publish topics with A\'s lease', async (w) => {
      const { a, b } = creds(w);
      const outcomes = await Promise.all(b.mqtt.publish.map((t) => mqttSubscribe(a.mqtt, t)));
      return { held: outcomes.every((o) => o.held), detail: outcomes.map((o) => o.detail).join('; ') };
    });
    add(plain, 'leases', 'B\'s MQTT topics', 'publish to B\'s topic with A\'s lease', async (w) => {
      const { a, b } = creds(w);
      return mqttPublish(a.mqtt, b.mqtt, b.mqtt.publish[0]!.replace(/#$/, 'from-a'));
    });
    add(plain, 'leases', 'B\'s MQTT account', 'log in as B\'s MQTT account with A\'s password', async (w) => {
      const { a, b } = creds(w);
      return serviceRefusal('MQTT login', async () => {
        const client = await connectAsync(b.mqtt.url, { username: b.mqtt.username, password: a.mqtt.password, reconnectPeriod: 0, protocolVersion: 5, connectTimeout: 5000 });
        await client.endAsync(true);
        return 'connected';
      });
    });
    add(plain, 'leases', 'B\'s PostgreSQL schema', 'SELECT from B\'s table with A\'s lease', async (w) => {
      const { a, b } = creds(w);
      return serviceRefusal('SELECT', () => pgAs(a.postgres, (c) => c.query(`select * from ${b.postgres.schema}.notes`).then((r) => r.rows)));
    });
    add(plain, 'leases', 'B\'s PostgreSQL schema', 'CREATE TABLE and INSERT in B\'s schema with A\'s lease', async (w) => {
      const { a, b } = creds(w);
      const create = await serviceRefusal('CREATE TABLE', () => pgAs(a.postgres, (c) => c.query(`create table ${b.postgres.schema}.planted (x int)`)));
      const insert = await serviceRefusal('INSERT', () => pgAs(a.postgres, (c) => c.query(`insert into ${b.postgres.schema}.notes values ('from A')`)));
      return { held: create.held && insert.held, detail: `${create.detail}; ${insert.detail}` };
    });
    add(plain, 'leases', 'B\'s PostgreSQL role', 'SET ROLE to B\'s account with A\'s lease', async (w) => {
      const { a, b } = creds(w);
      return serviceRefusal('SET ROLE', () => pgAs(a.postgres, (c) => c.query(`set role "${b.postgres.username}"`)));
    });
    add(plain, 'leases', 'B\'s PostgreSQL role', 'log in as B\'s account with A\'s password', async (w) => {
      const { a, b } = creds(w);
      return serviceRefusal('login', () => pgAs({ ...b.postgres, url: withAccount(b.postgres.url, b.postgres.username, a.postgres.password) }, (c) => c.query('select 1')));
    });
    add(plain, 'leases', 'B\'s Mongo database', 'read B\'s database with A\'s lease', async (w) => {
      const { a, b } = creds(w);
      return serviceRefusal('find', () => mongoAs(a.mongodb.url, (c) => c.db(b.mongodb.database).collection('notes').find().toArray()));
    });
    add(plain, 'leases', 'B\'s Mongo database', 'write B\'s database with A\'s lease', async (w) => {
      const { a, b } = creds(w);
      return serviceRefusal('insertOne', () => mongoAs(a.mongodb.url, (c) => c.db(b.mongodb.database).collection('notes').insertOne({ text: 'from A' })));
    });
    add(plain, 'leases', 'B\'s Mongo account', 'log in as B\'s Mongo account with A\'s password', async (w) => {
      const { a, b } = creds(w);
      return serviceRefusal('login', () => mongoAs(withAccount(b.mongodb.url, b.mongodb.username, a.mongodb.password), (c) => c.db(b.mongodb.database).command({ ping: 1 })));
    });
  }

  // Class escalations: what a class manager may put into a class B is in, or pull B into.
  const teacherOfB: ActorRole[] = ['teacher of B\'s class'];
  // The audit log: B's teacher reads the records about B (read:audit!group=<B's class>), without a secret of B's;
  // nobody else gets one: refused, or a list narrowed to what their scope covers.
  const auditAboutB = async (w: World, a: string): Promise<Outcome> => {
    const res = await call(w, a, 'GET', `/audit?user=${B}`);
    const items = Array.isArray(res.body) ? (res.body as Array<{ actor: { name: string | null }; target: { name: string | null } | null }>) : [];
    const aboutB = items.filter((i) => i.actor.name === B || i.target?.name === B).length;
    if (ROLES.find((r) => ACTORS[r] === a) === teacherOfB[0]) {
      const permitted = permittedWithoutSecrets(res, w);
      return { held: permitted.held && aboutB > 0, detail: `${aboutB} record(s) about B; ${permitted.detail}` };
    }
    return { held: (res.status >= 400 && res.status < 500) || (res.status === 200 && aboutB === 0), detail: `${res.status}, ${aboutB} record(s) about B` };
  };
  add(ROLES, 'audit log', 'B\'s audit records', `GET /audit?user=${B}`, auditAboutB, teacherOfB);
  // Usage: B's teacher reads B's and the class's usage (read:usage!group=<B's class>); nobody else does. Quotas bind
  // everyone, so not even a teacher holding admin:quotas filtered to their class may set or lift one.
  const readUsage = (path: string) => async (w: World, a: string): Promise<Outcome> => {
    const res = await call(w, a, 'GET', path);
    return ROLES.find((r) => ACTORS[r] === a) === teacherOfB[0] ? permittedWithoutSecrets(res, w) : apiRefusal(res);
  };
  add(ROLES, 'usage and quotas', 'B\'s usage', `GET /users/${B}/usage`, readUsage(`/users/${B}/usage`), teacherOfB);
  add(ROLES, 'usage and quotas', 'B\'s class\'s usage', `GET /groups/${CLASS_OF_B}/usage`, readUsage(`/groups/${CLASS_OF_B}/usage`), teacherOfB);
  add(ROLES, 'usage and quotas', 'B\'s usage in the list', 'GET /usage', async (w, a) => {
    const res = await call(w, a, 'GET', '/usage');
    const listsB = Array.isArray(res.body) && (res.body as Array<{ name: string }>).some((u) => u.name === B);
    if (ROLES.find((r) => ACTORS[r] === a) === teacherOfB[0]) return { held: res.status === 200 && listsB, detail: `${res.status}, lists B: ${listsB}` };
    return { held: (res.status >= 400 && res.status < 500) || (res.status === 200 && !listsB), detail: `${res.status}, lists B: ${listsB}` };
  }, teacherOfB);
  add(ROLES, 'usage and quotas', 'B\'s quota', `PUT /quotas/users/${B} (a quota that stops B)`, refusedCall('PUT', () => `/quotas/users/${B}`, () => ({ window_hours: 1, server_hours: 0 })));
  add(ROLES, 'usage and quotas', 'B\'s class\'s quota', `PUT /quotas/groups/${CLASS_OF_B}`, refusedCall('PUT', () => `/quotas/groups/${CLASS_OF_B}`, () => ({ window_hours: 1, max_servers: 0 })));
  add(ROLES, 'usage and quotas', 'A\'s own quota', 'PUT /quotas/users/<A> (lifting one\'s own limit)', async (w, a) =>
    apiRefusal(await call(w, a, 'PUT', `/quotas/users/${a}`, { window_hours: 1, server_hours: 1e9 })));
  const putProperties = (group: string, properties: (w: World) => Record<string, unknown>) =>
    async (w: World, a: string) => apiRefusal(await call(w, a, 'PUT', `/groups/${group}/properties`, properties(w)));
  const bLease = (w: World) => w.servers!.bSecrets.credentials!;
  const escalations: Array<[string, (w: World) => Record<string, unknown>]> = [
    ['shared_volume: B\'s home volume', (w) => ({ shared_volume: w.bHomeVolume })],
    ['a default profile with an image outside allowed_images', () => ({
      profiles: [{ slug: 'own', display_name: 'Own', image: 'attacker/notebook:latest' }], default_profile: 'own',
    })],
    ['a profile with cpu_limit 1024 and 1 TiB of memory', () => ({
      profiles: [{ slug: 'big', display_name: 'Big', cpu_limit: 1024, mem_limit: '1024G' }], default_profile: 'big',
    })],
    ['credentials: MQTT subscribe #', () => ({ credentials: { mqtt: { subscribe: ['#'] } } })],
    ...(options.servers && options.leases ? [
      ['credentials: PostgreSQL read_schemas with B\'s schema', (w: World) => ({ credentials: { postgres: { read_schemas: ['shared', bLease(w).postgres.schema] } } })],
      ['credentials: MQTT publish to B\'s topics', (w: World) => ({ credentials: { mqtt: { publish: bLease(w).mqtt.publish } } })],
      ['credentials: Mongo read_databases admin and B\'s database', (w: World) => ({ credentials: { mongodb: { read_databases: ['admin', bLease(w).mongodb.database] } } })],
    ] as Array<[string, (w: World) => Record<string, unknown>]> : []),
  ];
  for (const [what, properties] of escalations) {
    add(teacherOfB, 'class properties', `the class B is in (${CLASS_OF_B})`, `PUT properties with ${what}`, putProperties(CLASS_OF_B, properties));
  }
  add(teacherOfB, 'class properties', `the class B is in (${CLASS_OF_B})`, 'POST /groups/…/users adding an admin', async (w, a) =>
    apiRefusal(await call(w, a, 'POST', `/groups/${CLASS_OF_B}/users`, { users: ['admin'] })));
  add(['teacher of another class'], 'class properties', `a class B is not in (${OTHER_CLASS})`, 'POST /groups/…/users pulling B in', async (w, a) =>
    apiRefusal(await call(w, a, 'POST', `/groups/${OTHER_CLASS}/users`, { users: [B] })));
  add(['teacher of another class'], 'class properties', `a class B is not in (${OTHER_CLASS})`, 'PUT properties with shared_volume: B\'s home volume', putProperties(OTHER_CLASS, (w) => ({ shared_volume: w.bHomeVolume })));
  add(['teacher of another class'], 'class properties', `the class B is in (${CLASS_OF_B})`, 'PUT properties', putProperties(CLASS_OF_B, () => ({ colour: 'red' })));
  if (options.servers && options.leases) {
    // The whole escalation of the audit: grant the class B's schema and topics, join it, start, use the lease.
    // MongoDB is left out: the lease rows above already show whether the Mongo server enforces anything.
    add(teacherOfB, 'leases', 'B\'s PostgreSQL schema and MQTT topics', 'teacher\'s own lease after granting the class B\'s schema and topics and joining it', async (w, a) => {
      const b = bLease(w);
      const put = await call(w, a, 'PUT', `/groups/${CLASS_OF_B}/properties`, {
        credentials: { postgres: { read_schemas: ['shared', b.postgres.schema] }, mqtt: { subscribe: b.mqtt.publish } },
      });
      const join = await call(w, a, 'POST', `/groups/${CLASS_OF_B}/users`, { users: [a] });
      await startAndWait(w.hub, w.admin, a);
      try {
        const own = (await w.secretsOf!(a)).credentials!;
        const outcomes = [
          await serviceRefusal('SELECT', () => pgAs(own.postgres, (c) => c.query(`select * from ${b.postgres.schema}.notes`).then((r) => r.rows))),
          ...(await Promise.all(b.mqtt.publish.map((t) => mqttSubscribe(own.mqtt, t)))),
        ];
        return { held: outcomes.every((o) => o.held), detail: `PUT ${put.status}, join ${join.status}; ${outcomes.map((o) => o.detail).join('; ')}` };
      } finally {
        expect((await api(w.hub.url, w.admin, 'DELETE', `/users/${a}/server`)).status).toBeLessThan(300);
      }
    });
  }
  if (options.servers && options.volumes) {
    add(teacherOfB, 'class properties', 'B\'s home volume', 'teacher\'s own server after naming B\'s home as the class\'s shared_volume and joining it', async (w, a) => {
      const put = await call(w, a, 'PUT', `/groups/${CLASS_OF_B}/properties`, { shared_volume: w.bHomeVolume });
      const join = await call(w, a, 'POST', `/groups/${CLASS_OF_B}/users`, { users: [a] });
      await startAndWait(w.hub, w.admin, a);
      try {
        const mounts = await w.mountsOf!(a);
        return { held: !mounts.includes(w.bHomeVolume), detail: `PUT ${put.status}, join ${join.status}; the teacher's server mounts ${mounts.join(', ')}` };
      } finally {
        expect((await api(w.hub.url, w.admin, 'DELETE', `/users/${a}/server`)).status).toBeLessThan(300);
      }
    });
  }
  if (options.servers && options.leases) {
    add2('user named like another\'s identifiers (item 4)', SLUG_NAMED, 'leases', `${DOTTED}'s PostgreSQL schema`, `SELECT, INSERT and CREATE TABLE in ${DOTTED}'s schema with the lease of ${SLUG_NAMED}`, async (w) => {
      const [own, target] = [(await w.secretsOf!(SLUG_NAMED)).credentials!, (await w.secretsOf!(DOTTED)).credentials!];
      const select = await serviceRefusal('SELECT', () => pgAs(own.postgres, (c) => c.query(`select * from ${target.postgres.schema}.notes`).then((r) => r.rows)));
      const insert = await serviceRefusal('INSERT', () => pgAs(own.postgres, (c) => c.query(`insert into ${target.postgres.schema}.notes values ('from ${SLUG_NAMED}')`)));
      const create = await serviceRefusal('CREATE TABLE', () => pgAs(own.postgres, (c) => c.query(`create table ${target.postgres.schema}.planted (x int)`)));
      return {
        held: select.held && insert.held && create.held,
        detail: `schemas ${own.postgres.schema} and ${target.postgres.schema}; ${select.detail}; ${insert.detail}; ${create.detail}`,
      };
    });
  }
  if (options.servers) {
    add2('user named <B>-<B\'s named server> (item 6)', CLIENT_NAMED, 'OAuth', `B's named server ${B_NAMED}'s OAuth client`, `${CLIENT_NAMED} starts and stops its own server; B still logs in to ${B_NAMED} and stays logged in`, async (w) => {
      const named = serverPrefix(B, B_NAMED);
      const browser = w.browsers[B]!;
      await browser.navigate(named);
      const before = await browser.request(`${named}api/status`);
      if (before.status !== 200) return { held: false, detail: `B could not use B's own named server before: ${before.status}` };
      await startAndWait(w.hub, w.admin, CLIENT_NAMED);
      const fresh = new Browser(w.hub.url);
      await fresh.login(B, PASSWORD);
      await fresh.navigate(named);
      const whileRunning = await fresh.request(`${named}api/status`);
      const intruder = new Browser(w.hub.url);
      await intruder.login(CLIENT_NAMED, PASSWORD);
      const intruded = await pageRefusal(await intruder.navigate(named));
      expect((await api(w.hub.url, w.admin, 'DELETE', `/users/${CLIENT_NAMED}/server`)).status).toBeLessThan(300);
      const after = await browser.request(`${named}api/status`);
      return {
        held: whileRunning.status === 200 && after.status === 200 && intruded.held,
        detail: `B's new login while ${CLIENT_NAMED} runs: ${whileRunning.status} (${fresh.visited.slice(-4).join(' -> ')}); `
          + `${CLIENT_NAMED} at B's ${B_NAMED}: ${intruded.detail.slice(0, 120)}; B's session after it stopped: ${after.status}`,
      };
    });
  }
  // Last: when they are not refused, they replace B's password.
  add2('holder of the first-start setup link (item 3)', '', 'pages', 'B\'s account', `POST the setup link with username=${B} once admins exist`, async (w) => {
    const link = await w.hub.setupLink();
    return link ? passwordThroughLink(w, new URL(link).pathname + new URL(link).search, { username: B }) : { held: false, detail: 'the hub printed no setup link at its first start' };
  });
  add2('holder of an invitation for B made before B\'s password was set', '', 'pages', 'B\'s account', 'POST the invitation link with a new password', async (w) =>
    passwordThroughLink(w, w.bStaleInvitation, {}));
  return rows;
}
