/**
 * JupyterHub 5.5.1's scope model (`jupyterhub/scopes.py`) as pure functions.
 *
 * Vocabulary, as upstream:
 * - raw scopes may hold metascopes (`self`, `inherit`) and bare filters (`!user`);
 * - expanded scopes have subscopes added, metascopes and bare filters resolved for an owner;
 * - parsed scopes map each base scope to `'all'` or to the resources it is limited to.
 *
 * Clients (jupyterhub-singleuser, jupyterhub-idle-culler, JupyterLab) read scope strings and rely on
 * 403-versus-404 answers, so names, expansion and filter resolution follow upstream exactly.
 */

/**
 * Every scope and its direct subscopes, in upstream's order. Expansion follows subscopes transitively.
 * `(no_scope)`, `self` and `inherit` are metascopes: valid to request, never checked directly.
 */
const SUBSCOPES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  '(no_scope)': [],
  self: [],
  inherit: [],
  'admin-ui': [],
  'admin:users': ['admin:auth_state', 'users', 'read:roles:users', 'delete:users'],
  'admin:auth_state': [],
  users: ['read:users', 'list:users', 'users:activity'],
  'delete:users': [],
  'list:users': ['read:users:name'],
  'read:users': ['read:users:name', 'read:users:groups', 'read:users:activity'],
  'read:users:name': [],
  'read:users:groups': [],
  'read:users:activity': [],
  'read:roles': ['read:roles:users', 'read:roles:services', 'read:roles:groups'],
  'read:roles:users': [],
  'read:roles:services': [],
  'read:roles:groups': [],
  'users:activity': ['read:users:activity'],
  'admin:servers': ['admin:server_state', 'servers'],
  'admin:server_state': [],
  servers: ['read:servers', 'delete:servers', 'start:servers'],
  'read:servers': ['read:users:name'],
  // JupyterHub 6.0: starting (and editing) servers without the power to stop them.
  'start:servers': [],
  'delete:servers': [],
  tokens: ['read:tokens'],
  'read:tokens': [],
  'admin:groups': ['groups', 'read:roles:groups', 'delete:groups'],
  groups: ['read:groups', 'list:groups'],
  'list:groups': ['read:groups:name'],
  'read:groups': ['read:groups:name'],
  'read:groups:name': [],
  'delete:groups': [],
  'admin:services': ['list:services', 'read:services', 'read:roles:services'],
  'list:services': ['read:services:name'],
  'read:services': ['read:services:name'],
  'read:services:name': [],
  'read:hub': [],
  'access:servers': [],
  'access:services': [],
  'users:shares': ['read:users:shares'],
  'read:users:shares': [],
  'groups:shares': ['read:groups:shares'],
  'read:groups:shares': [],
  'read:shares': [],
  shares: ['access:servers', 'read:shares', 'users:shares', 'groups:shares'],
  proxy: [],
  shutdown: [],
  'read:metrics': [],
  // LabHub's own: the audit log (docs/audit.md). Filtered by group, a teacher reads their class's records.
  'read:audit': [],
  // LabHub's own: usage accounting (docs/usage.md). `self` reads one's own; filtered by group, a teacher their class's.
  'read:usage': [],
  // LabHub's own: setting quotas. Never filtered: whoever a quota binds must not be able to raise it.
  'admin:quotas': ['read:usage'],
  // LabHub's own: making a link that sets a (non-admin) user's password. Deliberately no subscope of admin:users.
  'admin:users:passwords': [],
});

/** The scope that lets a non-admin make invitation links, which set the invited user's password. */
export const PASSWORDS_SCOPE = 'admin:users:passwords';

export const ALL_SCOPES: readonly string[] = Object.freeze(Object.keys(SUBSCOPES));

/** What `self` means for user u: each of these with `!user=u`. `shares` is deliberately absent upstream. */
const SELF_SCOPES: readonly string[] = Object.freeze([
  'read:users',
  'read:users:name',
  'read:users:groups',
  'users:shares',
  'read:users:shares',
  'read:shares',
  'users:activity',
  'read:users:activity',
  'servers',
  'delete:servers',
  'start:servers',
  'read:servers',
  'tokens',
  'read:tokens',
  'access:servers',
  'read:usage',
]);

const METASCOPES: ReadonlySet<string> = new Set(['(no_scope)', 'self', 'inherit']);

