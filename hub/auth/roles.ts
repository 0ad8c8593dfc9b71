/**
 * Roles: named bundles of raw scopes attached to users, groups and services (JupyterHub `roles.py`).
 * Tokens hold scopes, not roles; role names given for a token are turned into scopes at once.
 */
import { scopeProblem } from './scopes.js';

export interface RoleDefinition {
  readonly name: string;
  readonly description: string;
  /** Raw scopes: may hold `self`, `inherit` and bare filters, expanded per holder. */
  readonly scopes: readonly string[];
  readonly users: readonly string[];
  readonly groups: readonly string[];
  readonly services: readonly string[];
}

/** A role as declared in config (`roles:`), before validation. */
export interface RoleInput {
  name: string;
  description?: string;
  scopes?: readonly string[];
  users?: readonly string[];
  groups?: readonly string[];
  services?: readonly string[];
}

export const ADMIN_ROLE_SCOPES: readonly string[] = Object.freeze([
  'admin-ui',
  'admin:users',
  'admin:servers',
  'admin:services',
  'tokens',
  'admin:groups',
  'list:services',
  'read:services',
  'read:hub',
  'proxy',
  'shutdown',
  'access:services',
  'access:servers',
  'read:roles',
  'read:metrics',
  'read:audit',
  'shares',
  'read:usage',
  'admin:quotas',
]);

const ADMIN_ROLE_DESCRIPTION = 'Elevated privileges (can do anything)';

function builtIn(name: string, description: string, scopes: readonly string[]): RoleDefinition {
  return Object.freeze({ name, description, scopes: Object.freeze([...scopes]), users: [], groups: [], services: [] });
}

/**
 * Upstream `get_default_roles`: `user` goes to every user, `admin` to users and services with admin=true,
 * `server` is the default for a notebook server's `JUPYTERHUB_API_TOKEN`, `token` for new API tokens.
 */
export const DEFAULT_ROLES: readonly RoleDefinition[] = Object.freeze([
  builtIn('user', 'Standard user privileges', ['self']),
  builtIn('admin', ADMIN_ROLE_DESCRIPTION, ADMIN_ROLE_SCOPES),
  builtIn('server', 'Post activity only', ['users:activity!user', 'access:servers!server']),
  builtIn('token', 'Token with same permissions as its owner', ['inherit']),
]);

/** Upstream's rule: 3–255 characters, lowercase ASCII, digits and `-_~.`, starting with a letter. */
export const ROLE_NAME_PATTERN = /^[a-z][a-z0-9\-_~.]{1,253}[a-z0-9]$/;

export function roleNameProblem(name: string): string | null {
  if (ROLE_NAME_PATTERN.test(name)) return null;
  return (
    `Invalid role name: '${name}'. Role names must be 3-255 characters, contain only lowercase ASCII letters, ` +
    "numbers and '-.~_', start with a letter and end with a letter or number"
  );
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(b);
  return a.length === set.size && a.every((x) => set.has(x));
}

/**
 * Config may list `admin` to assign it, but not change what it grants: an edited admin role would silently
 * change what `admin: true` means. Empty scopes and description count as "not given" (the config defaults).
 */
function adminOverrideProblems(role: RoleInput): string[] {
  const problems: string[] = [];
  const scopes = role.scopes ?? [];
  if (scopes.length > 0 && !sameMembers(scopes, ADMIN_ROLE_SCOPES)) {
    problems.push('Cannot override admin role scopes; list the admin role only to assign it');
  }
  const description = role.description ?? '';
  if (description !== '' && description !== ADMIN_ROLE_DESCRIPTION) {
    problems.push('Cannot override admin role description');
  }
  return problems;
}

/** Every problem with one declared role. */
export function roleProblems(role: RoleInput): string[] {
  const nameProblem = roleNameProblem(role.name);
  if (nameProblem) return [nameProblem];
  if (role.name === 'admin') return adminOverrideProblems(role);
  const problems: string[] = [];
  for (const scope of role.scopes ?? []) {
    const problem = scopeProblem(scope);
    if (problem) problems.push(`Role '${role.name}': ${problem}`);
  }
  return problems;
}

export class RoleConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid roles in config:\n- ${problems.join('\n- ')}`);
    this.name = 'RoleConfigError';
  }
}

/**
 * The default roles overlaid with those declared in config. A declared `user`, `server` or `token`
 * role replaces the default's description and scopes; `admin` only gains members.
 * Throws `RoleConfigError` listing every problem at once, so a config is fixed in one pass.
 */
export function buildRoles(declared: readonly RoleInput[]): Map<string, RoleDefinition> {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const role of declared) {
    if (seen.has(role.name)) problems.push(`Role '${role.name}' is declared more than once`);
    seen.add(role.name);
    problems.push(...roleProblems(role));
  }
  if (problems.length > 0) throw new RoleConfigError(problems);

  const roles = new Map(DEFAULT_ROLES.map((r) => [r.name, r]));
  for (const role of declared) {
    const base = roles.get(role.name);
    const keepGrant = role.name === 'admin' && base !== undefined;
    roles.set(
      role.name,
      Object.freeze({
        name: role.name,
        description: keepGrant ? base.description : (role.description ?? ''),
        scopes: Object.freeze([...(keepGrant ? base.scopes : (role.scopes ?? []))]),
        users: Object.freeze([...(role.users ?? [])]),
        groups: Object.freeze([...(role.groups ?? [])]),
        services: Object.freeze([...(role.services ?? [])]),
      }),
    );
  }
  return roles;
}

export class UnknownRoleError extends Error {
  constructor(readonly roleName: string) {
    super(`Role '${roleName}' does not exist`);
    this.name = 'UnknownRoleError';
  }
}

/** Union of the raw scopes of the named roles (upstream `roles_to_scopes`); throws `UnknownRoleError`. */
export function scopesForRoles(roleNames: Iterable<string>, roles: ReadonlyMap<string, RoleDefinition>): Set<string> {
  const scopes = new Set<string>();
  for (const name of roleNames) {
    const role = roles.get(name);
    if (role === undefined) throw new UnknownRoleError(name);
    for (const scope of role.scopes) scopes.add(scope);
  }
  return scopes;
}
