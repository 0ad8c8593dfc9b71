import { describe, expect, it } from 'vitest';
import {
  ALL_SCOPES,
  accessScopes,
  checkScope,
  excessTokenScopes,
  expandScopes,
  filterForList,
  formatScopes,
  groupModelKeysFor,
  identifyScopes,
  intersectScopes,
  isValidScope,
  parseScopes,
  reduceScopes,
  requestedOAuthScopes,
  resolveRequestedScopes,
  scopeProblem,
  serviceModelKeysFor,
  tokenScopes,
  userModelKeysFor,
  type GroupsOf,
  type ScopeOwner,
} from '../../hub/auth/scopes.js';
import {
  ADMIN_ROLE_SCOPES,
  DEFAULT_ROLES,
  RoleConfigError,
  UnknownRoleError,
  buildRoles,
  roleNameProblem,
  scopesForRoles,
} from '../../hub/auth/roles.js';

const membership: Record<string, string[]> = { alice: ['physics'], bob: ['chemistry'], carol: ['physics', 'staff'] };
const groupsOf: GroupsOf = (user) => membership[user] ?? [];
const alice: ScopeOwner = { kind: 'user', name: 'alice' };
const sorted = (s: Iterable<string>) => [...s].sort();
const parse = (scopes: string[], owner?: ScopeOwner) => parseScopes(expandScopes(scopes, owner));

const SELF_FOR_ALICE = [
  'access:servers!user=alice',
  'delete:servers!user=alice',
  'read:servers!user=alice',
  'read:shares!user=alice',
  'read:tokens!user=alice',
  'read:usage!user=alice',
  'read:users!user=alice',
  'read:users:activity!user=alice',
  'read:users:groups!user=alice',
  'read:users:name!user=alice',
  'read:users:shares!user=alice',
  'servers!user=alice',
  'start:servers!user=alice',
  'tokens!user=alice',
  'users:activity!user=alice',
  'users:shares!user=alice',
];

describe('scope names', () => {
  it('lists the 5.x hierarchy including sharing scopes and metascopes', () => {
    for (const s of ['self', 'inherit', '(no_scope)', 'admin-ui', 'admin:auth_state', 'admin:server_state', 'shares',
      'users:shares', 'read:groups:shares', 'admin:services', 'read:metrics', 'access:services', 'list:groups']) {
      expect(ALL_SCOPES).toContain(s);
    }
    expect(new Set(ALL_SCOPES).size).toBe(ALL_SCOPES.length);
    // Upstream 5.x's 47, 6.0's start:servers, and LabHub's admin:users:passwords (invitation links), read:audit
    // (the audit log), read:usage and admin:quotas (docs/usage.md), which no upstream scope implies.
    expect(ALL_SCOPES).toHaveLength(52);
    expect(expandScopes(['admin:users'])).not.toContain('admin:quotas');
    expect(expandScopes(['servers'])).toContain('start:servers');
    expect(expandScopes(['admin:users'])).not.toContain('admin:users:passwords');
  });

  it.each([
    'read:users',
    'read:users!user=alice',
    'users:activity!user',
    'access:servers!server',
    'access:services!service',
    'access:servers!server=alice/',
    'access:servers!server=alice/lab',
    'read:groups!group=physics',
    'access:services!service=announcer',
    'self',
    'inherit',
    '(no_scope)',
    'custom:jupyter_server:read:*',
  ])('accepts %s', (scope) => {
    expect(isValidScope(scope)).toBe(true);
  });

  it.each([
    ['read:users!group', 'does not exist'],
    ['read:users!user=', 'empty value'],
    ['read:users!user=a!user=b', 'more than one filter'],
    ['read:users!colour=red', 'does not exist'],
    ['access:servers!server=alice', '<user>/<server name>'],
    ['access:servers!server=/lab', '<user>/<server name>'],
    ['access:servers!server=alice/lab/x', '<user>/<server name>'],
    ['read:users!user=a\u0000b', 'malformed'],
    ['self!user=alice', 'does not take a filter'],
    ['inherit!user', 'does not take a filter'],
    ['identify', 'does not exist'],
    ['constructor', 'does not exist'],
    ['__proto__', 'does not exist'],
    ['custom:', 'does not exist'],
    ['custom:Upper', 'does not exist'],
    ['custom:ends-', 'does not exist'],
    ['READ:USERS', 'does not exist'],
    ['', 'does not exist'],
  ])('rejects %j', (scope, message) => {
    expect(isValidScope(scope)).toBe(false);
    expect(scopeProblem(scope)).toContain(message);
  });

  it("rejects the draft scope 'all' with upstream's message", () => {
    expect(scopeProblem('all')).toBe("Draft scope 'all' is now called 'inherit'");
    expect(scopeProblem('all!user=alice')).toBe("Draft scope 'all' is now called 'inherit'");
  });

  it("drops the legacy OAuth 'identify' scope and splits on spaces", () => {
    expect(sorted(requestedOAuthScopes('identify  read:users:name!user   access:servers'))).toEqual([
      'access:servers',
      'read:users:name!user',
    ]);
    expect(requestedOAuthScopes(undefined).size).toBe(0);
    expect(requestedOAuthScopes('identify').size).toBe(0);
  });
});