/** Upstream's `custom_scopes` name rule; LabHub has no custom scope definitions, so they carry no subscopes. */
const CUSTOM_SCOPE_PATTERN = /^custom:[a-z0-9][a-z0-9_\-*:]+[a-z0-9_*]$/;

export const FILTER_KINDS = ['user', 'group', 'server', 'service'] as const;
export type FilterKind = (typeof FILTER_KINDS)[number];

/** Bare filters name "the owner's own" resource and are resolved during expansion. There is no bare `!group`. */
const BARE_FILTERS: ReadonlySet<string> = new Set(['user', 'server', 'service']);

export interface ScopeFilters {
  user: Set<string>;
  group: Set<string>;
  /** `"<user>/<server name>"`; the default server is `"<user>/"`. */
  server: Set<string>;
  service: Set<string>;
}

export type ParsedScopes = Map<string, 'all' | ScopeFilters>;

/** Group names of a user. Called only when a `!group=` filter must be weighed against a user or server. */
export type GroupsOf = (user: string) => readonly string[];

/**
 * Whose scopes are being expanded. `server` and `service` name the OAuth client that issued a token:
 * bare `!server` resolves to that server (`"u/s"`), bare `!service` to that service (or to the owning service).
 */
export interface ScopeOwner {
  kind: 'user' | 'service';
  name: string;
  server?: string;
  service?: string;
}

/** The resource a request acts on; at most one key. `server` is `"<user>/<server name>"`. */
export interface ScopeResource {
  user?: string;
  server?: string;
  group?: string;
  service?: string;
}

export type ScopeCheck = 'allowed' | 'no-scope' | 'filtered';

interface SplitScope {
  base: string;
  /** Text after the first `!`, or null when unfiltered. */
  filter: string | null;
}

function splitScope(scope: string): SplitScope {
  const bang = scope.indexOf('!');
  return bang < 0 ? { base: scope, filter: null } : { base: scope.slice(0, bang), filter: scope.slice(bang + 1) };
}

function isKnownBase(base: string): boolean {
  return Object.hasOwn(SUBSCOPES, base) || CUSTOM_SCOPE_PATTERN.test(base);
}

function isFilterKind(kind: string): kind is FilterKind {
  return (FILTER_KINDS as readonly string[]).includes(kind);
}

// A value holding `!` would read as a second filter; control characters never belong in names.
// eslint-disable-next-line no-control-regex
const BAD_FILTER_VALUE = /[!\u0000-\u001f\u007f]/;
/** A server filter names exactly one user and one server name (which may be empty: the default server). */
const SERVER_FILTER_VALUE = /^[^/]+\/[^/]*$/;

function filterProblem(scope: string, filter: string): string | null {
  if (BARE_FILTERS.has(filter)) return null;
  const eq = filter.indexOf('=');
  const kind = eq < 0 ? filter : filter.slice(0, eq);
  if (eq < 0 || !isFilterKind(kind)) return `Scope filter '!${filter}' in scope '${scope}' does not exist`;
  const value = filter.slice(eq + 1);
  if (value === '') return `Scope filter '!${filter}' in scope '${scope}' has an empty value`;
  if (BAD_FILTER_VALUE.test(value)) return `Scope '${scope}' has more than one filter or a malformed value`;
  if (kind === 'server' && !SERVER_FILTER_VALUE.test(value)) {
    return `Scope filter '!${filter}' in scope '${scope}' must name a server as <user>/<server name>`;
  }
  return null;
}

/** Why a raw scope is not acceptable (in a role, a token request or an OAuth request), or null if it is. */
export function scopeProblem(scope: string): string | null {
  const { base, filter } = splitScope(scope);
  if (!isKnownBase(base)) {
    if (base === 'all') return "Draft scope 'all' is now called 'inherit'";
    return `Scope '${scope}' does not exist`;
  }
  if (filter === null) return null;
  if (METASCOPES.has(base)) return `Metascope '${base}' does not take a filter`;
  return filterProblem(scope, filter);
}

export function isValidScope(scope: string): boolean {
  return scopeProblem(scope) === null;
}

/**
 * Scopes asked for in an OAuth `scope` parameter (space-separated). `identify` was the only scope before
 * JupyterHub 3.0; old clients still send it, and it grants nothing beyond the identify scopes every token gets.
 */
export function requestedOAuthScopes(scopeParam: string | undefined): Set<string> {
  const requested = new Set((scopeParam ?? '').split(' ').filter((s) => s !== ''));
  requested.delete('identify');
  return requested;
}

