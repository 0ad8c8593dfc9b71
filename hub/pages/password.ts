import { Router } from 'express';
import type { HubContext } from '../context.js';
import { hashPassword, passwordRejection, verifyPassword } from '../auth/passwords.js';
import { renderPage } from './render.js';
import { formField } from './auth.js';
import { requireLogin } from './servers.js';
import { checkFormXsrf, layoutFor } from './page-context.js';
import { recordAudit, sourceOf, userActor, userTarget } from '../audit/record.js';

/**
 * `/hub/password`: a native account changes its own password. The current password is asked for (a borrowed
 * session alone cannot lock the owner out), every other session of the account ends, and so does every one-time
 * link made for it. Accounts of PAM, LDAP or OpenID Connect change their password there, not here.
 */
export function passwordPages(ctx: HubContext): Router {
  const router = Router();
  const login = requireLogin(ctx);
  const minLength = ctx.config.authenticator.minimum_password_length;

  const show = async (req: Parameters<typeof layoutFor>[1], res: Parameters<typeof layoutFor>[2], status: number, message = '', done = false) => {
    res.status(status).send(renderPage('password.njk', {
      ...(await layoutFor(ctx, req, res, 'password')), minLength, message, done, native: ctx.authenticator.kind === 'native',
    }));
  };

  router.get('/password', login, async (req, res) => show(req, res, ctx.authenticator.kind === 'native' ? 200 : 404));

  router.post('/password', login, async (req, res) => {
    checkFormXsrf(ctx, req, res);
    if (ctx.authenticator.kind !== 'native') return show(req, res, 404);
    const user = await ctx.store.users.byId(res.locals.session!.user.id);
    if (!user) return show(req, res, 404);
    const current = formField(req, 'current', 4096);
    const next = formField(req, 'password', 4096);
    // Checking the current password is a sign-in attempt: it counts into the login throttle, account and address.
    const ip = req.ip ?? '';
    const waitMs = ctx.loginThrottle?.attempt(user.name, ip) ?? 0;
    if (waitMs > 0) {
      res.set('Retry-After', String(Math.ceil(waitMs / 1000)));
      return show(req, res, 429, `Too many wrong passwords. Try again in ${Math.ceil(waitMs / 1000)} seconds.`);
    }
    if (!user.password_hash || passwordRejection(current) !== null || !(await verifyPassword(current, user.password_hash))) {
      ctx.log.info({ user: user.name, ip }, 'wrong current password at password change');
      return show(req, res, 400, 'Your current password is not right.');
    }
    ctx.loginThrottle?.succeeded(user.name, ip);
    if (passwordRejection(next) !== null || next.length < minLength) return show(req, res, 400, `Choose a new password of at least ${minLength} characters.`);
    if (next !== formField(req, 'password2', 4096)) return show(req, res, 400, 'The two new passwords differ.');
    // Setting the password also revokes the account's one-time links (UserRepository.update).
    const passwordHash = await hashPassword(next);
    await ctx.store.transaction(async (tx) => {
      await tx.users.update(user.id, { passwordHash });
      // Every session of the account ends (a new cookie_id); this browser gets a fresh one.
      await tx.users.rotateCookieId(user.id);
      await recordAudit(tx, { action: 'user.password', actor: userActor(user), target: userTarget(user), source: sourceOf(req), details: {} });
    });
    await ctx.sessions.end(res, res.locals.session!.session);
    const fresh = await ctx.store.users.byId(user.id);
    const session = await ctx.sessions.start(res, fresh!);
    res.locals.session = { session, user: fresh! };
    ctx.log.info({ user: user.name }, 'password changed');
    return show(req, res, 200, '', true);
  });

  return router;
}