describe('expandScopes', () => {
  it('expands self for a user into the 16 user-filtered scopes', () => {
    expect(sorted(expandScopes(['self'], alice))).toEqual(SELF_FOR_ALICE);
  });

  it('drops self for a service (no user to filter on)', () => {
    expect(expandScopes(['self'], { kind: 'service', name: 'culler' }).size).toBe(0);
  });

  it('adds subscopes transitively', () => {
    expect(sorted(expandScopes(['admin:users']))).toEqual([
      'admin:auth_state',
      'admin:users',
      'delete:users',
      'list:users',
      'read:roles:users',
      'read:users',
      'read:users:activity',
      'read:users:groups',
      'read:users:name',
      'users',
      'users:activity',
    ]);
    expect(sorted(expandScopes(['shares']))).toEqual([
      'access:servers',
      'groups:shares',
      'read:groups:shares',
      'read:shares',
      'read:users:shares',
      'shares',
      'users:shares',
    ]);
  });

  it('carries a filter onto every subscope', () => {
    expect(sorted(expandScopes(['users!group=physics']))).toEqual([
      'list:users!group=physics',
      'read:users!group=physics',
      'read:users:activity!group=physics',
      'read:users:groups!group=physics',
      'read:users:name!group=physics',
      'users!group=physics',
      'users:activity!group=physics',
    ]);
  });

  it('does not put a server filter on user-level subscopes', () => {
    expect(sorted(expandScopes(['servers!server=alice/lab']))).toEqual([
      'delete:servers!server=alice/lab',
      'read:servers!server=alice/lab',
      'servers!server=alice/lab',
      'start:servers!server=alice/lab',
    ]);
    expect(sorted(expandScopes(['servers!user=alice']))).toContain('read:users:name!user=alice');
  });

  it('resolves bare filters for the owner and the issuing server', () => {
    const serverRole = ['users:activity!user', 'access:servers!server'];
    expect(sorted(expandScopes(serverRole, { ...alice, server: 'alice/' }))).toEqual([
      'access:servers!server=alice/',
      'read:users:activity!user=alice',
      'users:activity!user=alice',
    ]);
    // nothing to resolve !server to: dropped, as upstream does
    expect(sorted(expandScopes(serverRole, alice))).toEqual(['read:users:activity!user=alice', 'users:activity!user=alice']);
    expect(sorted(expandScopes(['read:services!service'], { kind: 'service', name: 'culler' }))).toEqual([
      'read:services!service=culler',
      'read:services:name!service=culler',
    ]);
    expect(sorted(expandScopes(['access:services!service'], { ...alice, service: 'announcer' }))).toEqual([
      'access:services!service=announcer',
    ]);
    expect(expandScopes(['read:users!user'], { kind: 'service', name: 'culler' }).size).toBe(0);
  });

  it('reduces overlapping scopes and keeps inherit for tokenScopes', () => {
    expect(sorted(expandScopes(['access:services', 'access:services!service=x']))).toEqual(['access:services']);
    expect(sorted(expandScopes(['inherit'], alice))).toEqual(['inherit']);
    expect(sorted(reduceScopes(['read:users!user=a', 'read:users', 'tokens!user=b']))).toEqual(['read:users', 'tokens!user=b']);
  });
});

