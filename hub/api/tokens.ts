import { Router } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { Requester } from '../auth/identity.js';
import { HttpError } from '../errors.js';
import { excessTokenScopes, scopeProblem, tokenScopes } from '../auth/scopes.js';
import type { TokenRow, UserRow } from '../db/schema.js';
import { parseTokenApiId } from '../auth/tokens.js';
import { buildRoles, scopesForRoles, UnknownRoleError } from '../auth/roles.js';
import { tokenModel } from './models.js';
import { isEmptyBody, parseInput, usernameFrom } from './validate.js';
import { actorOf, recordAudit, sourceOf, userTarget } from '../audit/record.js';
import { routeOfClient } from '../servers/route-revocations.js';

const createBody = z.strictObject({
  // 0 and null both mean no expiry, as the spec says.
  expires_in: z.number().int().min(0).max(10 * 366 * 86_400).nullable().optional(),
  note: z.string().max(1000).optional(),
  scopes: z.array(z.string().max(255)).max(200).nullable().optional(),
  /** Deprecated since JupyterHub 3.0 but still accepted: the roles' scopes, resolved at once. */
  roles: z.array(z.string().max(255)).max(50).nullable().optional(),
});

/** A user's API tokens: list, create (shown once), read, revoke. */
export function tokensRouter(ctx: HubContext): Router {
  const router = Router();
  const { store, authz } = ctx;

  async function owner(raw: string) {
    const user = await store.users.byName(usernameFrom(raw));
    if (!user) throw new HttpError(404, `No such user: ${raw.slice(0, 64)}`);
    return user;
  }

  /** Renders tokens of one user with their effective scopes, as JupyterHub's token model lists them. */
  async function models(user: UserRow, rows: TokenRow[]) {
    const { expanded, owner: scopeOwner } = await authz.ownerScopes({ user });
    const groups = await store.groups.namesOfUser(user.id);
    const groupsOf = (u: string) => (u === user.name ? groups : []);
    return Promise.all(rows.map(async (r) => tokenModel(r, { kind: 'user', name: user.name }, await clientName(r.oauth_client_id),
      [...tokenScopes(JSON.parse(r.scopes) as string[], scopeOwner, expanded, groupsOf)].sort())));
  }

  async function clientName(clientId: string | null): Promise<string | null> {
    if (!clientId) return null;
    return (await store.oauth.client(clientId))?.description || clientId;
  }

  router.get('/users/:name/tokens', async (req, res) => {
    const name = usernameFrom(req.params.name);
    await authz.require(res.locals.requester ?? null, ['read:tokens'], { user: name });
    const user = await owner(name);
    await store.tokens.deleteExpired();
    const rows = await store.tokens.listForUser(user.id);
    res.json({ api_tokens: await models(user, rows) });
  });

  router.post('/users/:name/tokens', async (req, res) => {
    const name = usernameFrom(req.params.name);
    const requester = await authz.require(res.locals.requester ?? null, ['tokens'], { user: name });
    const user = await owner(name);
    const body = parseInput(createBody, isEmptyBody(req.body) ? {} : req.body);
    const scopes = requestedScopes(ctx, body.scopes, body.roles);
    const note = body.note ?? `Requested via api${requester.name !== user.name ? ` by ${requester.kind} ${requester.name}` : ''}`;
    const { token, row } = await issueUserToken(ctx, requester, user, { scopes, note, expiresIn: body.expires_in || null }, sourceOf(req));
    const [model] = await models(user, [row]);
    res.status(201).json({ ...model, token });
  });

  async function tokenOf(rawName: string, rawId: string) {
    const user = await owner(rawName);
    const id = parseTokenApiId(rawId);
    const row = id === null ? undefined : await store.tokens.byId(id);
    if (!row || row.user_id !== user.id || (row.expires_at !== null && row.expires_at <= new Date().toISOString())) {
      throw new HttpError(404, `No such token: ${rawId.slice(0, 32)}`);
    }
    return { user, row };
  }

  router.get('/users/:name/tokens/:id', async (req, res) => {
    const name = usernameFrom(req.params.name);
    await authz.require(res.locals.requester ?? null, ['read:tokens'], { user: name });
    const { user, row } = await tokenOf(name, req.params.id);
    res.json((await models(user, [row]))[0]);
  });

  router.delete('/users/:name/tokens/:id', async (req, res) => {
    const name = usernameFrom(req.params.name);
    const requester = await authz.require(res.locals.requester ?? null, ['tokens'], { user: name });
    const { user, row } = await tokenOf(name, req.params.id);
    await revokeUserToken(ctx, requester, user, row, sourceOf(req));
    res.status(204).end();
  });

  return router;
}

