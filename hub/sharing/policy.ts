import { createHash, randomBytes } from 'node:crypto';
import type { HubContext } from '../context.js';
import type { Requester } from '../auth/identity.js';
import type { AuditBy } from '../audit/record.js';
import { recordAudit } from '../audit/record.js';
import type { Store } from '../db/index.js';
import type { GroupRow, UserRow } from '../db/schema.js';
import type { ShareCodeView, ShareTarget, ShareView } from '../db/shares.js';
import { HttpError } from '../errors.js';
import { normalizeUsername } from '../auth/usernames.js';
import { oauthClientId, serverPrefix, validateServerName } from '../servers/naming.js';
import { shareScopesFrom } from './scopes.js';
import { GROUP_NAME } from '../api/groups.js';

const DEFAULT_CODE_SECONDS = 86_400;
export const MAX_CODE_SECONDS = 366 * 86_400;

/** Share codes are high-entropy random strings, so an unsalted digest is enough to look one up without keeping it. */
export const shareCodeDigest = (code: string) => createHash('sha256').update(code).digest('hex');

export interface SharedServer {
  owner: UserRow;
  server: string;
}

/**
 * Every sharing decision, for the REST API and the pages alike: who may share which server with whom, what a share
 * may carry (sharing/scopes.ts), and what a revocation takes away. Changes are recorded in the audit log in the
 * transaction that makes them.
 */
export class SharingPolicy {
  constructor(private readonly ctx: HubContext) {}

  /**
   * The owner and server a request names, when `requester` holds one of `anyOf` for it. A named server must exist
   * (the default one always does). Without the scope: JupyterHub's 403, or 404 when held for other servers only.
   */
  async server(requester: Requester | null, ownerName: string, server: string, anyOf: string[]): Promise<SharedServer & { requester: Requester }> {
    if (server && validateServerName(server)) throw new HttpError(404, `No such server: ${server.slice(0, 64)}`);
    const checked = await this.ctx.authz.require(requester, anyOf, { server: `${ownerName}/${server}` });
    const owner = await this.ctx.store.users.byName(ownerName);
    if (!owner) throw new HttpError(404, `No such user: ${ownerName.slice(0, 64)}`);
    if (server && !(await this.ctx.store.servers.get(owner.id, server))) throw new HttpError(404, `${owner.name} has no server named ${server}`);
    return { requester: checked, owner, server };
  }

  /**
   * Whom a grant names. Someone who may not know a user or group exists gets the same 404 as for a missing one, so
   * sharing cannot be used to probe for names.
   */
  async recipient(requester: Requester, who: { user?: string | undefined; group?: string | undefined }, owner: UserRow): Promise<{ target: ShareTarget; row: UserRow | GroupRow; kind: 'user' | 'group' }> {
    const { authz, store } = this.ctx;
    if ((who.user === undefined) === (who.group === undefined)) throw new HttpError(400, "Specify exactly one of 'user' and 'group'");
    if (who.user !== undefined) {
      const name = normalizeUsername(who.user);
      const user = name.length <= 255 && await authz.allows(requester, ['read:users:name'], { user: name }) ? await store.users.byName(name) : undefined;
      if (!user) throw new HttpError(404, `No such user: ${who.user.slice(0, 64)}`);
      if (user.id === owner.id) throw new HttpError(400, `${owner.name} owns this server; a share is for someone else`);
      return { target: { userId: user.id }, row: user, kind: 'user' };
    }
    const name = who.group!;
    if (!GROUP_NAME.test(name)) throw new HttpError(400, 'Invalid group name');
    const group = await authz.allows(requester, ['read:groups:name'], { group: name }) ? await store.groups.byName(name) : undefined;
    if (!group) throw new HttpError(404, `No such group: ${name.slice(0, 64)}`);
    return { target: { groupId: group.id }, row: group, kind: 'group' };
  }

  async grant(at: SharedServer & { requester: Requester }, who: { user?: string | undefined; group?: string | undefined }, scopes: string[] | undefined, by: AuditBy): Promise<ShareView> {
    const bare = shareScopesFrom(scopes, at.owner.name, at.server);
    const { target, kind, row } = await this.recipient(at.requester, who, at.owner);
    return this.ctx.store.transaction(async (tx) => {
      const granted = await tx.shares.grant(at.owner.id, at.server, target, bare);
      await recordAudit(tx, {
        action: 'share.grant', ...by, target: ownerTarget(at.owner),
        details: { server: `${at.owner.name}/${at.server}`, with: { kind, name: row.name }, scopes: bare },
      });
      return granted;
    });
  }

  /**
   * Takes `scopes` (bare; all when null) from a share; the share left, if any. Once that is committed, the proxy
   * refuses the tokens its holders had for the server, so open tabs lose access at once.
   */
  async revoke(at: SharedServer, share: ShareView, scopes: string[] | null, by: AuditBy): Promise<ShareView | null> {
    const { left, cut } = await this.ctx.store.transaction((tx) => this.revokeIn(tx, at, share, scopes, by));
    await this.ctx.revocations.refuse(serverPrefix(at.owner.name, at.server), cut);
    return left;
  }