describe('parseScopes / formatScopes', () => {
  it('round-trips, sorted', () => {
    const parsed = parseScopes(['servers!server=bob/', 'servers!user=alice', 'read:hub', 'servers!group=physics']);
    expect(parsed.get('read:hub')).toBe('all');
    const servers = parsed.get('servers');
    expect(servers !== 'all' && [...(servers?.server ?? [])]).toEqual(['bob/']);
    expect(formatScopes(parsed)).toEqual(['read:hub', 'servers!group=physics', 'servers!server=bob/', 'servers!user=alice']);
  });

  it('lets an unfiltered scope win over filtered ones in any order', () => {
    expect(parseScopes(['x!user=a', 'x', 'x!user=b']).get('x')).toBe('all');
  });

  it('refuses unexpanded or unknown filters', () => {
    expect(() => parseScopes(['read:users!user'])).toThrow(/Unexpanded/);
    expect(() => parseScopes(['read:users!colour=red'])).toThrow(/Unexpanded/);
    expect(() => parseScopes(['read:users!user='])).toThrow(/Unexpanded/);
  });
});

describe('intersectScopes', () => {
  const meet = (a: string[], b: string[]) => formatScopes(intersectScopes(parseScopes(a), parseScopes(b), groupsOf));

  it('keeps the filtered side when the other is unfiltered, and drops bases only on one side', () => {
    expect(meet(['servers', 'read:hub'], ['servers!user=alice', 'proxy'])).toEqual(['servers!user=alice']);
  });

  it('keeps !server=u/s against !user=u, in both directions', () => {
    expect(meet(['servers!server=alice/lab'], ['servers!user=alice'])).toEqual(['servers!server=alice/lab']);
    expect(meet(['servers!user=alice'], ['servers!server=alice/lab'])).toEqual(['servers!server=alice/lab']);
    expect(meet(['servers!server=bob/'], ['servers!user=alice'])).toEqual([]);
  });

  it('keeps !user=u against !group=g only when u is in g', () => {
    expect(meet(['read:users!user=alice'], ['read:users!group=physics'])).toEqual(['read:users!user=alice']);
    expect(meet(['read:users!group=physics'], ['read:users!user=bob'])).toEqual([]);
    expect(meet(['read:users!user=alice', 'read:users!user=bob'], ['read:users!group=physics'])).toEqual([
      'read:users!user=alice',
    ]);
  });

  it('keeps !server=u/s against !group=g when u is in g', () => {
    expect(meet(['servers!server=carol/'], ['servers!group=staff'])).toEqual(['servers!server=carol/']);
    expect(meet(['servers!server=bob/'], ['servers!group=staff'])).toEqual([]);
  });

  it('intersects like filters exactly, groups by name only', () => {
    expect(meet(['read:groups!group=physics'], ['read:groups!group=physics', 'read:groups!group=staff'])).toEqual([
      'read:groups!group=physics',
    ]);
    expect(meet(['read:users!group=physics'], ['read:users!group=staff'])).toEqual([]);
    expect(meet(['access:services!service=a'], ['access:services!service=b'])).toEqual([]);
  });

  it('drops a base whose filters cancel out, so a check says no-scope rather than filtered', () => {
    const parsed = intersectScopes(parseScopes(['read:users!user=bob']), parseScopes(['read:users!user=alice']), groupsOf);
    expect(parsed.has('read:users')).toBe(false);
    expect(checkScope(parsed, ['read:users'], { user: 'alice' }, groupsOf)).toBe('no-scope');
  });

  it('asks for each user’s groups at most once per intersection', () => {
    const asked: string[] = [];
    const counting: GroupsOf = (u) => (asked.push(u), groupsOf(u));
    intersectScopes(
      parseScopes(['a!user=alice', 'b!user=alice', 'c!server=alice/']),
      parseScopes(['a!group=physics', 'b!group=staff', 'c!group=physics']),
      counting,
    );
    expect(asked).toEqual(['alice']);
  });
});