/**
 * The scopes a new token asks for, as JupyterHub's `APIToken.new` reads them: `scopes` or `roles` (not both), else
 * the `token` role's `inherit`. An empty list of either is a token that can only identify its owner.
 */
function requestedScopes(ctx: HubContext, scopes: string[] | null | undefined, roles: string[] | null | undefined): string[] {
  // Lists are truthy even when empty: only null and a missing key count as "not given".
  if (scopes && roles) throw new HttpError(400, 'Can only assign one of scopes or roles when creating tokens.');
  if (scopes) return scopes;
  if (!roles) return ['inherit'];
  try {
    return [...scopesForRoles(roles, buildRoles(ctx.config.roles))];
  } catch (err) {
    if (err instanceof UnknownRoleError) throw new HttpError(400, `No such role: ${err.roleName.slice(0, 64)}`);
    throw err;
  }
}

/**
 * Issues an API token to a user on a requester's behalf (the REST API and the token page): the scopes must be
 * valid and held by the user, and the expiry within the hub's maximum (which also applies when none is asked).
 */
export async function issueUserToken(ctx: HubContext, requester: Requester, user: UserRow,
  request: { scopes: string[]; note: string; expiresIn: number | null }, source: string | null): Promise<{ token: string; row: TokenRow }> {
  for (const scope of request.scopes) {
    const problem = scopeProblem(scope);
    if (problem) throw new HttpError(400, problem);
  }
  const { expanded: ownerScopes, owner: scopeOwner } = await ctx.authz.ownerScopes({ user });
  const excess = excessTokenScopes(request.scopes, scopeOwner, ownerScopes, requester.groupsOf);
  if (excess.length) throw new HttpError(400, `Not assigning requested scopes ${excess.join(', ')} not held by user ${user.name}`);
  let expiresIn = request.expiresIn;
  const max = ctx.config.token_expires_in_max_seconds;
  if (max > 0) {
    if (expiresIn === null) expiresIn = max;
    if (expiresIn > max) throw new HttpError(400, `expires_in must not exceed ${max} seconds`);
  }
  const issued = await ctx.store.transaction(async (tx) => {
    const made = await ctx.tokens.issue({ owner: { userId: user.id }, scopes: request.scopes, note: request.note, expiresIn }, tx);
    await recordAudit(tx, {
      action: 'token.create', actor: actorOf(requester), target: userTarget(user), source,
      details: { token_id: made.row.id, note: made.row.note, scopes: request.scopes, expires_at: made.row.expires_at },
    });
    return made;
  });
  ctx.log.info({ user: user.name, token_id: `a${issued.row.id}`, by: requester.name }, 'API token created');
  return issued;
}

/**
 * Revokes a token; revoking an OAuth token logs the user out of that client entirely, as JupyterHub does, and the
 * proxy refuses those tokens at the client's server or service from then on (an open tab included).
 */
export async function revokeUserToken(ctx: HubContext, requester: Requester, user: UserRow, row: TokenRow, source: string | null): Promise<void> {
  const cut = await ctx.store.transaction(async (tx) => {
    let hashes: string[] = [];
    if (row.oauth_client_id) hashes = await tx.tokens.deleteForUserAndClient(user.id, row.oauth_client_id);
    else await tx.tokens.delete(row.id);
    await recordAudit(tx, { action: 'token.revoke', actor: actorOf(requester), target: userTarget(user), source, details: { token_id: row.id } });
    return hashes;
  });
  const route = row.oauth_client_id ? await routeOfClient(ctx.store, row.oauth_client_id) : undefined;
  if (route) await ctx.revocations.refuse(route, cut);
}
