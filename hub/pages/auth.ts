import { Router, type Request, type Response } from 'express';
import type { HubContext } from '../context.js';
import type { UserRow } from '../db/schema.js';
import { boundedName } from '../log.js';
import { validateNextUrl } from '../auth/next-url.js';
import { hashPassword, passwordRejection } from '../auth/passwords.js';
import { normalizeUsername, validateUsername } from '../auth/usernames.js';
import { renderPage } from './render.js';
import { secretDigest } from '../auth/tokens.js';

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

  function showLogin(req: Request, res: Response, status: number, message: string, username = '') {
    const token = xsrf.tokenFor(req, res, null);
    const next = typeof req.query.next === 'string' ? validateNextUrl(req.query.next, req.get('host') ?? '') : '';
    res.status(status).send(renderPage('login.njk', { xsrf: token, message, next, username: username.slice(0, 64) }));
  }

  router.get('/login', async (req, res) => {
    if (await sessions.current(req)) return res.redirect(302, safeNext(req));
    showLogin(req, res, 200, '');
  });

  router.post('/login', async (req, res) => {
    if (!xsrf.check(req, null)) return showLogin(req, res, 403, 'Your session expired; please sign in again.');
    const username = formField(req, 'username', 4096);
    const password = formField(req, 'password', 4096);
    const user = await authenticate(ctx, req, username, password);
    if (!user) {
      ctx.metrics.loginAttempts.inc({ outcome: 'failure' });
      ctx.log.info({ user: boundedName(username), ip: req.ip }, 'failed login');
      return showLogin(req, res, 403, GENERIC_FAILURE, username);
    }
    const previous = await sessions.current(req);
    if (previous) await sessions.end(res, previous.session);
    await sessions.start(res, user);
    ctx.metrics.loginAttempts.inc({ outcome: 'success' });
    ctx.log.info({ user: user.name }, 'login');
    res.redirect(302, safeNext(req));
  });

  const logout = async (req: Request, res: Response) => {
    const active = await sessions.current(req);
    await sessions.end(res, active?.session ?? null);
    if (active) ctx.log.info({ user: active.user.name }, 'logout');
    res.redirect(302, '/hub/login');
  };
  router.get('/logout', logout);
  router.post('/logout', logout);

  /** First-admin setup (`username` null in the invitation) and invitations for named accounts. */
  async function invitation(req: Request) {
    const code = typeof req.query.code === 'string' && req.query.code.length <= 200 ? req.query.code : '';
    return code ? store.invitations.valid(secretDigest(code)) : undefined;
  }

  function showSetup(req: Request, res: Response, status: number, invite: { username: string | null; admin: number }, message: string, username = '') {
    const token = xsrf.tokenFor(req, res, null);
    const first = invite.username === null;
    res.status(status).send(renderPage('setup.njk', {
      xsrf: token, message, username: invite.username ?? username, fixedUsername: !first,
      heading: first ? 'Create the first admin account' : 'Set your password',
      intro: first ? 'This link works once. The account you create here administers LabHub.' : `Choose a password for ${invite.username}.`,
      minLength: config.authenticator.minimum_password_length,
    }));
  }

  router.get(['/setup', '/invite'], async (req, res) => {
    const invite = await invitation(req);
    if (!invite) return res.status(404).send(renderPage('error.njk', { status: 404, title: 'Link not valid', message: 'This link has expired or was already used.' }));
    showSetup(req, res, 200, invite, '');
  });

  router.post(['/setup', '/invite'], async (req, res) => {
    const invite = await invitation(req);
    if (!invite) return res.status(404).send(renderPage('error.njk', { status: 404, title: 'Link not valid', message: 'This link has expired or was already used.' }));
    if (!xsrf.check(req, null)) return showSetup(req, res, 403, invite, 'Your session expired; please try again.');
    const name = invite.username ?? normalizeUsername(formField(req, 'username'));
    const password = formField(req, 'password');
    const problem = invite.username ? null : validateUsername(name);
    if (problem) return showSetup(req, res, 400, invite, `Username: ${problem}`, formField(req, 'username'));
    if (passwordRejection(password) !== null || password.length < config.authenticator.minimum_password_length) {
      return showSetup(req, res, 400, invite, `Choose a password of at least ${config.authenticator.minimum_password_length} characters.`, name);
    }
    if (password !== formField(req, 'password2')) return showSetup(req, res, 400, invite, 'The two passwords differ.', name);
    const code = String(req.query.code);
    const consumed = await store.invitations.consume(secretDigest(code));
    if (!consumed) return res.status(404).send(renderPage('error.njk', { status: 404, title: 'Link not valid', message: 'This link has expired or was already used.' }));
    const passwordHash = await hashPassword(password);
    const existing = await store.users.byName(name);
    const user = existing
      ? await store.users.update(existing.id, { passwordHash, admin: consumed.admin ? true : undefined })
      : await store.users.create(name, { admin: Boolean(consumed.admin), passwordHash });
    if (consumed.username === null) await store.invitations.deleteSetupLinks();
    await store.users.rotateCookieId(user.id);
    await sessions.start(res, (await store.users.byId(user.id))!);
    ctx.log.info({ user: name, admin: Boolean(consumed.admin) }, 'account set up from a one-time link');
    res.redirect(302, '/hub/home');
  });

  return router;
}

/** Runs the configured authenticator and the hub's allow/block rules; returns the hub user or null. */
async function authenticate(ctx: HubContext, req: Request, username: string, password: string): Promise<UserRow | null> {
  const { config, store } = ctx;
  const result = await ctx.authenticator.authenticate({ username, password, ip: req.ip ?? '' });
  if (!result) return null;
  const { blocked_users: blocked, allowed_users: allowed, admin_users: admins } = config.authenticator;
  const norm = (names: string[]) => new Set(names.map(normalizeUsername));
  // Deny rules run before any allow rule (GHSA-gprj-3p75-f996).
  if (norm(blocked).has(result.name)) return null;
  let user = await store.users.byName(result.name);
  const isConfiguredAdmin = norm(admins).has(result.name);
  if (!user) {
    // Native accounts exist before their first login; other sources create the hub user on first login if allowed.
    if (ctx.authenticator.kind === 'native') return null;
    if (allowed.length && !norm(allowed).has(result.name) && !isConfiguredAdmin) return null;
    user = await store.users.create(result.name, { admin: isConfiguredAdmin || Boolean(result.admin) });
  } else if ((isConfiguredAdmin || result.admin) && !user.admin) {
    user = await store.users.update(user.id, { admin: true });
  }
  return user;
}