describe('checkScope', () => {
  it('allows unfiltered scopes on any resource and without one', () => {
    const parsed = parse(['admin:users']);
    expect(checkScope(parsed, ['read:users'], { user: 'anyone' }, groupsOf)).toBe('allowed');
    expect(checkScope(parsed, ['admin:users'], {}, groupsOf)).toBe('allowed');
  });

  it('answers no-scope when no required scope is held at all', () => {
    expect(checkScope(parse(['self'], alice), ['admin:users'], { user: 'alice' }, groupsOf)).toBe('no-scope');
    expect(checkScope(new Map(), ['read:hub'], {}, groupsOf)).toBe('no-scope');
  });

  it('answers filtered (404) when the scope is held for other resources only', () => {
    const parsed = parse(['self'], alice);
    expect(checkScope(parsed, ['read:users'], { user: 'alice' }, groupsOf)).toBe('allowed');
    expect(checkScope(parsed, ['read:users'], { user: 'bob' }, groupsOf)).toBe('filtered');
    expect(checkScope(parsed, ['servers'], { server: 'bob/' }, groupsOf)).toBe('filtered');
  });

  it('answers no-scope for an unfiltered endpoint when only filtered access is held', () => {
    expect(checkScope(parse(['self'], alice), ['read:users'], {}, groupsOf)).toBe('no-scope');
  });

  it('resolves a server resource through !server, !user and !group', () => {
    expect(checkScope(parse(['servers!server=alice/lab']), ['servers'], { server: 'alice/lab' }, groupsOf)).toBe('allowed');
    expect(checkScope(parse(['servers!server=alice/lab']), ['servers'], { server: 'alice/' }, groupsOf)).toBe('filtered');
    expect(checkScope(parse(['servers!server=alice/lab']), ['servers'], { user: 'alice' }, groupsOf)).toBe('filtered');
    expect(checkScope(parse(['servers!user=alice']), ['servers'], { server: 'alice/lab' }, groupsOf)).toBe('allowed');
    expect(checkScope(parse(['servers!group=physics']), ['servers'], { server: 'carol/' }, groupsOf)).toBe('allowed');
    expect(checkScope(parse(['servers!group=physics']), ['servers'], { server: 'bob/' }, groupsOf)).toBe('filtered');
  });

  it('resolves a user resource through !user and !group only', () => {
    expect(checkScope(parse(['users!group=physics']), ['read:users'], { user: 'alice' }, groupsOf)).toBe('allowed');
    expect(checkScope(parse(['users!group=physics']), ['read:users'], { user: 'bob' }, groupsOf)).toBe('filtered');
    expect(checkScope(parse(['read:servers!server=alice/']), ['read:servers'], { user: 'alice' }, groupsOf)).toBe('filtered');
  });

  it('resolves group and service resources by name only', () => {
    expect(checkScope(parse(['read:groups!group=physics']), ['read:groups'], { group: 'physics' }, groupsOf)).toBe('allowed');
    expect(checkScope(parse(['read:groups!group=physics']), ['read:groups'], { group: 'staff' }, groupsOf)).toBe('filtered');
    expect(checkScope(parse(['read:groups!user=alice']), ['read:groups'], { group: 'physics' }, groupsOf)).toBe('filtered');
    expect(checkScope(parse(['read:services!service=a']), ['read:services'], { service: 'a' }, groupsOf)).toBe('allowed');
    expect(checkScope(parse(['read:services!service=a']), ['read:services'], { service: 'b' }, groupsOf)).toBe('filtered');
  });

  it('accepts any of several scopes', () => {
    const parsed = parse(['read:users:groups!user=alice']);
    expect(checkScope(parsed, ['read:users', 'read:users:name', 'read:users:groups'], { user: 'alice' }, groupsOf)).toBe('allowed');
  });

  it('refuses a check naming two resources', () => {
    expect(() => checkScope(parse(['servers']), ['servers'], { user: 'a', group: 'g' }, groupsOf)).toThrow(/one resource/);
  });
});

