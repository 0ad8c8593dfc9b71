import type { Request } from 'express';
import type { Store } from '../db/index.js';
import type { ServiceRow, SessionRow, TokenRow, UserRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { checkScope, expandScopes, filterForList, formatScopes, parseScopes, tokenScopes, type GroupsOf, type ParsedScopes, type ScopeFilters, type ScopeOwner } from './scopes.js';
import { ADMIN_ROLE_SCOPES } from './roles.js';
import { RequesterCache } from './requester-cache.js';
import { secretDigest } from './tokens.js';
import { sharedScopes } from '../sharing/scopes.js';
import type { TokenService } from './token-service.js';
import type { SessionManager } from './sessions.js';

/** Who is asking, how they proved it, and what they may do: computed once per request. */
export interface Requester {
  kind: 'user' | 'service';
  name: string;
  user: UserRow | null;
  service: ServiceRow | null;
  token: TokenRow | null;
  session: SessionRow | null;
  /** Effective scopes: the credential's, intersected with its owner's current ones. */
  scopes: ParsedScopes;
  /** The credential's own expanded scopes with the identify scopes every token gets, for `GET /hub/api/user`. */
  tokenScopes: string[];
  /** Group membership of every user the scopes mention, so checks need no further I/O. */
  groupsOf: GroupsOf;
  /** Whether any scope is filtered by group: only then does a check need the target user's groups. */
  groupFiltered: boolean;
}

export interface Resource {
  user?: string;
  server?: string;
  group?: string;
  service?: string;
}

const AUTH_HEADER = /^(?:token|bearer)\s+(\S+)$/i;

/**
 * Resolves credentials into a Requester and answers "may this requester do this to that": the one place where
 * JupyterHub's scope model meets the DB, so handlers ask one question and never re-implement checks.
 */
export class Authorizer {
  constructor(
    private readonly store: Store,
    private readonly tokens: TokenService,
    private readonly sessions: SessionManager,
  ) {}

  private readonly cache = new RequesterCache<Requester>();
  private readonly sessionRequesters = new WeakMap<Request, Promise<Requester | null>>();

  /** The token from `Authorization: token X` or `Bearer X`, if any. Never from the URL. */
  headerToken(req: Request): string | null | undefined {
    const header = req.get('authorization');
    if (header === undefined) return undefined;
    const match = AUTH_HEADER.exec(header.trim());
    return match ? match[1]! : null;
  }

  /**
   * Raw scopes of a user before expansion: default roles, roles from config (directly or via groups), and the
   * servers shared with them (directly or with a group they are in), each filtered to its one server.
   */
  async userRoleScopes(user: UserRow): Promise<string[]> {
    const scopes = ['self', ...(user.admin ? ADMIN_ROLE_SCOPES : [])];
    scopes.push(...(await this.store.roles.scopesForUser(user.id)));
    scopes.push(...sharedScopes(await this.store.shares.heldBy(user.id)));
    return scopes;
  }

  async serviceRoleScopes(service: ServiceRow): Promise<string[]> {
    const scopes = service.admin ? [...ADMIN_ROLE_SCOPES] : [];
    scopes.push(...(await this.store.roles.scopesForService(service.id)));
    return scopes;
  }

  /** Expanded, parsed scopes an owner holds right now. */
  async ownerScopes(owner: { user: UserRow } | { service: ServiceRow }): Promise<{ expanded: Set<string>; owner: ScopeOwner }> {
    if ('user' in owner) {
      const who: ScopeOwner = { kind: 'user', name: owner.user.name };
      return { expanded: expandScopes(await this.userRoleScopes(owner.user), who), owner: who };
    }
    const who: ScopeOwner = { kind: 'service', name: owner.service.name };
    return { expanded: expandScopes(await this.serviceRoleScopes(owner.service), who), owner: who };
  }

  /**
   * A requester for an API token, or null if the token is unknown or expired. Resolving one costs several queries,
   * so it is kept (requester-cache.ts) until the DB's auth epoch moves; only the epoch is read on a repeat.
   */
  async fromToken(token: string): Promise<Requester | null> {
    const key = secretDigest(token);
    const epoch = await this.store.authEpoch.current();
    let requester = this.cache.get(key, epoch);
    if (requester && isExpired(requester.token!)) {
      this.cache.delete(key);
      return null;
    }
    if (!requester) {
      const resolved = await this.resolveToken(token);
      if (!resolved) return null;
      requester = resolved;
      this.cache.set(key, epoch, requester);
    }
    await this.tokens.touch(requester.token!);
    if (requester.user) await this.touchUser(requester.user);
    return requester;
  }

  private async resolveToken(token: string): Promise<Requester | null> {
    const row = await this.tokens.resolve(token);
    if (!row) return null;
    const user = row.user_id !== null ? await this.store.users.byId(row.user_id) : undefined;
    const service = row.service_id !== null ? await this.store.services.byId(row.service_id) : undefined;
    if (!user && !service) return null;
    const { expanded: ownerExpanded, owner } = await this.ownerScopes(user ? { user } : { service: service! });
    const raw = JSON.parse(row.scopes) as string[];
    const groupsOf = await this.groupLookup([ownerExpanded, expandScopes(raw, owner)]);
    const effective = tokenScopes(raw, owner, ownerExpanded, groupsOf);
    const scopes = parseScopes(effective);
    return {
      kind: user ? 'user' : 'service', name: user ? user.name : service!.name, user: user ?? null, service: service ?? null,
      token: row, session: null, scopes, tokenScopes: [...effective].sort(), groupsOf,
      groupFiltered: hasGroupFilter(scopes),
    };
  }

  /**
   * A requester for a browser session: the user's full scopes. Resolved once per request and kept with it: a page
   * asks in its login check, its handler and its layout, and each answer costs several queries.
   */
  fromSession(req: Request): Promise<Requester | null> {
    let pending = this.sessionRequesters.get(req);
    if (!pending) {
      pending = this.resolveSession(req);
      this.sessionRequesters.set(req, pending);
    }
    return pending;
  }

  private async resolveSession(req: Request): Promise<Requester | null> {
    const active = await this.sessions.current(req);
    if (!active) return null;
    const requester = await this.forUser(active.user);
    await this.touchUser(active.user);
    return { ...requester, session: active.session };
  }

  /** A requester holding a user's full scopes as they stand now, as their browser session does. */
  async forUser(user: UserRow): Promise<Requester> {
    const { expanded } = await this.ownerScopes({ user });
    const scopes = parseScopes(expanded);
    const groupFiltered = hasGroupFilter(scopes);
    // Groups only matter to a check through a group-filtered scope: without one, no lookup (a user holding many
    // shares would otherwise pay two queries per owner on every page).
    const groupsOf = groupFiltered ? await this.groupLookup([expanded]) : () => [];
    return {
      kind: 'user', name: user.name, user, service: null, token: null, session: null,
      scopes, tokenScopes: formatScopes(scopes), groupsOf, groupFiltered,
    };
  }

  /** Throws 403 or 404 as JupyterHub does, unless the requester holds one of the scopes for the resource. */
  async require(requester: Requester | null, anyOf: string[], resource: Resource = {}): Promise<Requester> {
    if (!requester) throw new HttpError(403, 'Missing or invalid credentials.');
    const groupsOf = resource.user ? await this.withUser(requester, resource.user) : requester.groupsOf;
    const verdict = checkScope(requester.scopes, anyOf, resource, groupsOf);
    if (verdict === 'allowed') return requester;
    if (verdict === 'filtered') throw new HttpError(404, 'No access to resources or resources not found');
    throw new HttpError(403, `Action is not authorized with current scopes; requires any of [${anyOf.join(', ')}]`);
  }

  /**
   * A list endpoint's access (upstream `needs_scope(…, post_filter=True)`): a filtered scope lists what its filters
   * name instead of being refused. 403 without the scope, or with a filter the list cannot apply.
   */
  requireList(requester: Requester | null, scope: string): { requester: Requester; only: ScopeFilters | null } {
    if (!requester) throw new HttpError(403, 'Missing or invalid credentials.');
    const access = filterForList(requester.scopes, scope);
    if (access.access === 'all') return { requester, only: null };
    if (access.access === 'some') return { requester, only: access.filters };
    if (access.reason === 'bad-filter') throw new HttpError(403, `${scope} cannot be filtered that way here`);
    throw new HttpError(403, `Action is not authorized with current scopes; requires any of [${scope}]`);
  }

  /** Like require, but a yes/no answer for optional parts of a response. */
  async allows(requester: Requester, anyOf: string[], resource: Resource = {}): Promise<boolean> {
    const groupsOf = resource.user ? await this.withUser(requester, resource.user) : requester.groupsOf;
    return checkScope(requester.scopes, anyOf, resource, groupsOf) === 'allowed';
  }

  /**
   * The group lookup a check on `user` needs. Only group-filtered scopes can depend on the target's groups, so
   * everyone else is answered from memory; a page of 200 users must not cost a query per key per user.
   */
  private async withUser(requester: Requester, user: string): Promise<GroupsOf> {
    if (!requester.groupFiltered) return requester.groupsOf;
    const row = await this.store.users.byName(user);
    const groups = row ? await this.store.groups.namesOfUser(row.id) : [];
    return (u) => (u === user ? groups : requester.groupsOf(u));
  }

  private async groupLookup(scopeSets: Array<ReadonlySet<string>>): Promise<GroupsOf> {
    const names = new Set<string>();
    for (const set of scopeSets) {
      for (const s of set) {
        const m = /!user=(.+)$/.exec(s) ?? /!server=([^/]+)\//.exec(s);
        if (m) names.add(m[1]!);
      }
    }
    const map = new Map<string, string[]>();
    for (const name of names) {
      const row = await this.store.users.byName(name);
      map.set(name, row ? await this.store.groups.namesOfUser(row.id) : []);
    }
    return (u) => map.get(u) ?? [];
  }

  /**
   * User activity from API and page use, written only when the stored value is older than the token service's
   * resolution (JupyterHub's `activity_resolution`). The row is updated in memory first: a cached row then shows
   * the write to the next request, and concurrent requests do not write twice.
   */
  private async touchUser(user: UserRow): Promise<void> {
    const now = Date.now();
    if (!this.tokens.activityIsStale(user.last_activity, now)) return;
    user.last_activity = new Date(now).toISOString();
    await this.store.users.touch(user.id, user.last_activity);
  }
}

function isExpired(token: TokenRow): boolean {
  return token.expires_at !== null && token.expires_at <= new Date().toISOString();
}

function hasGroupFilter(scopes: ParsedScopes): boolean {
  for (const grant of scopes.values()) if (grant !== 'all' && grant.group.size > 0) return true;
  return false;
}
