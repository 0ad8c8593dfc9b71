import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { ShareCodeView, ShareFilter, ShareView } from '../db/shares.js';
import { auditBy } from '../audit/record.js';
import { HttpError } from '../errors.js';
import { serverPrefix } from '../servers/naming.js';
import { MAX_CODE_SECONDS, SharingPolicy, shareCodeDigest } from '../sharing/policy.js';
import { shareScopesFrom, shownScopes } from '../sharing/scopes.js';
import { GROUP_NAME } from './groups.js';
import { hasRequestBody, paginatedBody, pagination, parseInput, requestUrl, usernameFrom } from './validate.js';

const scopeList = z.array(z.string().min(1).max(300)).max(50);
const grantBody = z.strictObject({ user: z.string().max(1024).optional(), group: z.string().max(1024).optional(), scopes: scopeList.optional() });
const codeBody = z.strictObject({
  scopes: scopeList.optional(),
  /** Seconds; JupyterHub's default is a day. At most a year: a share code is a bearer credential. */
  expires_in: z.number().int().positive().max(MAX_CODE_SECONDS).optional(),
});
const codeQuery = z.object({ id: z.string().max(40).optional(), code: z.string().max(200).optional() });

/** A share's or a share code's server, as JupyterHub's SharedServer model shows it. */
async function sharedServerModel(ctx: HubContext, ownerName: string, ownerId: number, server: string) {
  const row = await ctx.store.servers.get(ownerId, server);
  const url = serverPrefix(ownerName, server);
  return {
    name: server, url, full_url: ctx.config.public_url ? new URL(url, ctx.config.public_url).toString() : null,
    ready: row?.status === 'running', user: { name: ownerName },
  };
}

async function shareModel(ctx: HubContext, share: ShareView) {
  return {
    server: await sharedServerModel(ctx, share.owner_name, share.owner_id, share.server_name),
    scopes: shownScopes(share),
    user: share.user_name === null ? null : { name: share.user_name },
    group: share.group_name === null ? null : { name: share.group_name },
    created_at: share.created,
  };
}

/**
 * JupyterHub 5.0's sharing API: shares of a server with users and groups, share codes, and the shares a user or
 * group holds. The decisions are the sharing policy's (sharing/policy.ts); this maps them to JupyterHub's routes.
 */
