import { Router, type NextFunction, type Request, type Response } from 'express';
import type { HubContext } from '../context.js';
import type { ActiveSession } from '../auth/sessions.js';
import { HttpError } from '../errors.js';
import { validateServerName, progressUrl, serverPrefix } from '../servers/naming.js';
import { normalizeUsername } from '../auth/usernames.js';
import { checkScope } from '../auth/scopes.js';
import { userUsage } from '../usage/report.js';
import { renderPage } from './render.js';
import { formField } from './auth.js';
import { checkFormXsrf, layoutFor } from './page-context.js';
import { adminReturnPath, serverActions, serverPath, sharingUrl } from './admin-layout.js';
import { flash, redirectWithFlash } from './flash.js';
import { offeredProfiles, profileOption } from '../classes/profiles.js';
import { OPTION_PREFIX, prefixedOptions } from './spawn-options.js';
import type { SpawnProgress } from '../servers/progress.js';
import { validateNextUrl } from '../auth/next-url.js';
import { errorPage } from './errors.js';
import { isApiRequest } from '../../proxy/api-requests.js';
import { auditBy } from '../audit/record.js';
import { servicePrefix } from '../services/oauth-clients.js';

declare module 'express-serve-static-core' {
  interface Locals {
    session?: ActiveSession;
  }
}

/** Pages that need a login send the browser to the login page and back. */
export function requireLogin(ctx: HubContext) {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const requester = await ctx.authz.fromSession(req);
      if (!requester) return res.redirect(302, `/hub/login?next=${encodeURIComponent(req.originalUrl)}`);
      res.locals.session = { session: requester.session!, user: requester.user! };
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
    return { user, server, by: auditBy(requester, req) };
  }

  router.get(['/', '/home'], login, async (req, res) => {
    const { user } = res.locals.session!;
    const [rows, classes] = await Promise.all([
      store.servers.forUsers([user.id]).then((m) => m.get(user.id) ?? []), ctx.classes.classesFor(user),
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
    const { message } = flash(req);
    const requester = await authz.fromSession(req);
    for (const s of list) {
      const shareable = requester && await authz.allows(requester, ['shares'], { server: `${user.name}/${s.name}` });
      Object.assign(s, { shareUrl: shareable ? sharingUrl(user.name, s.name) : null });
    }
    const sharedWithMe = [];
    for (const share of await store.shares.heldBy(user.id)) {
      const row = await store.servers.get(share.owner_id, share.server_name);
      sharedWithMe.push({
        owner: share.owner_name, label: share.server_name || 'default server', url: serverPrefix(share.owner_name, share.server_name),
        running: row?.status === 'running', via: share.group_name,
      });
    }
    const services = [];
    for (const s of ctx.config.services) {
      if (s.url && s.display && requester && await authz.allows(requester, ['access:services'], { service: s.name })) {
        services.push({ name: s.name, url: servicePrefix(s.name) });
      }
    }
    const usage = await userUsage(store, user, { days: 7, now: Date.now() }, ctx.config.usage.quota_grace);
    res.send(renderPage('home.njk', {
      ...(await layoutFor(ctx, req, res, 'home')), servers: list, allowNamed: ctx.config.allow_named_servers, message, profiles, selected, services,
      sharedWithMe, usage,
      specsApplied: appliesProfileResources(ctx.spawner.kind),
    }));
  });

  // Starting is a POST with an XSRF token: a GET that starts servers could be triggered by any page (GHSA-m68r-v472-jgq9).
  router.post(['/spawn', '/spawn/:user', '/spawn/:user/:server'], login, async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const { user, server, by } = await target(req, res, 'start:servers');
    const row = await store.servers.get(user.id, server);
    const next = afterStart(formField(req, 'next', 4096), user.name, server);
    if (row?.status === 'running') return res.redirect(302, next || serverPrefix(user.name, server));
    if (row?.status !== 'starting') {
      try {
        const profile = formField(req, 'profile', 400);
        const options = { ...prefixedOptions(req.body as Record<string, unknown>), ...(profile && { profile }) };
        await servers.start(user, server, options, 0, by);
      } catch (err) {
        if (err instanceof HttpError && err.status < 500) return redirectWithFlash(res, '/hub/home', 'error', err.message);
        throw err;
      }
    }
    // From an admin page, the admin stays there and follows the start in the list.
    res.redirect(303, adminReturnPath(next) ?? pendingUrl(user.name, server, next));
  });

  /**
   * A link with `opt-` options (JupyterHub 6.0) opens a page that shows them and starts on a click: the start
   * itself stays a POST with XSRF, so a link alone starts nothing. Without options, the home page has the forms.
   */
  router.get(['/spawn', '/spawn/:user', '/spawn/:user/:server'], login, async (req, res) => {
    const options = prefixedOptions(req.query as Record<string, unknown>);
    if (Object.keys(options).length === 0) return res.redirect(302, '/hub/home');
    const { user, server } = await target(req, res, 'start:servers');
    const next = afterStart(typeof req.query.next === 'string' ? req.query.next.slice(0, 4096) : '', user.name, server);
    const row = await store.servers.get(user.id, server);
    if (row?.status === 'running') return res.redirect(302, next || serverPrefix(user.name, server));
    if (row?.status === 'starting') return res.redirect(302, pendingUrl(user.name, server, next));
    const { profile, ...others } = options;
    const offered = offeredProfiles(await ctx.classes.classesFor(user));
    res.send(renderPage('spawn-options.njk', {
      ...(await layoutFor(ctx, req, res, 'home')),
      owner: user.name, own: user.id === res.locals.session!.user.id, label: server ? `server ${server}` : 'default server',
      startAction: `/hub/spawn/${serverPath(user.name, server)}`, next,
      profile: profile === undefined ? null : { id: profile, offered: offered.find((p) => p.id === profile) ?? null },
      others: Object.entries(others).map(([key, value]) => ({ field: `${OPTION_PREFIX}${key}`, key, value })),
    }));
  });

  router.post(['/stop/:user', '/stop/:user/:server'], login, async (req, res) => {
    checkFormXsrf(ctx, req, res);
    const { user, server, by } = await target(req, res, 'delete:servers');
    const row = await store.servers.get(user.id, server);
    if (row && row.status !== 'stopped') await servers.stop(user, server, 10_000, by);
    res.redirect(303, adminReturnPath(formField(req, 'next', 1000)) ?? '/hub/home');
  });

  router.get(['/spawn-pending/:user', '/spawn-pending/:user/:server'], login, async (req, res) => {
    const { user, server } = await target(req, res, 'read:servers');
    const row = await store.servers.get(user.id, server);
    const next = afterStart(typeof req.query.next === 'string' ? req.query.next : '', user.name, server);
    if (row?.status === 'running') return res.redirect(302, next || serverPrefix(user.name, server));
    if (row?.status !== 'starting' && !row?.last_error) return res.redirect(302, '/hub/home');
    res.send(renderPage('spawn-pending.njk', {
      ...(await layoutFor(ctx, req, res, 'home')),
      label: serverLabel(user.name, server, res.locals.session!.user.name), progressUrl: progressUrl(user.name, server),
      serverUrl: next || serverPrefix(user.name, server), next, startAction: `/hub/spawn/${serverPath(user.name, server)}`,
      // JupyterHub 6 lets a start be cancelled from here; the stop aborts it and releases what it held.
      starting: row?.status === 'starting', stopAction: `/hub/stop/${serverPath(user.name, server)}`,
      profile: row ? profileOption(row.user_options) : undefined, failedAt: failedAt(servers.progressOf(user.name, server)),
    }));
  });

  /** `/hub/user-redirect/<path>`: the same path under the logged-in user's own server (links shared between users). */
  router.get('/user-redirect/{*rest}', login, (req, res) => {
    const rest = ([] as string[]).concat((req.params as Record<string, string[] | undefined>).rest ?? []).map(encodeURIComponent).join('/');
    res.redirect(302, `${serverPrefix(res.locals.session!.user.name, '')}${rest}`);
  });

  router.get('/user/{*rest}', login, userPage(ctx));

  return router;
}

