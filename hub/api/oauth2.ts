import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { OAuthClientRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { requestedOAuthScopes, resolveRequestedScopes, checkScope } from '../auth/scopes.js';
import { secretDigest, verifyTokenHash } from '../auth/tokens.js';
import { renderPage } from '../pages/render.js';
import { errorPage } from '../pages/errors.js';

const CODE_TTL_MS = 5 * 60_000;
const PKCE_VALUE = /^[A-Za-z0-9._~-]{43,128}$/;

const authorizeQuery = z.object({
  client_id: z.string().min(1).max(300),
  redirect_uri: z.string().min(1).max(2000),
  response_type: z.literal('code'),
  state: z.string().max(2000).optional(),
  scope: z.string().max(4000).optional(),
  code_challenge: z.string().regex(PKCE_VALUE, 'expected 43–128 characters of A–Z a–z 0–9 - . _ ~').optional(),
  // Only S256: `plain` would hand the verifier to whoever sees the authorize URL.
  code_challenge_method: z.literal('S256', 'only S256 is supported').optional(),
}).refine((q) => q.code_challenge_method === undefined || q.code_challenge !== undefined, { message: 'code_challenge_method without code_challenge', path: ['code_challenge'] });

const tokenBody = z.object({
  grant_type: z.string().max(100),
  code: z.string().max(500).optional(),
  redirect_uri: z.string().max(2000).optional(),
  client_id: z.string().max(300).optional(),
  client_secret: z.string().max(500).optional(),
  code_verifier: z.string().max(200).optional(),
});

/**
 * The OAuth2 provider jupyterhub-singleuser logs users in with (authorization-code grant, JupyterHub's contract):
 * `/authorize` needs a hub login and redirects back with a single-use code; `/token` trades it for an access token.
 */
export function oauth2Router(ctx: HubContext): Router {
  const router = Router();
  const { store, authz, tokens } = ctx;

  async function clientFor(query: z.infer<typeof authorizeQuery>): Promise<OAuthClientRow> {
    const client = await store.oauth.client(query.client_id);
    if (!client) throw new HttpError(400, 'Unknown OAuth client');
    if (client.redirect_uri !== query.redirect_uri) throw new HttpError(400, 'redirect_uri does not match the registered one');
    return client;
  }

  /**
   * Logged-in user and the scopes the code will carry; 403 when the user may not use the client's target (a server,
   * or a service). `confirm`: whether to ask first, as for another user's server or a service not marked trusted.
   */
  async function grant(req: Request, res: Response, query: z.infer<typeof authorizeQuery>) {
    const requester = await authz.fromSession(req);
    if (!requester?.user) {
      res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`);
      return null;
    }
    const client = await clientFor(query);
    const allowed = JSON.parse(client.allowed_scopes) as string[];
    const access = allowed.filter((s) => s.startsWith('access:'));
    const target = clientTarget(access[0]);
    if (!target || checkScope(requester.scopes, [target.scope], target.resource, requester.groupsOf) !== 'allowed') {
      const what = target?.kind === 'service' ? `the service ${target.name}` : 'this server';
      throw new HttpError(403, `${requester.name} is not allowed to access ${what}. Your own servers are on your home page, /hub/home.`);
    }
    const owner = { kind: 'user' as const, name: requester.name };
    const requested = requestedOAuthScopes(query.scope);
    const scopes = requested.size ? [...resolveRequestedScopes(requested, allowed, owner, requester.groupsOf).allowed] : allowed;
    const confirm = target.kind === 'server'
      ? !target.name.startsWith(`${requester.name}/`)
      : !ctx.config.services.some((s) => s.name === target.name && s.oauth_no_confirm);
    return { requester, client, scopes: [...new Set([...scopes, ...access])], confirm, target };
  }

  async function issueCode(res: Response, g: NonNullable<Awaited<ReturnType<typeof grant>>>, query: z.infer<typeof authorizeQuery>) {
    const code = randomBytes(32).toString('base64url');
    await store.oauth.deleteExpiredCodes();
    await store.oauth.createCode({
      code_hash: secretDigest(code), client_id: g.client.identifier, user_id: g.requester.user!.id, scopes: JSON.stringify(g.scopes),
      session_id: g.requester.session?.id ?? null, redirect_uri: query.redirect_uri,
      expires_at: new Date(Date.now() + CODE_TTL_MS).toISOString(), code_challenge: query.code_challenge ?? null,
    });
    const target = new URL(query.redirect_uri, 'http://placeholder');
    target.searchParams.set('code', code);
    if (query.state !== undefined) target.searchParams.set('state', query.state);
    const location = query.redirect_uri.startsWith('/') ? `${target.pathname}${target.search}` : target.toString();
    res.redirect(302, location);
  }

  router.get('/oauth2/authorize', refusalsAsPages(async (req, res) => {
    const query = parseOAuth(authorizeQuery, req.query);
    const g = await grant(req, res, query);
    if (!g) return;
    // Another user's server (an admin, or a share) or a service needs an explicit yes, so a link alone cannot log
    // someone in there.
    if (g.confirm) {
      const xsrf = ctx.xsrf.tokenFor(req, res, g.requester.session!.id);
      res.status(200).send(renderPage('oauth-confirm.njk', {
        user: g.requester.user, xsrf, target: g.target, client: g.client.description, query,
        extra: g.scopes.filter((scope) => !scope.startsWith('access:')),
      }));
      return;
    }
    await issueCode(res, g, query);
  }));

  router.post('/oauth2/authorize', refusalsAsPages(async (req, res) => {
    const query = parseOAuth(authorizeQuery, req.body);
    const session = await ctx.sessions.current(req);
    if (session && !ctx.xsrf.check(req, session.session.id)) throw new HttpError(403, "'_xsrf' argument missing or invalid");
    const g = await grant(req, res, query);
    if (!g) return;
    await issueCode(res, g, query);
  }));

  router.post('/oauth2/token', async (req, res) => {
    const body = parseOAuth(tokenBody, req.body ?? {});
    const basic = basicCredentials(req);
    const clientId = basic?.id ?? body.client_id;
    const secret = basic?.secret ?? body.client_secret;
    if (body.grant_type !== 'authorization_code') return oauthError(res, 400, 'unsupported_grant_type', 'only authorization_code is supported');
    if (!clientId || !secret || !body.code) return oauthError(res, 400, 'invalid_request', 'client_id, client_secret and code are required');
    const client = await store.oauth.client(clientId);
    if (!client || !verifyTokenHash(secret, client.secret_hash)) return oauthError(res, 401, 'invalid_client', 'client authentication failed');
    const code = await store.oauth.consumeCode(secretDigest(body.code));
    if (!code || code.client_id !== client.identifier) return oauthError(res, 400, 'invalid_grant', 'the code is unknown, expired or already used');
    if (body.redirect_uri !== undefined && body.redirect_uri !== code.redirect_uri) return oauthError(res, 400, 'invalid_grant', 'redirect_uri does not match');
    // The code is spent either way: a failed proof must not leave it for another try.
    if (code.code_challenge !== null && !pkceProves(body.code_verifier, code.code_challenge)) {
      return oauthError(res, 400, 'invalid_grant', 'code_verifier missing or does not match the code_challenge');
    }
    const expiresIn = ctx.config.oauth_token_expires_in;
    const scopes = JSON.parse(code.scopes) as string[];
    const { token } = await tokens.issue({
      owner: { userId: code.user_id }, scopes, note: `OAuth token for ${client.description || client.identifier}`,
      expiresIn, sessionId: code.session_id, oauthClientId: client.identifier,
    });
    res.set('Cache-Control', 'no-store').json({ access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope: scopes.join(' ') });
  });

  return router;
}

/** RFC 7636 S256: base64url(sha256(verifier)) equals the challenge, compared in constant time. */
function pkceProves(verifier: string | undefined, challenge: string): boolean {
  if (verifier === undefined || !PKCE_VALUE.test(verifier)) return false;
  const computed = Buffer.from(createHash('sha256').update(verifier).digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

/**
 * Browsers are sent to the authorize endpoint (by a server's login redirect), so a refusal there, such as another
 * user's server, is a page a person can read; API clients still get `{status, message}`.
 */
function refusalsAsPages(handler: (req: Request, res: Response) => Promise<void>) {
  return async (req: Request, res: Response) => {
    try {
      await handler(req, res);
    } catch (err) {
      if (!(err instanceof HttpError) || err.status >= 500 || req.accepts(['json', 'html']) !== 'html') throw err;
      res.status(err.status).send(errorPage(err.status, err.message));
    }
  };
}

function parseOAuth<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new HttpError(400, `Invalid OAuth request: ${issue.path.join('.') || 'parameters'}: ${issue.message}`);
  }
  return result.data;
}

/** What an OAuth client's access scope opens: a server `"user/name"` or a service. */
function clientTarget(access: string | undefined) {
  const server = access?.match(/^access:servers!server=(.+)$/)?.[1];
  if (server) return { kind: 'server' as const, name: server, scope: 'access:servers', resource: { server } };
  const service = access?.match(/^access:services!service=(.+)$/)?.[1];
  if (service) return { kind: 'service' as const, name: service, scope: 'access:services', resource: { service } };
  return null;
}

function basicCredentials(req: Request): { id: string; secret: string } | null {
  const header = req.get('authorization');
  if (!header?.toLowerCase().startsWith('basic ')) return null;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  try {
    return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
  } catch {
    return null;
  }
}

/** RFC 6749 §5.2 errors, which OAuth clients (jupyterhub-singleuser included) expect from the token endpoint. */
function oauthError(res: Response, status: number, error: string, description: string): void {
  res.status(status).set('Cache-Control', 'no-store').json({ error, error_description: description, status, message: description });
}
