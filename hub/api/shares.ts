import { createHash, randomBytes } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { Requester } from '../auth/identity.js';
import type { GroupRow, UserRow } from '../db/schema.js';
import type { ShareCodeView, ShareTarget, ShareView } from '../db/shares.js';
import type { Store } from '../db/index.js';
import { auditBy, recordAudit } from '../audit/record.js';
import { HttpError } from '../errors.js';
import { oauthClientId, serverPrefix, validateServerName } from '../servers/naming.js';
import { shareScopesFrom, shownScopes } from '../sharing/scopes.js';
import { GROUP_NAME } from './groups.js';
import { hasRequestBody, paginatedBody, pagination, parseInput, requestUrl, usernameFrom } from './validate.js';

const scopeList = z.array(z.string().min(1).max(300)).max(50);
const grantBody = z.strictObject({ user: z.string().max(1024).optional(), group: z.string().max(1024).optional(), scopes: scopeList.optional() });
const codeBody = z.strictObject({
  scopes: scopeList.optional(),
  /** Seconds; JupyterHub's default is a day. At most a year: a share code is a bearer credential. */
  expires_in: z.number().int().positive().max(366 * 86_400).optional(),
});
const DEFAULT_CODE_SECONDS = 86_400;

/** Share codes are high-entropy random strings, so an unsalted digest is enough to look one up without keeping it. */
export const shareCodeDigest = (code: string) => createHash('sha256').update(code).digest('hex');

/**
 * JupyterHub 5.0's sharing API: shares of a server with users and groups, share codes, and the shares a user or
 * group holds. Every grant is checked here against the requester's scopes (`shares` on the server, and the right
 * to know the user or group named), and a share grants use of one server only (sharing/scopes.ts).
 */
