import { Router, type Request, type Response } from 'express';
import type { HubContext } from '../context.js';
import type { UserRow } from '../db/schema.js';
import { boundedName } from '../log.js';
import { validateNextUrl } from '../auth/next-url.js';
import { hashPassword, passwordRejection } from '../auth/passwords.js';
import { normalizeUsername, validateUsername } from '../auth/usernames.js';
import { renderPage } from './render.js';
import { openLink, redeemLink, type LinkTarget } from '../auth/one-time-links.js';
import { serialize as serializeCookie } from 'cookie';
import { admitUser } from '../auth/login-policy.js';
import { PendingLogins } from '../auth/pending-logins.js';
import { publicOrigin } from '../config/load.js';
import { recordAudit, userActor, userTarget } from '../audit/record.js';

/** Holds only the id of a login waiting at the identity provider, and only for the callback path. */
const PENDING_COOKIE = 'labhub-oauth-pending';
const GENERIC_FAILURE = 'Invalid username or password.';

/** Field values from a form post; anything that is not a short string is treated as absent. */
export function formField(req: Request, name: string, max = 1024): string {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' && value.length <= max ? value : '';
}

/** Login, logout, the one-time first-admin setup link and invitation links. */
export function authPages(ctx: HubContext): Router {
  const router = Router();
  const { store, sessions, xsrf, config } = ctx;

  const safeNext = (req: Request) => {
    const raw = typeof req.query.next === 'string' ? req.query.next : undefined;
    return validateNextUrl(raw, req.get('host') ?? '') || '/hub/home';
  };

  const throttle = ctx.loginThrottle;
  const pendingLogins = new PendingLogins();
  const redirectLogin = ctx.authenticator.redirect;

  function showLogin(req: Request, res: Response, status: number, message: string, username = '') {
    const token = xsrf.tokenFor(req, res, null);
    const next = typeof req.query.next === 'string' ? validateNextUrl(req.query.next, req.get('host') ?? '') : '';
    res.status(status).send(renderPage('login.njk', {
      xsrf: token, message, next, username: username.slice(0, 64), loginService: redirectLogin?.serviceName ?? null,
    }));
  }

  router.get('/login', async (req, res) => {
    if (await sessions.current(req)) return res.redirect(302, safeNext(req));
    showLogin(req, res, 200, '');
  });

  router.post('/login', async (req, res) => {
    if (redirectLogin) return showLogin(req, res, 400, `Sign in with ${redirectLogin.serviceName}.`);
    if (!xsrf.check(req, null)) return showLogin(req, res, 403, 'Your session expired; please sign in again.');
    const username = formField(req, 'username', 4096);
    const password = formField(req, 'password', 4096);
    const account = normalizeUsername(username).slice(0, 256);
    const ip = req.ip ?? '';
    const waitMs = throttle?.attempt(account, ip) ?? 0;
    if (waitMs > 0) {
      ctx.metrics.loginAttempts.inc({ outcome: 'throttled' });
      await loginFailed(req, account, 'throttled');
      res.set('Retry-After', String(Math.ceil(waitMs / 1000)));
      return showLogin(req, res, 429, `Too many failed sign-ins. Try again in ${Math.ceil(waitMs / 1000)} seconds.`, username);
    }
    // Empty, blank and NUL-containing passwords never reach a backend: LDAP takes a DN with an empty password
    // as an anonymous bind, PAM with nullok accepts anything for a passwordless account, and PAM cuts at NUL.
    const result = passwordRejection(password) === null ? await ctx.authenticator.authenticate({ username, password, ip }) : null;
    const user = result ? await admitUser(ctx, result) : null;
    if (!user) {
      ctx.metrics.loginAttempts.inc({ outcome: 'failure' });
      ctx.log.info({ user: boundedName(username), ip }, 'failed login');
      await loginFailed(req, account, result ? 'not_allowed' : 'rejected');
      return showLogin(req, res, 403, GENERIC_FAILURE, username);
    }
    throttle?.succeeded(account, ip);
    await startSession(req, res, user);
    res.redirect(302, safeNext(req));
  });

  /** A failed sign-in names only what was typed (the recorder bounds and scrubs it): no user row is made for it. */
  async function loginFailed(req: Request, typed: string, reason: 'rejected' | 'throttled' | 'not_allowed') {
    await recordAudit(store, {
      action: 'login.failure', actor: { kind: 'system' }, target: { kind: 'user', name: typed }, source: req.ip ?? null,
      details: { authenticator: ctx.authenticator.kind, reason },
    });
  }

  async function startSession(req: Request, res: Response, user: UserRow) {
    const previous = await sessions.current(req);
    if (previous) await sessions.end(res, previous.session);
    await sessions.start(res, user);
    await recordAudit(store, { action: 'login.success', actor: userActor(user), target: userTarget(user), source: req.ip ?? null, details: { authenticator: ctx.authenticator.kind } });
    ctx.metrics.loginAttempts.inc({ outcome: 'success' });
    ctx.log.info({ user: user.name }, 'login');
  }

  router.get('/oauth_login', async (req, res) => {
    if (!redirectLogin) return res.redirect(302, '/hub/login');
    let begun: Awaited<ReturnType<typeof redirectLogin.begin>>;
    try {
      begun = await redirectLogin.begin();
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'identity provider unreachable');
      return res.status(503).send(renderPage('error.njk', { status: 503, title: 'Sign-in unavailable', message: `${redirectLogin.serviceName} cannot be reached right now. Please try again in a minute.` }));
    }
    const { url, pending } = begun;
    const id = pendingLogins.add(pending, safeNext(req));
    res.append('Set-Cookie', serializeCookie(PENDING_COOKIE, id, {
      httpOnly: true, sameSite: 'lax', secure: config.public_url?.startsWith('https:') ?? false, path: '/hub/oauth_callback', maxAge: 600,
    }));
    res.redirect(302, url);
  });

  router.get('/oauth_callback', async (req, res) => {
    const id = sessions.cookies(req)[PENDING_COOKIE];
    res.append('Set-Cookie', serializeCookie(PENDING_COOKIE, '', { httpOnly: true, path: '/hub/oauth_callback', maxAge: 0 }));
    const waiting = redirectLogin ? pendingLogins.take(id) : undefined;
    if (!redirectLogin || !waiting) {
      return res.status(400).send(renderPage('error.njk', { status: 400, title: 'Sign-in expired', message: 'This sign-in was not started here or has expired. Please sign in again.' }));
    }
    // The registered callback URL with the provider's parameters: what openid-client checks the answer against.
    const callback = new URL(redirectLogin.callbackUrl);
    callback.search = new URL(req.originalUrl, 'http://callback.invalid').search;
    const result = await redirectLogin.finish(callback, waiting.pending);
    const user = result ? await admitUser(ctx, result) : null;
    if (!user) {
      ctx.metrics.loginAttempts.inc({ outcome: 'failure' });
      ctx.log.info({ user: boundedName(result?.name ?? '') }, 'failed login');
      await loginFailed(req, normalizeUsername(result?.name ?? '').slice(0, 256), result ? 'not_allowed' : 'rejected');
      return showLogin(req, res, 403, GENERIC_FAILURE);
    }
    await startSession(req, res, user);
    res.redirect(302, waiting.next);
  });

  const logout = async (req: Request, res: Response) => {
    const active = await sessions.current(req);
    await sessions.end(res, active?.session ?? null);
    if (!active) return res.redirect(302, '/hub/login');
    await recordAudit(store, { action: 'logout', actor: userActor(active.user), target: userTarget(active.user), source: req.ip ?? null, details: {} });
    ctx.log.info({ user: active.user.name }, 'logout');
    const state = ctx.authState?.open(active.user.id, active.user.auth_state) ?? null;
    const providerLogout = await ctx.authenticator.logoutUrl?.(state, `${publicOrigin(config)}/hub/login`).catch(() => null);
    if (!providerLogout) return res.redirect(302, '/hub/login');
    if (req.method === 'GET') return res.redirect(302, providerLogout);
    res.send(renderPage('provider-logout.njk', { url: providerLogout, service: redirectLogin?.serviceName ?? 'the identity provider' }));
  };
  router.get('/logout', logout);
  router.post('/logout', logout);

  /** The code of a one-time link, from the query; anything but a short string is no code. */
  const linkCode = (req: Request) => (typeof req.query.code === 'string' && req.query.code.length <= 200 ? req.query.code : '');

  const deadLink = (res: Response) => res.status(404).send(renderPage('error.njk', {
    status: 404, title: 'Link not valid', message: 'This link is no longer valid; ask an admin for a new one.',
  }));

  function showSetup(req: Request, res: Response, status: number, target: LinkTarget, message: string, username = '') {
    const token = xsrf.tokenFor(req, res, null);
    const first = target.kind === 'setup';
    res.status(status).send(renderPage('setup.njk', {
      xsrf: token, message, username: first ? username : target.user.name, fixedUsername: !first,
      heading: first ? 'Create the first admin account' : 'Set your password',
      intro: first ? 'This link works once. The account you create here administers LabHub.' : `Choose a password for ${target.user.name}.`,
      minLength: config.authenticator.minimum_password_length,
      submitLabel: first ? 'Create account' : 'Set password and sign in',
    }));
  }

  /** First-admin setup and invitations: what a link may do is decided by one-time-links.ts, at use. */
  router.get(['/setup', '/invite'], async (req, res) => {
    const target = await openLink(store, linkCode(req));
    if (!target) return deadLink(res);
    showSetup(req, res, 200, target, '');
  });

  router.post(['/setup', '/invite'], async (req, res) => {
    const code = linkCode(req);
    const target = await openLink(store, code);
    if (!target) return deadLink(res);
    if (!xsrf.check(req, null)) return showSetup(req, res, 403, target, 'Your session expired; please try again.');
    const name = target.kind === 'setup' ? normalizeUsername(formField(req, 'username')) : target.user.name;
    const password = formField(req, 'password');
    const problem = target.kind === 'setup' ? validateUsername(name) : null;
    if (problem) return showSetup(req, res, 400, target, `Username: ${problem}`, formField(req, 'username'));
    if (passwordRejection(password) !== null || password.length < config.authenticator.minimum_password_length) {
      return showSetup(req, res, 400, target, `Choose a password of at least ${config.authenticator.minimum_password_length} characters.`, name);
    }
    if (password !== formField(req, 'password2')) return showSetup(req, res, 400, target, 'The two passwords differ.', name);
    const redeemed = await redeemLink(store, code, name, await hashPassword(password), req.ip ?? null);
    if (redeemed === 'dead') return deadLink(res);
    if (redeemed === 'taken') return showSetup(req, res, 400, target, `The account ${name} already exists; this link only creates a new account. Choose another username.`, name);
    await sessions.start(res, (await store.users.byId(redeemed.user.id))!);
    await recordAudit(store, { action: 'login.success', actor: userActor(redeemed.user), target: userTarget(redeemed.user), source: req.ip ?? null, details: { authenticator: redeemed.setup ? 'setup-link' : 'invitation-link' } });
    ctx.log.info({ user: redeemed.user.name, admin: Boolean(redeemed.user.admin), setup: redeemed.setup }, 'password set from a one-time link');
    res.redirect(302, '/hub/home');
  });

  return router;
}