function subscopesOf(base: string): readonly string[] {
  return (Object.hasOwn(SUBSCOPES, base) ? SUBSCOPES[base] : undefined) ?? [];
}

/** A scope and its transitive subscopes, with its filter carried onto each. */
function expandOne(scope: string): string[] {
  const { base, filter } = splitScope(scope);
  const names = new Set<string>();
  const pending = [base];
  while (pending.length > 0) {
    const name = pending.pop() as string;
    if (names.has(name)) continue;
    names.add(name);
    pending.push(...subscopesOf(name));
  }
  if (filter === null) return [...names];
  // A server filter cannot limit user-level subscopes (read:servers → read:users:name), so upstream drops them.
  const serverFilter = filter.startsWith('server');
  return [...names].filter((name) => !(serverFilter && name.startsWith('read:user'))).map((name) => `${name}!${filter}`);
}

function bareFilterTargets(owner: ScopeOwner | undefined): Record<string, string | undefined> {
  return {
    user: owner?.kind === 'user' ? owner.name : undefined,
    service: owner?.service ?? (owner?.kind === 'service' ? owner.name : undefined),
    server: owner?.server,
  };
}

/**
 * Raw scopes → expanded scopes for an owner (upstream `expand_scopes`): subscopes added, `self` and bare
 * filters resolved. A bare filter or `self` with nothing to resolve to is dropped, as upstream does.
 * `inherit` is kept as is; `tokenScopes` gives it its meaning.
 */
export function expandScopes(scopes: Iterable<string>, owner?: ScopeOwner): Set<string> {
  const targets = bareFilterTargets(owner);
  const expanded = new Set<string>();
  for (const raw of scopes) {
    for (const scope of expandOne(raw)) {
      const { base, filter } = splitScope(scope);
      if (filter !== null && BARE_FILTERS.has(filter)) {
        const target = targets[filter];
        if (target !== undefined) expanded.add(`${base}!${filter}=${target}`);
      } else if (scope === 'self') {
        if (owner?.kind === 'user') for (const s of SELF_SCOPES) expanded.add(`${s}!user=${owner.name}`);
      } else {
        expanded.add(scope);
      }
    }
  }
  return reduceScopes(expanded);
}

function emptyFilters(): ScopeFilters {
  return { user: new Set(), group: new Set(), server: new Set(), service: new Set() };
}

/** Expanded scopes → parsed form. Throws on a bare or unknown filter: expand first. */
export function parseScopes(expanded: Iterable<string>): ParsedScopes {
  const parsed: ParsedScopes = new Map();
  for (const scope of expanded) {
    const { base, filter } = splitScope(scope);
    if (filter === null) {
      parsed.set(base, 'all');
      continue;
    }
    const eq = filter.indexOf('=');
    const kind = filter.slice(0, eq);
    const value = filter.slice(eq + 1);
    if (eq < 0 || !isFilterKind(kind) || value === '') {
      throw new Error(`Unexpanded or invalid scope filter in '${scope}'`);
    }
    let filters = parsed.get(base);
    if (filters === 'all') continue;
    if (filters === undefined) parsed.set(base, (filters = emptyFilters()));
    filters[kind].add(value);
  }
  return parsed;
}

/** Parsed scopes → sorted expanded strings, as `/hub/api/user` and token models show them. */
export function formatScopes(parsed: ParsedScopes): string[] {
  const out: string[] = [];
  for (const [base, filters] of parsed) {
    if (filters === 'all') {
      out.push(base);
      continue;
    }
    for (const kind of FILTER_KINDS) for (const value of filters[kind]) out.push(`${base}!${kind}=${value}`);
  }
  return out.sort();
}

/** Drops scopes covered by others, e.g. `access:services!service=x` beside `access:services`. */
export function reduceScopes(expanded: Iterable<string>): Set<string> {
  return new Set(formatScopes(parseScopes(expanded)));
}

function userOfServer(server: string): string {
  const slash = server.indexOf('/');
  return slash < 0 ? server : server.slice(0, slash);
}

function memoGroups(groupsOf: GroupsOf): (user: string) => ReadonlySet<string> {
  const seen = new Map<string, ReadonlySet<string>>();
  return (user) => {
    let groups = seen.get(user);
    if (groups === undefined) seen.set(user, (groups = new Set(groupsOf(user))));
    return groups;
  };
}

function meets(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const x of a) if (b.has(x)) return true;
  return false;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

