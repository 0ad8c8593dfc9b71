import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { UserRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { validateServerName } from '../servers/naming.js';
import { forgetOAuthClients } from '../servers/manager.js';
import type { SpawnEvent } from '../servers/progress.js';
import { idlePolicy, idleState } from '../servers/idle-culler.js';
import { hasRequestBody, isEmptyBody, parseInput, usernameFrom } from './validate.js';
import { serverModel } from './models.js';
import { auditBy, type AuditBy } from '../audit/record.js';

/** Seconds a start request waits before answering 202 (JupyterHub's slow_spawn_timeout). */
const SLOW_SPAWN_MS = 10_000;
const SLOW_STOP_MS = 10_000;
const KEEPALIVE_MS = 8_000;

const userOptionsBody = z.record(z.string(), z.unknown());
const deleteBody = z.strictObject({ remove: z.boolean().optional() });
const displayName = z.string().min(1).max(255).regex(/^[^\p{Cc}]*$/u, 'no control characters');
/** JupyterHub 6.0's ServerRequest, when the body uses its keys. */
const serverRequestBody = z.strictObject({ user_options: userOptionsBody.nullable().optional(), display_name: displayName.optional() });
const patchBody = z.strictObject({ name: z.string().max(255).optional(), user_options: userOptionsBody.optional(), display_name: displayName.nullable().optional() })
  .refine((b) => Object.keys(b).length > 0, 'set at least one of name, display_name, user_options');

/**
 * A start or create request's options (JupyterHub 6.0): a body with `user_options` or `display_name` is a
 * ServerRequest; any other body is the options themselves (JupyterHub before 6). No body, or `user_options: null`,
 * means "as last time": the server's previous options.
 */
function serverRequest(req: Request, previous: Record<string, unknown> | null): { userOptions: Record<string, unknown>; displayName?: string } {
  if (!hasRequestBody(req) || req.body === null || req.body === undefined) return { userOptions: previous ?? {} };
  const body: unknown = req.body;
  if (typeof body === 'object' && !Array.isArray(body) && body !== null && ('user_options' in body || 'display_name' in body)) {
    const parsed = parseInput(serverRequestBody, body, 'server request');
    return { userOptions: parsed.user_options ?? previous ?? {}, ...(parsed.display_name !== undefined && { displayName: parsed.display_name }) };
  }
  return { userOptions: parseInput(userOptionsBody, isEmptyBody(body) ? {} : body, 'user options') };
}

/** Start, stop and watch a user's default and named servers. */
export function serversRouter(ctx: HubContext): Router {
  const router = Router();
  const { store, authz, servers, config } = ctx;

  function serverNameFrom(req: Request): string {
    const name = String(req.params.server ?? '');
    if (name === '') return '';
    if (!config.allow_named_servers) throw new HttpError(400, 'Named servers are not enabled on this hub');
    const problem = validateServerName(name);
    if (problem) throw new HttpError(400, problem);
    return name;
  }

  async function target(req: Request, res: Response, anyOf: string[]): Promise<{ user: UserRow; server: string; by: AuditBy }> {
    const name = usernameFrom(String(req.params.name));
    const server = serverNameFrom(req);
    const requester = await authz.require(res.locals.requester ?? null, anyOf, { server: `${name}/${server}` });
    const user = await store.users.byName(name);
    if (!user) throw new HttpError(404, `No such user: ${name}`);
    return { user, server, by: auditBy(requester, req) };
  }

  async function checkNamedLimit(user: UserRow, server: string) {
    if (server && config.named_server_limit_per_user > 0 && !(await store.servers.get(user.id, server))
      && (await store.servers.countNamed(user.id)) >= config.named_server_limit_per_user) {
      throw new HttpError(400, `User ${user.name} already has the maximum of ${config.named_server_limit_per_user} named servers`);
    }
  }

  const previousOptions = (row: { user_options: string } | undefined) => (row ? JSON.parse(row.user_options) as Record<string, unknown> : null);

  const start = async (req: Request, res: Response) => {
    const { user, server, by } = await target(req, res, ['start:servers']);
    const existing = await store.servers.get(user.id, server);
    const { userOptions, displayName } = serverRequest(req, previousOptions(existing));
    await checkNamedLimit(user, server);
    if (displayName !== undefined) {
      if (existing) await store.servers.modifyStopped(existing.id, { displayName });
      else await store.servers.create(user.id, server, userOptions, displayName);
    }
    const outcome = await servers.start(user, server, userOptions, SLOW_SPAWN_MS, by);
    res.status(outcome.status === 'ready' ? 201 : 202).end();
  };

  /** JupyterHub 6.0: a named server created stopped, to start later with its options. */
  const create = async (req: Request, res: Response) => {
    const { user, server } = await target(req, res, ['start:servers']);
    if (!server) throw new HttpError(400, 'The default server always exists');
    const { userOptions, displayName } = serverRequest(req, null);
    await checkNamedLimit(user, server);
    const row = await store.servers.create(user.id, server, userOptions, displayName ?? null);
    if (!row) throw new HttpError(409, `${user.name} already has a server named ${server}`);
    res.status(201).json(serverModel(user.name, row, false));
  };

  /**
   * JupyterHub 6.0: rename a stopped named server or change its options or display name. Its shares and share links
   * follow it; the OAuth client and tokens of its old address go, so nothing keeps reaching it by the old name.
   */
  const modify = async (req: Request, res: Response) => {
    // The 6.0 spec's scope for it, which `servers` implies.
    const { user, server } = await target(req, res, ['start:servers']);
    const body = parseInput(patchBody, req.body ?? {}, 'request body');
    const row = await store.servers.get(user.id, server);
    if (!row) throw new HttpError(404, `No such server: ${user.name}/${server}`);
    if (row.status !== 'stopped') throw new HttpError(400, `${user.name}/${server} must be stopped before it is modified`);
    const rename = body.name !== undefined && body.name !== server ? body.name : undefined;
    if (rename !== undefined) {
      // Renaming the default server makes it a named one (and a new default appears), as in JupyterHub 6.1.
      if (!config.allow_named_servers) throw new HttpError(400, 'Named servers are not enabled on this hub');
      const problem = validateServerName(rename);
      if (problem) throw new HttpError(400, problem);
      if (await store.servers.get(user.id, rename)) throw new HttpError(409, `${user.name} already has a server named ${rename}`);
      if (!server) await checkNamedLimit(user, rename);
    }
    const changed = await store.transaction(async (tx) => {
      const updated = await tx.servers.modifyStopped(row.id, {
        ...(rename !== undefined && { name: rename }),
        ...(body.user_options !== undefined && { userOptions: body.user_options }),
        ...(body.display_name !== undefined && { displayName: body.display_name }),
      });
      if (!updated) throw new HttpError(400, `${user.name}/${server} must be stopped before it is modified`);
      if (rename !== undefined) {
        await tx.shares.renameServer(user.id, server, rename);
        await forgetOAuthClients(tx, user, server);
      }
      return updated;
    });
    res.json(serverModel(user.name, changed, false));
  };

  const stop = async (req: Request, res: Response) => {
    const { user, server, by } = await target(req, res, ['delete:servers']);
    const body = parseInput(deleteBody, isEmptyBody(req.body) ? {} : req.body);
    const row = await store.servers.get(user.id, server);
    if (body.remove) {
      if (!server) throw new HttpError(400, 'The default server cannot be removed');
      if (!row) throw new HttpError(404, `No such server: ${server}`);
    }
    let outcome: 'stopped' | 'pending' = 'stopped';
    if (row && row.status !== 'stopped') outcome = await servers.stop(user, server, SLOW_STOP_MS, by);
    else if (!body.remove && server && !row) throw new HttpError(404, `No such server: ${server}`);
    if (body.remove && outcome === 'stopped' && row) {
      // A later server of the same name is a new one: it inherits no shares or share codes.
      await store.transaction(async (tx) => {
        await tx.shares.deleteForServer(user.id, server);
        await tx.shares.deleteCodesFor(user.id, server);
        await tx.servers.delete(row.id);
      });
    }
    res.status(outcome === 'stopped' ? 204 : 202).end();
  };

  const progress = async (req: Request, res: Response) => {
    const { user, server } = await target(req, res, ['read:servers']);
    const row = await store.servers.get(user.id, server);
    if (!row && server) throw new HttpError(404, `No such server: ${server}`);
    const live = servers.progressOf(user.name, server);
    const finished = servers.finishedEvent(row, user.name);
    if (!live && !finished && row?.status !== 'starting') throw new HttpError(400, `${user.name}'s server is not starting`);

    res.status(200).set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
    const send = (e: SpawnEvent) => res.write(`data: ${JSON.stringify(e)}\n\n`);
    if (!live || live.done) {
      // Not spawning now: JupyterHub answers with the outcome alone (ready or failed). A start this hub has no
      // feed for (begun before a restart) is reported as under way.
      send(live?.events.at(-1) ?? finished ?? { progress: 50, message: 'Server is starting' });
      return void res.end();
    }
    for (const e of live.events) send(e);
    const keepalive = setInterval(() => res.write('\n\n'), KEEPALIVE_MS);
    const finish = () => {
      clearInterval(keepalive);
      unsubscribe();
      res.end();
    };
    const unsubscribe = live.subscribe((e) => {
      send(e);
      if (e.ready || e.failed) finish();
    });
    req.on('close', finish);
  };

  /** LabHub's own: when the server will be culled for inactivity, so pages can warn its user (docs/idle-culling.md). */
  const idle = async (req: Request, res: Response) => {
    const { user, server } = await target(req, res, ['read:servers']);
    const row = await store.servers.get(user.id, server);
    if (!row && server) throw new HttpError(404, `No such server: ${user.name}/${server}`);
    res.json(idleState(row, idlePolicy(config.idle_culling), Date.now()));
  };

  router.post('/users/:name/server', start);
  router.delete('/users/:name/server', stop);
  router.get('/users/:name/server/progress', progress);
  router.get('/users/:name/servers/:server', async (req, res) => {
    // JupyterHub 6.0: one server's model by name, stopped ones included while they exist.
    const { user, server } = await target(req, res, ['read:servers']);
    const row = await store.servers.get(user.id, server);
    if (!row) throw new HttpError(404, `No such server: ${user.name}/${server}`);
    const state = await authz.allows(res.locals.requester!, ['admin:server_state'], { server: `${user.name}/${server}` });
    res.json(serverModel(user.name, row, state));
  });
  router.post('/users/:name/servers/:server', start);
  router.put('/users/:name/servers/:server', create);
  router.patch(['/users/:name/servers/:server', '/users/:name/servers/'], modify);
  router.delete('/users/:name/servers/:server', stop);
  router.get('/users/:name/servers/:server/progress', progress);
  router.get('/users/:name/server/idle', idle);
  router.get('/users/:name/servers/:server/idle', idle);
  return router;
}