export function sharesRouter(ctx: HubContext): Router {
  // Strict: `/shares/alice/` (her default server) and `/shares/alice` (all her servers) are different resources.
  const router = Router({ strict: true });
  const { store, authz } = ctx;

  async function ownerNamed(raw: string): Promise<UserRow> {
    const user = await store.users.byName(usernameFrom(raw));
    if (!user) throw new HttpError(404, `No such user: ${raw.slice(0, 64)}`);
    return user;
  }

  /** The owner and the server; a named server must exist (the default one always does). */
  async function sharedServer(req: Request, requester: Requester | null, anyOf: string[]): Promise<{ requester: Requester; owner: UserRow; server: string }> {
    const ownerName = usernameFrom(String(req.params.owner));
    const server = String(req.params.server ?? '');
    if (server && validateServerName(server)) throw new HttpError(404, `No such server: ${server.slice(0, 64)}`);
    const checked = await authz.require(requester, anyOf, { server: `${ownerName}/${server}` });
    const owner = await ownerNamed(ownerName);
    if (server && !(await store.servers.get(owner.id, server))) throw new HttpError(404, `${owner.name} has no server named ${server}`);
    return { requester: checked, owner, server };
  }

  async function serverModel(ownerName: string, ownerId: number, server: string) {
    const row = await store.servers.get(ownerId, server);
    const url = serverPrefix(ownerName, server);
    return {
      name: server, url, full_url: ctx.config.public_url ? new URL(url, ctx.config.public_url).toString() : null,
      ready: row?.status === 'running', user: { name: ownerName },
    };
  }

  async function shareModel(share: ShareView) {
    return {
      server: await serverModel(share.owner_name, share.owner_id, share.server_name),
      scopes: shownScopes(share),
      user: share.user_name === null ? null : { name: share.user_name },
      group: share.group_name === null ? null : { name: share.group_name },
      created_at: share.created,
    };
  }

  async function codeModel(code: ShareCodeView, ownerId: number) {
    return {
      server: await serverModel(code.owner_name, ownerId, code.server_name),
      scopes: shownScopes(code),
      id: `sc_${code.id}`,
      created_at: code.created,
      expires_at: code.expires_at,
      last_exchanged_at: code.last_exchanged_at,
      exchange_count: code.exchange_count,
    };
  }

  const page = async <T>(req: Request, res: Response, load: (offset: number, limit: number) => Promise<{ rows: T[]; total: number }>, model: (row: T) => Promise<unknown>) => {
    const { offset, limit } = pagination(req.query, true);
    const { rows, total } = await load(offset, limit);
    res.json(paginatedBody(await Promise.all(rows.map(model)), offset, limit, total, requestUrl(req)));
  };

  /**
   * Whom a grant names. Someone who may not know a user or group exists gets the same 404 as for a missing one, so
   * sharing cannot be used to probe for names.
   */
  async function recipient(requester: Requester, body: { user?: string | undefined; group?: string | undefined }, owner: UserRow): Promise<{ target: ShareTarget; row: UserRow | GroupRow; kind: 'user' | 'group' }> {
    if ((body.user === undefined) === (body.group === undefined)) throw new HttpError(400, "Specify exactly one of 'user' and 'group'");
    if (body.user !== undefined) {
      const name = usernameFrom(body.user);
      const user = await authz.allows(requester, ['read:users:name'], { user: name }) ? await store.users.byName(name) : undefined;
      if (!user) throw new HttpError(404, `No such user: ${body.user.slice(0, 64)}`);
      if (user.id === owner.id) throw new HttpError(400, `${owner.name} owns this server; a share is for someone else`);
      return { target: { userId: user.id }, row: user, kind: 'user' };
    }
    const name = body.group!;
    if (!GROUP_NAME.test(name)) throw new HttpError(400, 'Invalid group name');
    const group = await authz.allows(requester, ['read:groups:name'], { group: name }) ? await store.groups.byName(name) : undefined;
    if (!group) throw new HttpError(404, `No such group: ${name.slice(0, 64)}`);
    return { target: { groupId: group.id }, row: group, kind: 'group' };
  }

  /**
   * After a share shrinks or goes, the tokens its holders got from the server's OAuth client go too: the next
   * request from an open tab must ask the hub again, which then refuses.
   */
  async function cutAccess(tx: Store, owner: UserRow, server: string, share: Pick<ShareView, 'user_name' | 'group_name'>) {
    const client = oauthClientId(owner.uid, server);
    const holders = share.user_name !== null ? [share.user_name] : await tx.groups.byName(share.group_name!).then(async (g) => g ? (await tx.groups.membersOf([g.id])).get(g.id) ?? [] : []);
    for (const name of holders) {
      const user = await tx.users.byName(name);
      if (user) await tx.tokens.deleteForUserAndClient(user.id, client);
    }
  }

  const withOf = (share: Pick<ShareView, 'user_name' | 'group_name'>) => (share.user_name !== null
    ? { kind: 'user' as const, name: share.user_name } : { kind: 'group' as const, name: share.group_name! });

  async function revokeShare(tx: Store, requester: Requester, req: Request, owner: UserRow, server: string, share: ShareView, scopes: string[] | null) {
    const left = await tx.shares.revoke(share, scopes);
    const taken = left ? share.scopes.filter((s) => !left.scopes.includes(s)) : share.scopes;
    if (taken.includes('access:servers')) await cutAccess(tx, owner, server, share);
    await recordAudit(tx, {
      action: 'share.revoke', ...auditBy(requester, req), target: { kind: 'user', name: owner.name, uid: owner.uid },
      details: { server: `${owner.name}/${server}`, with: withOf(share), scopes: taken },
    });
    return left;
  }

  router.get('/shares/:owner', async (req, res) => {
    const ownerName = usernameFrom(req.params.owner);
    await authz.require(res.locals.requester ?? null, ['read:shares'], { user: ownerName });
    const owner = await ownerNamed(ownerName);
    await page(req, res, (offset, limit) => store.shares.list({ ownerId: owner.id }, offset, limit), shareModel);
  });

  router.get(['/shares/:owner/:server', '/shares/:owner/'], async (req, res) => {
    const { owner, server } = await sharedServer(req, res.locals.requester ?? null, ['read:shares']);
    await page(req, res, (offset, limit) => store.shares.list({ ownerId: owner.id, serverName: server }, offset, limit), shareModel);
  });

  router.post(['/shares/:owner/:server', '/shares/:owner/'], async (req, res) => {
    const { requester, owner, server } = await sharedServer(req, res.locals.requester ?? null, ['shares']);
    const body = parseInput(grantBody, hasRequestBody(req) ? req.body : {});
    const scopes = shareScopesFrom(body.scopes, owner.name, server);
    const { target, kind, row } = await recipient(requester, body, owner);
    const share = await store.transaction(async (tx) => {
      const granted = await tx.shares.grant(owner.id, server, target, scopes);
      await recordAudit(tx, {
        action: 'share.grant', ...auditBy(requester, req), target: { kind: 'user', name: owner.name, uid: owner.uid },
        details: { server: `${owner.name}/${server}`, with: { kind, name: row.name }, scopes },
      });
      return granted;
    });
    res.json(await shareModel(share));
  });

  router.patch(['/shares/:owner/:server', '/shares/:owner/'], async (req, res) => {
    const { requester, owner, server } = await sharedServer(req, res.locals.requester ?? null, ['shares']);
    const body = parseInput(grantBody, hasRequestBody(req) ? req.body : {});
    const scopes = body.scopes === undefined ? null : shareScopesFrom(body.scopes, owner.name, server);
    const { target } = await recipient(requester, body, owner);
    const share = await store.shares.one(owner.id, server, target);
    if (!share) return res.json({});
    const left = await store.transaction((tx) => revokeShare(tx, requester, req, owner, server, share, scopes));
    res.json(left ? await shareModel(left) : {});
  });

  router.delete(['/shares/:owner/:server', '/shares/:owner/'], async (req, res) => {
    const { requester, owner, server } = await sharedServer(req, res.locals.requester ?? null, ['shares']);
    await store.transaction(async (tx) => {
      for (const share of (await tx.shares.list({ ownerId: owner.id, serverName: server })).rows) {
        await revokeShare(tx, requester, req, owner, server, share, null);
      }
    });
    res.status(204).end();
  });

  router.get('/share-codes/:owner', async (req, res) => {
    const ownerName = usernameFrom(req.params.owner);
    await authz.require(res.locals.requester ?? null, ['read:shares'], { user: ownerName });
    const owner = await ownerNamed(ownerName);
    await page(req, res, (offset, limit) => store.shares.codes(owner.id, undefined, offset, limit), (c) => codeModel(c, owner.id));
  });

  router.get(['/share-codes/:owner/:server', '/share-codes/:owner/'], async (req, res) => {
    const { owner, server } = await sharedServer(req, res.locals.requester ?? null, ['read:shares']);
    await page(req, res, (offset, limit) => store.shares.codes(owner.id, server, offset, limit), (c) => codeModel(c, owner.id));
  });

  router.post(['/share-codes/:owner/:server', '/share-codes/:owner/'], async (req, res) => {
    const { requester, owner, server } = await sharedServer(req, res.locals.requester ?? null, ['shares']);
    const body = parseInput(codeBody, hasRequestBody(req) ? req.body : {});
    const scopes = shareScopesFrom(body.scopes, owner.name, server);
    const code = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + (body.expires_in ?? DEFAULT_CODE_SECONDS) * 1000).toISOString();
    const created = await store.transaction(async (tx) => {
      const row = await tx.shares.createCode({ ownerId: owner.id, serverName: server, codeHash: shareCodeDigest(code), scopes, expiresAt });
      await recordAudit(tx, {
        action: 'share_code.create', ...auditBy(requester, req), target: { kind: 'user', name: owner.name, uid: owner.uid },
        details: { server: `${owner.name}/${server}`, code_id: row.id, scopes, expires_at: expiresAt },
      });
      return row;
    });
    const acceptUrl = `/hub/accept-share?code=${code}`;
    res.json({
      ...(await codeModel(created, owner.id)), code, accept_url: acceptUrl,
      full_accept_url: ctx.config.public_url ? new URL(acceptUrl, ctx.config.public_url).toString() : null,
    });
  });

  router.delete(['/share-codes/:owner/:server', '/share-codes/:owner/'], async (req, res) => {
    const { requester, owner, server } = await sharedServer(req, res.locals.requester ?? null, ['shares']);
    const query = parseInput(z.object({ id: z.string().max(40).optional(), code: z.string().max(200).optional() }), req.query, 'query');
    if ((query.id === undefined) === (query.code === undefined)) throw new HttpError(400, "Specify exactly one of 'id' and 'code'");
    const numeric = query.id === undefined ? null : /^sc_(\d{1,15})$/.exec(query.id)?.[1];
    const code = query.code !== undefined ? await store.shares.code({ codeHash: shareCodeDigest(query.code) })
      : numeric ? await store.shares.code({ id: Number(numeric) }) : undefined;
    // Someone else's code, or another server's, is as unknown here as a missing one.
    if (code && code.owner_name === owner.name && code.server_name === server) {
      await store.transaction(async (tx) => {
        await tx.shares.deleteCode(code.id);
        await recordAudit(tx, {
          action: 'share_code.revoke', ...auditBy(requester, req), target: { kind: 'user', name: owner.name, uid: owner.uid },
          details: { server: `${owner.name}/${server}`, code_id: code.id },
        });
      });
    }
    res.status(204).end();
  });

  /** The shares a user or a group holds (`kind`), read and left through `users:shares` / `groups:shares`. */
  function heldRoutes(kind: 'users' | 'groups') {
    const scope = `${kind}:shares`;
    const resource = (name: string) => (kind === 'users' ? { user: name } : { group: name });
    const holder = async (raw: string) => {
      if (kind === 'users') {
        const name = usernameFrom(raw);
        return { name, find: async () => (await store.users.byName(name))?.id, filter: (id: number) => ({ userId: id }) };
      }
      if (!GROUP_NAME.test(raw)) throw new HttpError(400, 'Invalid group name');
      return { name: raw, find: async () => (await store.groups.byName(raw))?.id, filter: (id: number) => ({ groupId: id }) };
    };
    const found = async (h: Awaited<ReturnType<typeof holder>>) => {
      const id = await h.find();
      if (id === undefined) throw new HttpError(404, `No such ${kind === 'users' ? 'user' : 'group'}: ${h.name.slice(0, 64)}`);
      return h.filter(id);
    };

    router.get(`/${kind}/:name/shared`, async (req, res) => {
      const h = await holder(req.params.name!);
      await authz.require(res.locals.requester ?? null, [`read:${scope}`], resource(h.name));
      const filter = await found(h);
      await page(req, res, (offset, limit) => store.shares.list(filter, offset, limit), shareModel);
    });

    const one = async (req: Request, res: Response, anyOf: string[]) => {
      const h = await holder(String(req.params.name));
      const requester = await authz.require(res.locals.requester ?? null, anyOf, resource(h.name));
      const filter = await found(h);
      const owner = await ownerNamed(String(req.params.owner));
      const share = (await store.shares.list({ ...filter, ownerId: owner.id, serverName: String(req.params.server ?? '') }, 0, 1)).rows[0];
      if (!share) throw new HttpError(404, 'No such share');
      return { requester, owner, share };
    };

    router.get([`/${kind}/:name/shared/:owner/:server`, `/${kind}/:name/shared/:owner/`], async (req, res) => {
      const { share } = await one(req, res, [`read:${scope}`]);
      res.json(await shareModel(share));
    });

    router.delete([`/${kind}/:name/shared/:owner/:server`, `/${kind}/:name/shared/:owner/`], async (req, res) => {
      const { requester, owner, share } = await one(req, res, [scope]);
      await store.transaction((tx) => revokeShare(tx, requester, req, owner, share.server_name, share, null));
      res.status(204).end();
    });
  }
  heldRoutes('users');
  heldRoutes('groups');

  return router;
}