function copyFilters(f: ScopeFilters): ScopeFilters {
  return { user: new Set(f.user), group: new Set(f.group), server: new Set(f.server), service: new Set(f.service) };
}

function intersectFilters(a: ScopeFilters, b: ScopeFilters, groups: (user: string) => ReadonlySet<string>): ScopeFilters {
  const common = emptyFilters();
  for (const kind of FILTER_KINDS) for (const v of a[kind]) if (b[kind].has(v)) common[kind].add(v);
  // Resolve the server ⊂ user ⊂ group hierarchy both ways: `!server=u/s` survives against `!user=u`,
  // or against `!group=g` when u is in g; `!user=u` survives against `!group=g` when u is in g.
  for (const [x, y] of [
    [a, b],
    [b, a],
  ] as const) {
    if (x.server.size > 0 && !sameSet(x.server, y.server)) {
      for (const server of x.server) {
        if (common.server.has(server)) continue;
        const user = userOfServer(server);
        if (y.user.has(user) || (y.group.size > 0 && meets(groups(user), y.group))) common.server.add(server);
      }
    }
    if (x.user.size > 0 && y.group.size > 0 && !sameSet(x.user, y.user)) {
      for (const user of x.user) if (!common.user.has(user) && meets(groups(user), y.group)) common.user.add(user);
    }
  }
  return common;
}

function isEmpty(f: ScopeFilters): boolean {
  return FILTER_KINDS.every((kind) => f[kind].size === 0);
}

/** What both scope sets permit (upstream `_intersect_expanded_scopes`, with group membership resolved). */
export function intersectScopes(a: ParsedScopes, b: ParsedScopes, groupsOf: GroupsOf): ParsedScopes {
  const groups = memoGroups(groupsOf);
  const out: ParsedScopes = new Map();
  for (const [base, fa] of a) {
    const fb = b.get(base);
    if (fb === undefined) continue;
    if (fa === 'all') out.set(base, fb === 'all' ? 'all' : copyFilters(fb));
    else if (fb === 'all') out.set(base, copyFilters(fa));
    else {
      const common = intersectFilters(fa, fb, groups);
      if (!isEmpty(common)) out.set(base, common);
    }
  }
  return out;
}

interface Target {
  kind: FilterKind;
  value: string;
}

function targetOf(resource: ScopeResource): Target | null {
  const present = FILTER_KINDS.filter((kind) => resource[kind] !== undefined);
  if (present.length > 1) throw new Error(`A scope check takes one resource, got ${present.join(', ')}`);
  const kind = present[0];
  return kind === undefined ? null : { kind, value: resource[kind] as string };
}

/**
 * Whether `parsed` grants `scope` on one resource (upstream `has_scope` / `check_scope_filter`).
 * With no resource, only unfiltered access counts.
 */
export function hasScope(parsed: ParsedScopes, scope: string, resource: ScopeResource, groupsOf: GroupsOf): boolean {
  const target = targetOf(resource);
  const filters = parsed.get(scope);
  if (filters === undefined) return false;
  if (filters === 'all') return true;
  if (target === null) return false;
  if (filters[target.kind].has(target.value)) return true;
  if (target.kind !== 'user' && target.kind !== 'server') return false;
  const user = target.kind === 'server' ? userOfServer(target.value) : target.value;
  if (target.kind === 'server' && filters.user.has(user)) return true;
  return filters.group.size > 0 && groupsOf(user).some((g) => filters.group.has(g));
}

/**
 * Upstream's `needs_scope` decision for an endpoint requiring any of `anyOf` on `resource`.
 * 'no-scope' → 403 "Action is not authorized with current scopes; requires any of [...]";
 * 'filtered' → 404 "No access to resources or resources not found" (the scope is held, but not for this
 * resource, and a missing resource must look the same).
 */
export function checkScope(
  parsed: ParsedScopes,
  anyOf: readonly string[],
  resource: ScopeResource,
  groupsOf: GroupsOf,
): ScopeCheck {
  if (anyOf.some((scope) => hasScope(parsed, scope, resource, groupsOf))) return 'allowed';
  if (targetOf(resource) !== null && anyOf.some((scope) => parsed.has(scope))) return 'filtered';
  return 'no-scope';
}

export type ListAccess =
  | { access: 'all' }
  /** Only these resources may be listed; the caller filters its query with them. */
  | { access: 'some'; filters: ScopeFilters }
  /** 'no-scope' → 403 "…requires any of [scope]"; 'bad-filter' → plain 403 (a filter the list cannot honour). */
  | { access: 'denied'; reason: 'no-scope' | 'bad-filter' };