describe('filterForList', () => {
  it('gives all, the allowed names, or a refusal', () => {
    expect(filterForList(parse(['list:users']), 'list:users')).toEqual({ access: 'all' });
    const some = filterForList(parse(['list:users!user=alice', 'list:users!group=staff']), 'list:users');
    expect(some.access === 'some' && [[...some.filters.user], [...some.filters.group]]).toEqual([['alice'], ['staff']]);
    expect(filterForList(parse(['self'], alice), 'list:users')).toEqual({ access: 'denied', reason: 'no-scope' });
  });

  it('refuses a server filter on list:users rather than widening it', () => {
    expect(filterForList(parse(['list:users!server=alice/']), 'list:users')).toEqual({ access: 'denied', reason: 'bad-filter' });
    expect(filterForList(parse(['list:users!server=alice/', 'list:users!user=bob']), 'list:users')).toEqual({
      access: 'denied',
      reason: 'bad-filter',
    });
  });

  it('accepts only group filters on list:groups; list:services uses service names', () => {
    expect(filterForList(parse(['list:groups!user=alice']), 'list:groups')).toMatchObject({ reason: 'bad-filter' });
    expect(filterForList(parse(['list:groups!group=physics']), 'list:groups')).toMatchObject({ access: 'some' });
    const services = filterForList(parse(['list:services!service=culler']), 'list:services');
    expect(services.access === 'some' && [...services.filters.service]).toEqual(['culler']);
  });
});

describe('model keys', () => {
  it('shows a server’s OAuth token its owner’s name and groups only', () => {
    const scopes = tokenScopes([], { ...alice, server: 'alice/' }, expandScopes(['self'], alice), groupsOf);
    expect(sorted(scopes)).toEqual([
      'access:servers!server=alice/',
      'read:users:groups!user=alice',
      'read:users:name!user=alice',
    ]);
    expect(sorted(userModelKeysFor(parseScopes(scopes), 'alice', groupsOf))).toEqual(['admin', 'groups', 'kind', 'name']);
  });

  it('maps read:users, admin and nothing', () => {
    expect(sorted(userModelKeysFor(parse(['read:users']), 'bob', groupsOf))).toEqual(
      ['admin', 'created', 'groups', 'kind', 'last_activity', 'name', 'pending', 'roles', 'server'],
    );
    const admin = parse([...ADMIN_ROLE_SCOPES]);
    expect(userModelKeysFor(admin, 'bob', groupsOf).size).toBe(11);
    expect(userModelKeysFor(parse(['self'], alice), 'bob', groupsOf).size).toBe(0);
    expect(sorted(userModelKeysFor(parse(['read:users:activity!group=physics']), 'carol', groupsOf))).toEqual(
      ['kind', 'last_activity', 'name'],
    );
  });

  it('filters group and service models', () => {
    expect(sorted(groupModelKeysFor(parse(['read:groups:name']), 'physics'))).toEqual(['kind', 'name']);
    expect(sorted(groupModelKeysFor(parse(['admin:groups']), 'physics'))).toEqual(['kind', 'name', 'properties', 'roles', 'users']);
    expect(groupModelKeysFor(parse(['read:groups!group=staff']), 'physics').size).toBe(0);
    expect(sorted(serviceModelKeysFor(parse(['read:roles:services']), 'culler'))).toEqual(['admin', 'kind', 'name', 'roles']);
    expect(serviceModelKeysFor(parse(['read:services']), 'culler').size).toBe(9);
  });
});