/**
 * A request for /user/<name>/… reached the hub: no route, so that server is not running (or the proxy lost its
 * route). The session cookie is scoped to /hub/, so the hub cannot tell who asks here: browsers go on to the same
 * path under /hub/ (as JupyterHub does), where the cookie is sent; API clients get JupyterHub's 424 JSON.
 */
export function userUrlAtHub() {
  return (req: Request, res: Response) => {
    if (isApiRequest(req.path, req.get('accept'))) {
      res.status(424).json({ status: 424, message: `The server at ${req.path.slice(0, 200)} is not running. Start it from /hub/home.` });
      return;
    }
    res.redirect(302, `/hub${req.originalUrl}`);
  };
}

/** How often /hub/user/… sends a browser back to a server the DB says runs before it stops trying (a route that will not stick). */
const MAX_ROUTE_REDIRECTS = 3;
const REDIRECTS_PARAM = 'redirects';

/**
 * `/user/<name>/[<server>/]…` as asked for, byte for byte (no URL parser resolving `..` into another path), without
 * our own redirect counter; null when it is not such a path.
 */
function userPathOf(req: Request): { path: string; redirects: number } | null {
  const raw = req.originalUrl.slice('/hub'.length);
  const question = raw.indexOf('?');
  const pathname = question < 0 ? raw : raw.slice(0, question);
  if (!pathname.startsWith('/user/') || pathname.startsWith('/user//')) return null;
  const params = new URLSearchParams(question < 0 ? '' : raw.slice(question + 1));
  const redirects = Number(params.get(REDIRECTS_PARAM) ?? 0);
  params.delete(REDIRECTS_PARAM);
  const search = params.toString();
  return { path: `${pathname}${search ? `?${search}` : ''}`, redirects: Number.isInteger(redirects) && redirects > 0 ? redirects : 0 };
}