/**
 * Filter kinds a list endpoint can apply. Upstream refuses others rather than widening them to
 * everything (e.g. `list:users!server=u/s` → 403). `list:services` just ignores non-service filters.
 */
const LIST_FILTER_KINDS: Readonly<Record<string, readonly FilterKind[]>> = {
  'list:users': ['user', 'group'],
  'list:groups': ['group'],
  'read:audit': ['user', 'group'],
  'read:usage': ['user', 'group'],
};

/** Access of a list endpoint (upstream `needs_scope(scope, post_filter=True)` plus the handler's check). */
export function filterForList(parsed: ParsedScopes, scope: string): ListAccess {
  const filters = parsed.get(scope);
  if (filters === undefined) return { access: 'denied', reason: 'no-scope' };
  if (filters === 'all') return { access: 'all' };
  const allowed = Object.hasOwn(LIST_FILTER_KINDS, scope) ? LIST_FILTER_KINDS[scope] : undefined;
  if (allowed && FILTER_KINDS.some((kind) => filters[kind].size > 0 && !allowed.includes(kind))) {
    return { access: 'denied', reason: 'bad-filter' };
  }
  return { access: 'some', filters: copyFilters(filters) };
}

export type UserModelKey =
  | 'kind'
  | 'name'
  | 'admin'
  | 'roles'
  | 'groups'
  | 'server'
  | 'pending'
  | 'created'
  | 'last_activity'
  | 'servers'
  | 'auth_state';
export type GroupModelKey = 'kind' | 'name' | 'roles' | 'users' | 'properties';
export type ServiceModelKey =
  | 'kind'
  | 'name'
  | 'roles'
  | 'admin'
  | 'url'
  | 'prefix'
  | 'command'
  | 'pid'
  | 'info'
  | 'display';

/** Upstream `user_model` access map: each scope reveals these keys. */
const USER_MODEL_ACCESS: Readonly<Record<string, readonly UserModelKey[]>> = {
  'read:users': ['kind', 'name', 'admin', 'roles', 'groups', 'server', 'pending', 'created', 'last_activity'],
  'read:users:name': ['kind', 'name', 'admin'],
  'read:users:groups': ['kind', 'name', 'groups'],
  'read:users:activity': ['kind', 'name', 'last_activity'],
  'read:servers': ['kind', 'name', 'servers'],
  'read:roles:users': ['kind', 'name', 'roles', 'admin'],
  'admin:auth_state': ['kind', 'name', 'auth_state'],
};

const GROUP_MODEL_ACCESS: Readonly<Record<string, readonly GroupModelKey[]>> = {
  'read:groups': ['kind', 'name', 'properties', 'users'],
  'read:groups:name': ['kind', 'name'],
  'read:roles:groups': ['kind', 'name', 'roles'],
};

const SERVICE_MODEL_ACCESS: Readonly<Record<string, readonly ServiceModelKey[]>> = {
  'read:services': ['kind', 'name', 'admin', 'url', 'prefix', 'command', 'pid', 'info', 'display'],
  'read:services:name': ['kind', 'name', 'admin'],
  'read:roles:services': ['kind', 'name', 'roles', 'admin'],
};

function keysFor<K extends string>(
  access: Readonly<Record<string, readonly K[]>>,
  parsed: ParsedScopes,
  resource: ScopeResource,
  groupsOf: GroupsOf,
): Set<K> {
  const keys = new Set<K>();
  for (const [scope, revealed] of Object.entries(access)) {
    if (hasScope(parsed, scope, resource, groupsOf)) for (const key of revealed) keys.add(key);
  }
  return keys;
}

/**
 * Keys of user `user`'s model the requester may see (vertical filtering). An empty set means no model.
 * Upstream also emits `servers` when the set is non-empty and at least one server is visible through
 * `read:servers!server=…` (check each with `hasScope(parsed, 'read:servers', {server}, …)`), even
 * without the `servers` key here.
 */
export function userModelKeysFor(parsed: ParsedScopes, user: string, groupsOf: GroupsOf): Set<UserModelKey> {
  return keysFor(USER_MODEL_ACCESS, parsed, { user }, groupsOf);
}