describe('token scopes', () => {
  const aliceScopes = expandScopes(['self'], alice);

  it('gives an inherit token exactly the owner’s scopes', () => {
    expect(sorted(tokenScopes(['inherit'], alice, aliceScopes, groupsOf))).toEqual(sorted(aliceScopes));
  });

  it('gives the server token its activity and access scopes plus identify scopes', () => {
    const raw = ['users:activity!user', 'access:servers!server=alice/'];
    expect(sorted(tokenScopes(raw, alice, aliceScopes, groupsOf))).toEqual([
      'access:servers!server=alice/',
      'read:users:activity!user=alice',
      'read:users:groups!user=alice',
      'read:users:name!user=alice',
      'users:activity!user=alice',
    ]);
  });

  it('drops scopes the owner does not hold, including access to another user’s server', () => {
    // admin:users shrinks to what alice holds of it: her own user model and activity
    const scopes = tokenScopes(['admin:users'], { ...alice, server: 'bob/' }, aliceScopes, groupsOf);
    expect(sorted(scopes)).toEqual([
      'read:users!user=alice',
      'read:users:activity!user=alice',
      'read:users:groups!user=alice',
      'read:users:name!user=alice',
      'users:activity!user=alice',
    ]);
    const shared = new Set([...aliceScopes, 'access:servers!server=bob/']);
    expect(tokenScopes([], { ...alice, server: 'bob/' }, shared, groupsOf)).toContain('access:servers!server=bob/');
  });

  it('reports excess requested scopes, and none for narrower or inherit requests', () => {
    expect(excessTokenScopes(['admin:users'], alice, aliceScopes, groupsOf)).toContain('admin:users');
    expect(excessTokenScopes(['read:users!user=bob'], alice, aliceScopes, groupsOf)).toEqual([
      'read:users!user=bob',
      'read:users:activity!user=bob',
      'read:users:groups!user=bob',
      'read:users:name!user=bob',
    ]);
    expect(excessTokenScopes(['read:users!user=alice', 'servers!server=alice/lab'], alice, aliceScopes, groupsOf)).toEqual([]);
    expect(excessTokenScopes(['inherit'], alice, aliceScopes, groupsOf)).toEqual([]);
    expect(excessTokenScopes(['self'], alice, aliceScopes, groupsOf)).toEqual([]);
  });

  it('gives identify and access scopes', () => {
    expect(sorted(identifyScopes(alice))).toEqual(['read:users:groups!user=alice', 'read:users:name!user=alice']);
    expect(sorted(identifyScopes({ kind: 'service', name: 'culler' }))).toEqual(['read:services:name!service=culler']);
    expect([...accessScopes({ server: 'alice/lab' })]).toEqual(['access:servers!server=alice/lab']);
    expect([...accessScopes({ service: 'announcer' })]).toEqual(['access:services!service=announcer']);
  });
});

describe('resolveRequestedScopes', () => {
  it('allows what the raw scopes already cover', () => {
    const r = resolveRequestedScopes(['read:users'], ['read:users', 'servers'], alice, groupsOf);
    expect([sorted(r.allowed), sorted(r.disallowed)]).toEqual([['read:users'], []]);
  });

  it('allows a narrower scope covered only after expansion, keeping its short form', () => {
    const r = resolveRequestedScopes(['read:users:name!user=alice', 'access:servers!server'], ['self'], { ...alice, server: 'alice/' }, groupsOf);
    expect([sorted(r.allowed), sorted(r.disallowed)]).toEqual([['access:servers!server', 'read:users:name!user=alice'], []]);
  });

  it('grants the covered part of a partly covered scope but still reports it', () => {
    const r = resolveRequestedScopes(['users'], ['read:users'], alice, groupsOf);
    expect(sorted(r.disallowed)).toEqual(['users']);
    expect(r.allowed).toContain('read:users');
    expect(r.allowed).not.toContain('users');
  });
});