  async revokeAll(at: SharedServer, by: AuditBy): Promise<void> {
    const cut = await this.ctx.store.transaction(async (tx) => {
      const hashes: string[] = [];
      for (const share of (await tx.shares.list({ ownerId: at.owner.id, serverName: at.server })).rows) {
        hashes.push(...(await this.revokeIn(tx, at, share, null, by)).cut);
      }
      return hashes;
    });
    await this.ctx.revocations.refuse(serverPrefix(at.owner.name, at.server), cut);
  }

  /** The revocation in `tx`: the share left, and the hashes of the tokens it cut, for the proxy once committed. */
  private async revokeIn(tx: Store, at: SharedServer, share: ShareView, scopes: string[] | null, by: AuditBy): Promise<{ left: ShareView | null; cut: string[] }> {
    const left = await tx.shares.revoke(share, scopes);
    const taken = left ? share.scopes.filter((s) => !left.scopes.includes(s)) : share.scopes;
    const cut = taken.includes('access:servers') ? await this.cutAccess(tx, at, share) : [];
    await recordAudit(tx, {
      action: 'share.revoke', ...by, target: ownerTarget(at.owner),
      details: { server: `${at.owner.name}/${at.server}`, with: withOf(share), scopes: taken },
    });
    return { left, cut };
  }

  /**
   * After a share shrinks or goes, the tokens its holders got from the server's OAuth client go too: the next
   * sign-in there asks the hub again, which then refuses. Returns the deleted tokens' hashes.
   */
  private async cutAccess(tx: Store, at: SharedServer, share: ShareView): Promise<string[]> {
    const client = oauthClientId(at.owner.uid, at.server);
    let holders: string[] = share.user_name !== null ? [share.user_name] : [];
    if (share.group_name !== null) {
      const group = await tx.groups.byName(share.group_name);
      holders = group ? (await tx.groups.membersOf([group.id])).get(group.id) ?? [] : [];
    }
    const hashes: string[] = [];
    for (const name of holders) {
      const user = await tx.users.byName(name);
      if (user) hashes.push(...await tx.tokens.deleteForUserAndClient(user.id, client));
    }
    return hashes;
  }

  /** A new share code; the code itself is returned once and only its digest is kept. */
  async createCode(at: SharedServer, scopes: string[] | undefined, expiresIn: number | undefined, by: AuditBy): Promise<{ code: string; row: ShareCodeView }> {
    const bare = shareScopesFrom(scopes, at.owner.name, at.server);
    const code = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + (expiresIn ?? DEFAULT_CODE_SECONDS) * 1000).toISOString();
    const row = await this.ctx.store.transaction(async (tx) => {
      const created = await tx.shares.createCode({ ownerId: at.owner.id, serverName: at.server, codeHash: shareCodeDigest(code), scopes: bare, expiresAt });
      await recordAudit(tx, {
        action: 'share_code.create', ...by, target: ownerTarget(at.owner),
        details: { server: `${at.owner.name}/${at.server}`, code_id: created.id, scopes: bare, expires_at: expiresAt },
      });
      return created;
    });
    return { code, row };
  }

  /** Revokes a code of this server; someone else's code, or another server's, is left alone as if unknown. */
  async revokeCode(at: SharedServer, code: ShareCodeView | undefined, by: AuditBy): Promise<void> {
    if (!code || code.owner_name !== at.owner.name || code.server_name !== at.server) return;
    await this.ctx.store.transaction(async (tx) => {
      await tx.shares.deleteCode(code.id);
      await recordAudit(tx, { action: 'share_code.revoke', ...by, target: ownerTarget(at.owner), details: { server: `${at.owner.name}/${at.server}`, code_id: code.id } });
    });
  }

  /** `user` accepts a share code: a share for them with the code's scopes. Returns the shared server. */
  async accept(rawCode: string, user: UserRow, by: AuditBy): Promise<SharedServer> {
    const { store } = this.ctx;
    const code = await this.liveCode(rawCode);
    if (code.owner_name === user.name) throw new HttpError(400, 'This is your own server; share links are for other people.');
    const owner = await store.users.byName(code.owner_name);
    if (!owner) throw new HttpError(404, 'The owner of this server no longer exists.');
    await store.transaction(async (tx) => {
      await tx.shares.grant(owner.id, code.server_name, { userId: user.id }, code.scopes);
      await tx.shares.codeExchanged(code.id);
      await recordAudit(tx, {
        action: 'share.grant', ...by, target: ownerTarget(owner),
        details: { server: `${owner.name}/${code.server_name}`, with: { kind: 'user', name: user.name }, scopes: code.scopes, via: 'code' },
      });
    });
    return { owner, server: code.server_name };
  }

  async liveCode(raw: string): Promise<ShareCodeView> {
    const code = raw && raw.length <= 200 ? await this.ctx.store.shares.code({ codeHash: shareCodeDigest(raw) }) : undefined;
    if (!code) throw new HttpError(404, 'This share link is not valid: it expired, was revoked, or was mistyped. Ask its owner for a new one.');
    return code;
  }
}

const ownerTarget = (owner: UserRow) => ({ kind: 'user' as const, name: owner.name, uid: owner.uid });

const withOf = (share: Pick<ShareView, 'user_name' | 'group_name'>) => (share.user_name !== null
  ? { kind: 'user' as const, name: share.user_name } : { kind: 'group' as const, name: share.group_name! });