export function groupModelKeysFor(parsed: ParsedScopes, group: string): Set<GroupModelKey> {
  return keysFor(GROUP_MODEL_ACCESS, parsed, { group }, () => []);
}

export function serviceModelKeysFor(parsed: ParsedScopes, service: string): Set<ServiceModelKey> {
  return keysFor(SERVICE_MODEL_ACCESS, parsed, { service }, () => []);
}

/** Scopes every token carries so its owner can read who they are (`GET /hub/api/user`). */
export function identifyScopes(owner: Pick<ScopeOwner, 'kind' | 'name'>): Set<string> {
  return owner.kind === 'user'
    ? new Set([`read:users:name!user=${owner.name}`, `read:users:groups!user=${owner.name}`])
    : new Set([`read:services:name!service=${owner.name}`]);
}

/** The scope needed to use an OAuth client's target: a server (`"u/s"`) or a service. */
export function accessScopes(client: { server: string } | { service: string }): Set<string> {
  return 'server' in client
    ? new Set([`access:servers!server=${client.server}`])
    : new Set([`access:services!service=${client.service}`]);
}

function issuingClientAccess(owner: ScopeOwner): Set<string> {
  if (owner.server !== undefined) return accessScopes({ server: owner.server });
  if (owner.service !== undefined) return accessScopes({ service: owner.service });
  return new Set();
}

/**
 * A token's effective expanded scopes (upstream `get_scopes_for(token)`): what it asks for, plus its
 * identify scopes and the access scope of the OAuth client that issued it, limited to what the owner holds.
 * `ownerScopes` are the owner's expanded scopes from roles, group roles and shares.
 */
export function tokenScopes(
  raw: Iterable<string>,
  owner: ScopeOwner,
  ownerScopes: ReadonlySet<string>,
  groupsOf: GroupsOf,
): Set<string> {
  const requested = new Set(raw);
  if (requested.has('inherit')) return new Set(ownerScopes);
  const wanted = expandScopes(requested, owner);
  for (const s of issuingClientAccess(owner)) wanted.add(s);
  for (const s of identifyScopes(owner)) wanted.add(s);
  return new Set(formatScopes(intersectScopes(parseScopes(wanted), parseScopes(ownerScopes), groupsOf)));
}

/**
 * Requested token scopes the owner does not hold (upstream `_check_token_scopes`), sorted.
 * Non-empty → 400 "Not assigning requested scopes … not held by …".
 */
export function excessTokenScopes(
  requested: Iterable<string>,
  owner: ScopeOwner,
  ownerScopes: ReadonlySet<string>,
  groupsOf: GroupsOf,
): string[] {
  const raw = new Set(requested);
  raw.delete('inherit');
  const wanted = expandScopes(raw, owner);
  const held = new Set(formatScopes(intersectScopes(parseScopes(wanted), parseScopes(ownerScopes), groupsOf)));
  return [...wanted].filter((s) => !held.has(s)).sort();
}

/**
 * Split requested raw scopes into those `have` (raw scopes, e.g. an OAuth client's allowed scopes)
 * covers and those it does not (upstream `_resolve_requested_scopes`). A requested scope only partly
 * covered stays disallowed, but the covered part is added to `allowed` in expanded form.
 */
export function resolveRequestedScopes(
  requested: Iterable<string>,
  have: Iterable<string>,
  owner: ScopeOwner,
  groupsOf: GroupsOf,
): { allowed: Set<string>; disallowed: Set<string> } {
  const haveRaw = new Set(have);
  const allowed = new Set<string>();
  const disallowed = new Set<string>();
  for (const scope of requested) (haveRaw.has(scope) ? allowed : disallowed).add(scope);
  if (disallowed.size === 0) return { allowed, disallowed };

  const haveParsed = parseScopes(expandScopes(haveRaw, owner));
  let expandedAllowed = expandScopes(allowed, owner);
  for (const scope of [...disallowed]) {
    const missing = [...expandScopes([scope], owner)].filter((s) => !expandedAllowed.has(s));
    const granted = missing.length > 0 ? formatScopes(intersectScopes(parseScopes(missing), haveParsed, groupsOf)) : [];
    if (granted.length === missing.length && granted.every((s) => missing.includes(s))) {
      allowed.add(scope);
      disallowed.delete(scope);
    } else if (granted.length > 0) {
      for (const s of granted) allowed.add(s);
    } else {
      continue;
    }
    expandedAllowed = expandScopes(allowed, owner);
  }
  return { allowed, disallowed };
}
