import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type ClientMetadata } from 'oidc-provider';
import { Browser } from './hub.js';

export const CLIENT_ID = 'labhub';
export const CLIENT_SECRET = 'labhub-client-secret';
export const OTHER_CLIENT_ID = 'other-app';
export const OTHER_CLIENT_SECRET = 'other-app-secret';

export type Accounts = Record<string, Record<string, unknown>>;

/**
 * panva's oidc-provider (an OpenID-certified OP) in the test process. Its development login form takes any
 * password; the login name is the account id, whose claims come from `accounts`. PKCE is required.
 */
export class TestProvider {
  private server: Server | null = null;
  private front: Server | null = null;
  /**
   * When set, the front rewrites token requests to authenticate as this client: the provider then answers with
   * genuine, correctly signed tokens issued to another client, as a compromised or confused token endpoint would.
   */
  tokenRequestsAs: { clientId: string; secret: string } | null = null;

  /** `host`: where the issuer listens (default loopback; a node's address for a hub in a pod to reach it). */
  constructor(readonly port: number, private readonly accounts: Accounts, private readonly host = '127.0.0.1') {}

  get issuer(): string {
    return `http://${this.host}:${this.port}`;
  }

  start(hubUrl: string): Promise<void> {
    const client = (clientId: string, secret: string): ClientMetadata => ({
      client_id: clientId, client_secret: secret, redirect_uris: [`${hubUrl}/hub/oauth_callback`],
      post_logout_redirect_uris: [`${hubUrl}/hub/login`],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    });
    const provider = new Provider(this.issuer, {
      clients: [client(CLIENT_ID, CLIENT_SECRET), client(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)],
      claims: { openid: ['sub'], profile: ['preferred_username', 'name', 'picture'], email: ['email', 'email_verified'], groups: ['groups'] },
      scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
      findAccount: (_ctx, id) => {
        const claims = this.accounts[id];
        return claims ? { accountId: id, claims: () => ({ sub: id, ...claims }) } : undefined;
      },
      issueRefreshToken: () => true,
      pkce: { required: () => true },
      cookies: { keys: ['test-provider-cookie-key'] },
      features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
      ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, RefreshToken: 86_400, Grant: 86_400, Interaction: 600, Session: 86_400 },
    });
    // The provider listens on a private port behind a pass-through front on the issuer's port.
    return new Promise((resolve) => {
      this.server = provider.listen(0, '127.0.0.1', () => {
        const backend = (this.server!.address() as AddressInfo).port;
        this.front = createServer((req, res) => this.forward(backend, req, res));
        this.front.listen(this.port, this.host, () => resolve());
      });
    });
  }

  private forward(backend: number, req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (this.tokenRequestsAs && req.method === 'POST' && req.url === '/token') {
        const form = new URLSearchParams(body.toString());
        form.set('client_id', this.tokenRequestsAs.clientId);
        form.set('client_secret', this.tokenRequestsAs.secret);
        body = Buffer.from(form.toString());
      }
      const upstream = request({ host: '127.0.0.1', port: backend, method: req.method, path: req.url, headers: { ...req.headers, 'content-length': String(body.length) } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  }

  async stop(): Promise<void> {
    for (const server of [this.front, this.server]) {
      if (!server) continue;
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }
}

/** The hidden and named fields of the first form in a page, and its action. */
function firstForm(html: string): { action: string; fields: Record<string, string> } | null {
  const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
  if (!form) return null;
  const fields: Record<string, string> = {};
  for (const input of form[2]!.matchAll(/<input[^>]*>/g)) {
    const name = /name="([^"]+)"/.exec(input[0])?.[1];
    if (name) fields[name] = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
  }
  return { action: form[1]!.replace(/&amp;/g, '&'), fields };
}

/**
 * A browser across the hub and the provider: one cookie jar per origin, redirects followed across them, the
 * provider's login and consent forms filled in. `stopAt` returns true for a URL the test wants to handle itself.
 */
export class TwoSiteBrowser {
  readonly hub: Browser;
  private readonly idp: Browser;
  readonly visited: URL[] = [];

  constructor(private readonly hubUrl: string, private readonly issuer: string) {
    this.hub = new Browser(hubUrl);
    this.idp = new Browser(issuer);
  }

  private site(url: URL): Browser {
    if (url.origin === new URL(this.hubUrl).origin) return this.hub;
    if (url.origin === new URL(this.issuer).origin) return this.idp;
    throw new Error(`left the two sites for ${url.href}`);
  }

  /** Follows redirects and provider forms from `start`, logging in as `login`; returns the last response and URL. */
  async go(start: string, login: string, stopAt: (url: URL) => boolean = () => false): Promise<{ res: Response; url: URL }> {
    let url = new URL(start, this.hubUrl);
    let init: { method?: string; headers?: Record<string, string>; body?: string } = {};
    for (let hop = 0; hop < 30; hop++) {
      this.visited.push(url);
      if (stopAt(url)) return { res: new Response(null, { status: 204 }), url };
      const res = await this.site(url).request(url.pathname + url.search, { ...init, headers: { 'sec-fetch-mode': 'navigate', ...init.headers } });
      init = {};
      const location = res.headers.get('location');
      if ([301, 302, 303, 307].includes(res.status) && location) {
        await res.body?.cancel();
        url = new URL(location, url);
        continue;
      }
      if (url.origin !== new URL(this.issuer).origin || res.status !== 200) return { res, url };
      const form = firstForm(await res.text());
      if (!form) return { res, url };
      if ('login' in form.fields) Object.assign(form.fields, { login, password: 'any-password' });
      url = new URL(form.action, url);
      init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form.fields).toString() };
    }
    throw new Error('too many hops');
  }
}