/**
 * `/hub/user/<name>/…`, where browsers land for a server that is not routed: the not-running page (424) with a start
 * button that comes back to the same path, the progress page while it starts, or back to the server once it runs.
 * A name the viewer has no access to gets the same 404 whether or not that user exists.
 */
function userPage(ctx: HubContext) {
  return async (req: Request, res: Response) => {
    const active = res.locals.session!;
    const segments = req.path.split('/').filter(Boolean);
    const name = normalizeUsername(decodeSafe(segments[1] ?? ''));
    const asked = userPathOf(req);
    const { path, redirects } = asked ?? { path: '', redirects: 0 };
    const user = name && asked ? await ctx.store.users.byName(name) : undefined;
    const candidate = segments[2] === undefined ? '' : decodeSafe(segments[2]);
    const server = user && ctx.config.allow_named_servers && candidate && validateServerName(candidate) === null
      && (await ctx.store.servers.get(user.id, candidate)) ? candidate : '';
    const requester = await ctx.authz.fromSession(req);
    const key = { server: `${name}/${server}` };
    const may = (scope: string) => requester !== null && checkScope(requester.scopes, [scope], key, requester.groupsOf) === 'allowed';
    if (!user || !(may('access:servers') || may('start:servers'))) {
      res.status(404).send(renderPage('not-running.njk', {
        ...(await layoutFor(ctx, req, res, 'home')), status: 'no-access', path: path.slice(0, 200),
      }));
      return;
    }
    const row = await ctx.store.servers.get(user.id, server);
    const prefix = serverPrefix(user.name, server);
    if (row?.status === 'running' && row.url) {
      if (redirects >= MAX_ROUTE_REDIRECTS) {
        ctx.log.warn({ user: user.name, server }, 'the proxy does not route to a running server although the route was added');
        res.status(503).send(errorPage(503, 'The server is running, but the proxy does not send traffic to it. Try again in a moment; if it persists, stop and start the server.'));
        return;
      }
      // The route is missing although the server runs: put it back, then send the browser there again.
      await ctx.proxy.addRoute(prefix, row.url, { jupyterhub: true, user: user.name, server_name: server });
      const join = path.includes('?') ? '&' : '?';
      return res.redirect(302, `${path}${join}${REDIRECTS_PARAM}=${redirects + 1}`);
    }
    if (row?.status === 'starting') return res.redirect(302, pendingUrl(user.name, server, path));
    const own = active.user.name === user.name;
    res.status(424).send(renderPage('not-running.njk', {
      ...(await layoutFor(ctx, req, res, 'home')),
      status: row?.status === 'stopping' ? 'stopping' : row?.last_error ? 'failed' : 'stopped',
      subject: own ? `Your server${server ? ` ${server}` : ''}` : `The server ${server ? `${server} ` : ''}of ${user.name}`, own, mayStart: may('start:servers'), path: path.slice(0, 200), next: path,
      startAction: `/hub/spawn/${serverPath(user.name, server)}`,
    }));
  };
}

/** The progress page, returning to `next` (a path inside that server) when the server is ready. */
function pendingUrl(user: string, server: string, next: string): string {
  return `/hub/spawn-pending/${serverPath(user, server)}${next ? `?next=${encodeURIComponent(next)}` : ''}`;
}

/**
 * Where a start goes once the server is ready: a path inside that server (so the user lands back where they were
 * going), or the admin page the start came from (an admin starting someone's server stays on the list instead of
 * opening it); anything else is ''.
 */
function afterStart(next: string, user: string, server: string): string {
  const admin = adminReturnPath(next);
  if (admin) return admin;
  const prefix = serverPrefix(user, server);
  const safe = validateNextUrl(next, 'hub.invalid');
  return safe.startsWith(prefix) || `${safe}/` === prefix ? safe : '';
}

/** Whether a spawner puts a class profile's image, limits and shared volume into effect (containers and pods do; local processes cannot). */
export function appliesProfileResources(spawnerKind: string): boolean {
  return spawnerKind === 'docker' || spawnerKind === 'kubernetes';
}

/**
 * How far a start that already failed had come, so the progress page can mark the step that failed: a page opened
 * after the failure gets only the outcome from the event stream (as JupyterHub's does).
 */
function failedAt(progress: SpawnProgress | undefined): number | undefined {
  if (!progress?.events.at(-1)?.failed) return undefined;
  return progress.events.filter((e) => !e.failed).at(-1)?.progress;
}

/** How the progress page names a server: "your server", "your server lab1", "bea's server". */
function serverLabel(owner: string, server: string, viewer: string): string {
  const whose = owner === viewer ? 'your server' : `${owner}'s server`;
  return server ? `${whose} ${server}` : whose;
}

/** The profile a server was last started with, from its stored user options. */

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
