import { Router, type NextFunction, type Request, type Response } from 'express';
import type { HubContext } from '../context.js';
import type { ActiveSession } from '../auth/sessions.js';
import { HttpError } from '../errors.js';
import { validateServerName, progressUrl, serverPrefix } from '../servers/naming.js';
import { normalizeUsername } from '../auth/usernames.js';
import { checkScope } from '../auth/scopes.js';
import { renderPage } from './render.js';
import { formField } from './auth.js';
import { checkFormXsrf, layoutFor } from './page-context.js';
import { adminReturnPath, serverActions, serverPath } from './admin-layout.js';
import { offeredProfiles } from '../classes/profiles.js';

declare module 'express-serve-static-core' {
  interface Locals {
    session?: ActiveSession;
  }
}

/** Pages that need a login send the browser to the login page and back. */
export function requireLogin(ctx: HubContext) {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const active = await ctx.sessions.current(req);
      if (!active) return res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`);
      res.locals.session = active;
      next();
    } catch (err) {
      next(err);
    }
  };
}


/** Home, start, stop, spawn progress, and what a browser sees at /user/<name>/ when no server answers there. */
export function serverPages(ctx: HubContext): Router {
  const router = Router();
  const { store, servers, authz } = ctx;
  const login = requireLogin(ctx);

  /** The user and server a page URL names; acting on someone else's needs the same scopes as the API. */
  async function target(req: Request, res: Response, scope: string) {
    const active = res.locals.session!;
    const name = req.params.user ? normalizeUsername(String(req.params.user)) : active.user.name;
    const server = req.params.server ? String(req.params.server) : formField(req, 'server_name', 63);
    if (server) {
      if (!ctx.config.allow_named_servers) throw new HttpError(400, 'Named servers are not enabled on this hub');
      const problem = validateServerName(server);
      if (problem) throw new HttpError(400, problem);
    }
    const requester = await authz.fromSession(req);
    await authz.require(requester, [scope], { server: `${name}/${server}` });
    const user = name === active.user.name ? active.user : await store.users.byName(name);
    if (!user) throw new HttpError(404, `No such user: ${name}`);
    return { user, server };
  }

  router.get(['/', '/home'], login, async (req, res) => {
    const { user } = res.locals.session!;
    const [rows, classes] = await Promise.all([
      store.servers.forUsers([user.id]).then((m) => m.get(user.id) ?? []), store.groups.ofUser(user.id),
    ]);
    if (!rows.some((r) => r.name === '')) rows.unshift({ name: '', status: 'stopped', last_activity: null, last_error: null, user_options: '{}' } as (typeof rows)[number]);
    const list = rows.map((r) => ({
      label: r.name || 'Default server', name: r.name, lastActivity: r.last_activity,
      lastError: r.status === 'stopped' ? r.last_error : null, profile: profileOption(r.user_options),
      ...serverActions(user.name, r.name, r.status, '/hub/home'),
    }));
    const profiles = offeredProfiles(classes);
    const lastProfile = list.find((s) => s.name === '')?.profile;
    const selected = profiles.find((p) => p.id === lastProfile)?.id ?? profiles.find((p) => p.isDefault)?.id ?? profiles[0]?.id;
    const message = typeof req.query.error === 'string' ? req.query.error.slice(0, 300) : '';
    res.send(renderPage('home.njk', {
      ...(await layoutFor(ctx, req, res, 'home')), servers: list, allowNamed: ctx.config.allow_named_servers, message, profiles, selected,
    }));
  });

  // Starting is a POST with an XSRF token: a GET that starts servers could be triggered by any page (GHSA-m68r-v472-jgq9).
  router.post(['/spawn', '/spawn/:user', '/spawn/:user/:server'], login, async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const { user, server } = await target(req, res, 'servers');
    const row = await store.servers.get(user.id, server);
    if (row?.status === 'running') return res.redirect(302, serverPrefix(user.name, server));
    if (row?.status !== 'starting') {
      try {
        const profile = formField(req, 'profile', 400);
        await servers.start(user, server, profile ? { profile } : {}, 0);
      } catch (err) {
        if (err instanceof HttpError && err.status < 500) return res.redirect(303, `/hub/home?error=${encodeURIComponent(err.message)}`);
        throw err;
      }
    }
    res.redirect(303, `/hub/spawn-pending/${serverPath(user.name, server)}`);
  });

  router.get(['/spawn', '/spawn/:user', '/spawn/:user/:server'], login, (_req, res) => res.redirect(302, '/hub/home'));

  router.post(['/stop/:user', '/stop/:user/:server'], login, async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const { user, server } = await target(req, res, 'delete:servers');
    const row = await store.servers.get(user.id, server);
    if (row && row.status !== 'stopped') await servers.stop(user, server, 10_000);
    res.redirect(303, adminReturnPath(formField(req, 'next', 1000)) ?? '/hub/home');
  });

  router.get(['/spawn-pending/:user', '/spawn-pending/:user/:server'], login, async (req, res) => {
    const { user, server } = await target(req, res, 'read:servers');
    const row = await store.servers.get(user.id, server);
    if (row?.status === 'running') return res.redirect(302, serverPrefix(user.name, server));
    if (row?.status !== 'starting' && !row?.last_error) return res.redirect(302, '/hub/home');
    res.send(renderPage('spawn-pending.njk', {
      ...(await layoutFor(ctx, req, res, 'home')),
      label: serverLabel(user.name, server, res.locals.session!.user.name), progressUrl: progressUrl(user.name, server),
      serverUrl: serverPrefix(user.name, server), startAction: `/hub/spawn/${serverPath(user.name, server)}`,
      profile: row ? profileOption(row.user_options) : undefined,
    }));
  });

  /** `/hub/user-redirect/<path>`: the same path under the logged-in user's own server (links shared between users). */
  router.get('/user-redirect/{*rest}', login, (req, res) => {
    const rest = ([] as string[]).concat((req.params as Record<string, string[] | undefined>).rest ?? []).map(encodeURIComponent).join('/');
    res.redirect(302, `${serverPrefix(res.locals.session!.user.name, '')}${rest}`);
  });

  return router;
}

/**
 * A request for /user/<name>/… reached the hub: no route, so that server is not running (or the proxy lost its
 * routes). APIs get JupyterHub's 424 JSON; browsers get a page that offers to start their own server.
 */
export function notRunningHandler(ctx: HubContext) {
  return async (req: Request, res: Response) => {
    const segments = req.path.split('/').filter(Boolean);
    const name = normalizeUsername(decodeSafe(segments[1] ?? ''));
    const active = await ctx.sessions.current(req);
    const apiLike = /\/api(\/|$)/.test(req.path) || req.get('accept')?.includes('application/json') === true;
    if (apiLike) {
      res.status(424).json({ status: 424, message: `The server at ${req.path.slice(0, 200)} is not running. Start it from /hub/home.` });
      return;
    }
    if (!active) return res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`);
    const user = await ctx.store.users.byName(name);
    const server = user && ctx.config.allow_named_servers && segments[2] && validateServerName(decodeSafe(segments[2])) === null
      && (await ctx.store.servers.get(user.id, decodeSafe(segments[2]))) ? decodeSafe(segments[2]) : '';
    const row = user ? await ctx.store.servers.get(user.id, server) : undefined;
    if (row?.status === 'running') {
      // The route is missing although the server runs: put it back, then send the browser there again.
      await ctx.proxy.addRoute(serverPrefix(user!.name, server), row.url!, { jupyterhub: true, user: user!.name, server_name: server });
      return res.redirect(302, req.originalUrl);
    }
    if (row?.status === 'starting') return res.redirect(302, `/hub/spawn-pending/${serverPath(name, server)}`);
    const own = active.user.name === name;
    const requester = await ctx.authz.fromSession(req);
    const mayStart = requester !== null && checkScope(requester.scopes, ['servers'], { server: `${name}/${server}` }, requester.groupsOf) === 'allowed';
    res.status(424).send(renderPage('not-running.njk', {
      user: active.user, xsrf: ctx.xsrf.tokenFor(req, res, active.session.id), own: own || mayStart,
      label: server ? `${name}/${server}` : own ? '' : name, path: req.originalUrl.slice(0, 200),
      startAction: `/hub/spawn/${serverPath(name, server)}`,
    }));
  };
}

/** How the progress page names a server: "your server", "your server lab1", "bea's server". */
function serverLabel(owner: string, server: string, viewer: string): string {
  const whose = owner === viewer ? 'your server' : `${owner}'s server`;
  return server ? `${whose} ${server}` : whose;
}

/** The profile a server was last started with, from its stored user options. */
function profileOption(userOptions: string): string | undefined {
  try {
    const profile = (JSON.parse(userOptions) as { profile?: unknown }).profile;
    return typeof profile === 'string' ? profile : undefined;
  } catch {
    return undefined;
  }
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