export function sharesRouter(ctx: HubContext): Router {
  // Strict: `/shares/alice/` (her default server) and `/shares/alice` (all her servers) are different resources.
  const router = Router({ strict: true });
  const { store, authz } = ctx;
  const sharing = new SharingPolicy(ctx);

  const at = (req: Request, res: Response, anyOf: string[]) =>
    sharing.server(res.locals.requester ?? null, usernameFrom(String(req.params.owner)), String(req.params.server ?? ''), anyOf);

  const ownerNamed = async (raw: string) => {
    const user = await store.users.byName(usernameFrom(raw));
    if (!user) throw new HttpError(404, `No such user: ${raw.slice(0, 64)}`);
    return user;
  };

  const codeModel = async (code: ShareCodeView, ownerId: number) => ({
    server: await sharedServerModel(ctx, code.owner_name, ownerId, code.server_name),
    scopes: shownScopes(code),
    id: `sc_${code.id}`,
    created_at: code.created,
    expires_at: code.expires_at,
    last_exchanged_at: code.last_exchanged_at,
    exchange_count: code.exchange_count,
  });

  const page = async <T>(req: Request, res: Response, load: (offset: number, limit: number) => Promise<{ rows: T[]; total: number }>, model: (row: T) => Promise<unknown>) => {
    const { offset, limit } = pagination(req.query, true);
    const { rows, total } = await load(offset, limit);
    res.json(paginatedBody(await Promise.all(rows.map(model)), offset, limit, total, requestUrl(req)));
  };
  const shares = (filter: ShareFilter) => (offset: number, limit: number) => store.shares.list(filter, offset, limit);
  const asModel = (share: ShareView) => shareModel(ctx, share);

  router.get('/shares/:owner', async (req, res) => {
    const ownerName = usernameFrom(req.params.owner);
    await authz.require(res.locals.requester ?? null, ['read:shares'], { user: ownerName });
    const owner = await ownerNamed(ownerName);
    await page(req, res, shares({ ownerId: owner.id }), asModel);
  });

  router.get(['/shares/:owner/:server', '/shares/:owner/'], async (req, res) => {
    const { owner, server } = await at(req, res, ['read:shares']);
    await page(req, res, shares({ ownerId: owner.id, serverName: server }), asModel);
  });

  router.post(['/shares/:owner/:server', '/shares/:owner/'], async (req, res) => {
    const shared = await at(req, res, ['shares']);
    const body = parseInput(grantBody, hasRequestBody(req) ? req.body : {});
    res.json(await asModel(await sharing.grant(shared, body, body.scopes, auditBy(shared.requester, req))));
  });

  router.patch(['/shares/:owner/:server', '/shares/:owner/'], async (req, res) => {
    const shared = await at(req, res, ['shares']);
    const body = parseInput(grantBody, hasRequestBody(req) ? req.body : {});
    const scopes = body.scopes === undefined ? null : shareScopesFrom(body.scopes, shared.owner.name, shared.server);
    const { target } = await sharing.recipient(shared.requester, body, shared.owner);
    const share = await store.shares.one(shared.owner.id, shared.server, target);
    if (!share) return res.json({});
    const left = await sharing.revoke(shared, share, scopes, auditBy(shared.requester, req));
    res.json(left ? await asModel(left) : {});
  });

  router.delete(['/shares/:owner/:server', '/shares/:owner/'], async (req, res) => {
    const shared = await at(req, res, ['shares']);
    await sharing.revokeAll(shared, auditBy(shared.requester, req));
    res.status(204).end();
  });

  router.get('/share-codes/:owner', async (req, res) => {
    const ownerName = usernameFrom(req.params.owner);
    await authz.require(res.locals.requester ?? null, ['read:shares'], { user: ownerName });
    const owner = await ownerNamed(ownerName);
    await page(req, res, (offset, limit) => store.shares.codes(owner.id, undefined, offset, limit), (c) => codeModel(c, owner.id));
  });

  router.get(['/share-codes/:owner/:server', '/share-codes/:owner/'], async (req, res) => {
    const { owner, server } = await at(req, res, ['read:shares']);
    await page(req, res, (offset, limit) => store.shares.codes(owner.id, server, offset, limit), (c) => codeModel(c, owner.id));
  });

  router.post(['/share-codes/:owner/:server', '/share-codes/:owner/'], async (req, res) => {
    const shared = await at(req, res, ['shares']);
    const body = parseInput(codeBody, hasRequestBody(req) ? req.body : {});
    const { code, row } = await sharing.createCode(shared, body.scopes, body.expires_in, auditBy(shared.requester, req));
    const acceptUrl = `/hub/accept-share?code=${code}`;
    res.json({
      ...(await codeModel(row, shared.owner.id)), code, accept_url: acceptUrl,
      full_accept_url: ctx.config.public_url ? new URL(acceptUrl, ctx.config.public_url).toString() : null,
    });
  });

  router.delete(['/share-codes/:owner/:server', '/share-codes/:owner/'], async (req, res) => {
    const shared = await at(req, res, ['shares']);
    const query = parseInput(codeQuery, req.query, 'query');
    if ((query.id === undefined) === (query.code === undefined)) throw new HttpError(400, "Specify exactly one of 'id' and 'code'");
    const numeric = query.id === undefined ? null : /^sc_(\d{1,15})$/.exec(query.id)?.[1];
    const code = query.code !== undefined ? await store.shares.code({ codeHash: shareCodeDigest(query.code) })
      : numeric ? await store.shares.code({ id: Number(numeric) }) : undefined;
    await sharing.revokeCode(shared, code, auditBy(shared.requester, req));
    res.status(204).end();
  });

  /** The shares a user or a group holds (`kind`), read and left through `users:shares` / `groups:shares`. */
  function heldRoutes(kind: 'users' | 'groups') {
    const scope = `${kind}:shares`;
    const holder = async (raw: string): Promise<{ name: string; resource: { user: string } | { group: string }; filter: () => Promise<ShareFilter> }> => {
      const missing = () => new HttpError(404, `No such ${kind === 'users' ? 'user' : 'group'}: ${raw.slice(0, 64)}`);
      const found = (id: number | undefined) => {
        if (id === undefined) throw missing();
        return id;
      };
      if (kind === 'users') {
        const name = usernameFrom(raw);
        return { name, resource: { user: name }, filter: async () => ({ userId: found((await store.users.byName(name))?.id) }) };
      }
      if (!GROUP_NAME.test(raw)) throw new HttpError(400, 'Invalid group name');
      return { name: raw, resource: { group: raw }, filter: async () => ({ groupId: found((await store.groups.byName(raw))?.id) }) };
    };

    router.get(`/${kind}/:name/shared`, async (req, res) => {
      const h = await holder(req.params.name!);
      await authz.require(res.locals.requester ?? null, [`read:${scope}`], h.resource);
      await page(req, res, shares(await h.filter()), asModel);
    });

    const one = async (req: Request, res: Response, anyOf: string[]) => {
      const h = await holder(String(req.params.name));
      const requester = await authz.require(res.locals.requester ?? null, anyOf, h.resource);
      const filter = await h.filter();
      const owner = await ownerNamed(String(req.params.owner));
      const server = String(req.params.server ?? '');
      const share = (await store.shares.list({ ...filter, ownerId: owner.id, serverName: server }, 0, 1)).rows[0];
      if (!share) throw new HttpError(404, 'No such share');
      return { requester, at: { owner, server }, share };
    };

    router.get([`/${kind}/:name/shared/:owner/:server`, `/${kind}/:name/shared/:owner/`], async (req, res) => {
      const { share } = await one(req, res, [`read:${scope}`]);
      res.json(await asModel(share));
    });

    router.delete([`/${kind}/:name/shared/:owner/:server`, `/${kind}/:name/shared/:owner/`], async (req, res) => {
      const { requester, at: shared, share } = await one(req, res, [scope]);
      await sharing.revoke(shared, share, null, auditBy(requester, req));
      res.status(204).end();
    });
  }
  heldRoutes('users');
  heldRoutes('groups');

  return router;
}