describe('roles', () => {
  it('defines the four default roles as upstream, the admin role also reading the audit log and usage and setting quotas', () => {
    const byName = new Map(DEFAULT_ROLES.map((r) => [r.name, r.scopes]));
    expect([...byName.keys()]).toEqual(['user', 'admin', 'server', 'token']);
    expect(byName.get('user')).toEqual(['self']);
    expect(byName.get('server')).toEqual(['users:activity!user', 'access:servers!server']);
    expect(byName.get('token')).toEqual(['inherit']);
    expect(byName.get('admin')).toEqual([
      'admin-ui', 'admin:users', 'admin:servers', 'admin:services', 'tokens', 'admin:groups', 'list:services',
      'read:services', 'read:hub', 'proxy', 'shutdown', 'access:services', 'access:servers', 'read:roles',
      'read:metrics', 'read:audit', 'shares', 'read:usage', 'admin:quotas',
    ]);
    expect(Object.isFrozen(DEFAULT_ROLES[0]?.scopes)).toBe(true);
  });

  it('checks role names against upstream’s pattern', () => {
    for (const ok of ['abc', 'user', 'lab-admin.v2~x_y']) expect(roleNameProblem(ok)).toBeNull();
    for (const bad of ['ab', 'Abc', '1abc', 'abc-', 'a b c', 'a'.repeat(256), 'ünï']) expect(roleNameProblem(bad)).toMatch(/Invalid role name/);
  });

  it('merges config roles over the defaults', () => {
    const roles = buildRoles([
      { name: 'user', scopes: ['self', 'shares!user'] },
      { name: 'admin', description: '', scopes: [], users: ['root'] },
      { name: 'culler', scopes: ['list:users', 'read:users:activity', 'admin:servers'], services: ['idle-culler'] },
    ]);
    expect(roles.get('user')?.scopes).toEqual(['self', 'shares!user']);
    expect(roles.get('admin')?.scopes).toEqual(ADMIN_ROLE_SCOPES);
    expect(roles.get('admin')?.users).toEqual(['root']);
    expect(roles.get('culler')?.services).toEqual(['idle-culler']);
    expect(roles.get('token')?.scopes).toEqual(['inherit']);
  });

  it('rejects unknown scopes, all, admin redefinition and duplicates, listing every problem', () => {
    let error: unknown;
    try {
      buildRoles([
        { name: 'viewer', scopes: ['read:users', 'read:everything'] },
        { name: 'old', scopes: ['all'] },
        { name: 'admin', scopes: ['read:hub'] },
        { name: 'admin', description: 'mine' },
        { name: 'X' },
      ]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RoleConfigError);
    const problems = (error as RoleConfigError).problems.join('\n');
    expect(problems).toContain("Role 'viewer': Scope 'read:everything' does not exist");
    expect(problems).toContain("now called 'inherit'");
    expect(problems).toContain('Cannot override admin role scopes');
    expect(problems).toContain('Cannot override admin role description');
    expect(problems).toContain("Role 'admin' is declared more than once");
    expect(problems).toContain("Invalid role name: 'X'");
  });

  it('accepts the admin role restated with its own scopes', () => {
    expect(() => buildRoles([{ name: 'admin', scopes: [...ADMIN_ROLE_SCOPES].reverse() }])).not.toThrow();
  });

  it('unions raw scopes of named roles and refuses unknown ones', () => {
    const roles = buildRoles([]);
    expect(sorted(scopesForRoles(['user', 'server'], roles))).toEqual(['access:servers!server', 'self', 'users:activity!user']);
    expect(() => scopesForRoles(['user', 'nope'], roles)).toThrow(UnknownRoleError);
  });
});
