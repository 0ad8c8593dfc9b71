import type { GroupRow, ServerRow, ServiceRow, TokenRow, UserRow } from '../db/schema.js';
import type { Authorizer, Requester } from '../auth/identity.js';
import type { HubContext } from '../context.js';
import { ADMIN_ROLE } from '../db/roles.js';
import { progressUrl, serverPrefix } from '../servers/naming.js';
import { servicePrefix } from '../services/oauth-clients.js';

/** JupyterHub's `pending`: a start or stop in progress. */
function pendingOf(row: ServerRow | undefined): 'spawn' | 'stop' | null {
  if (row?.status === 'starting') return 'spawn';
  if (row?.status === 'stopping') return 'stop';
  return null;
}

export function serverModel(user: string, row: ServerRow, includeState: boolean): Record<string, unknown> {
  const ready = row.status === 'running';
  const pending = pendingOf(row);
  const model: Record<string, unknown> = {
    name: row.name,
    full_name: `${user}/${row.name}`,
    last_activity: row.last_activity,
    started: row.started,
    pending,
    ready,
    stopped: !ready && pending === null,
    url: serverPrefix(user, row.name),
    user_options: JSON.parse(row.user_options) as unknown,
    display_name: row.display_name ?? row.name,
    progress_url: progressUrl(user, row.name),
    full_url: null,
    full_progress_url: null,
  };
  if (includeState) model.state = JSON.parse(row.spawner_state) as unknown;
  return model;
}

/** Which scope reveals which keys of a user (JupyterHub's vertical filtering of the User model). */
const USER_KEYS_BY_SCOPE: Array<[string, string[]]> = [
  ['read:users', ['kind', 'name', 'admin', 'roles', 'groups', 'server', 'pending', 'created', 'last_activity', 'user_info']],
  ['read:users:name', ['kind', 'name', 'admin', 'user_info']],
  ['read:users:groups', ['kind', 'name', 'groups']],
  ['read:users:activity', ['kind', 'name', 'last_activity']],
  ['read:servers', ['kind', 'name', 'servers']],
  ['read:roles:users', ['kind', 'name', 'roles', 'admin']],
  ['admin:auth_state', ['kind', 'name', 'auth_state']],
];

export interface UserModelInput {
  user: UserRow;
  /** users.auth_state decrypted; null when absent or unreadable. */
  authState: Record<string, unknown> | null;
  groups: string[];
  roles: string[];
  servers: ServerRow[];
  includeStopped: boolean;
}

/** A user as the requester may see it; null when it may see nothing of it. */
export async function userModel(authz: Authorizer, requester: Requester, input: UserModelInput): Promise<Record<string, unknown> | null> {
  const { user } = input;
  const keys = new Set<string>();
  for (const [scope, scopeKeys] of USER_KEYS_BY_SCOPE) {
    if (await authz.allows(requester, [scope], { user: user.name })) for (const k of scopeKeys) keys.add(k);
  }
  if (!keys.size) return null;
  const defaultServer = input.servers.find((s) => s.name === '');
  const full: Record<string, unknown> = {
    kind: 'user',
    name: user.name,
    admin: Boolean(user.admin),
    roles: rolesOf(Boolean(user.admin), input.roles),
    groups: input.groups,
    server: defaultServer?.status === 'running' ? serverPrefix(user.name, '') : null,
    pending: pendingOf(defaultServer),
    created: user.created,
    last_activity: user.last_activity,
    auth_state: input.authState,
  };
  // JupyterHub 6's user_info, shown only when the identity provider gave some (5.x clients compare models exactly).
  if (user.user_info !== null) full.user_info = JSON.parse(user.user_info) as unknown;
  if (keys.has('servers')) {
    const servers: Record<string, unknown> = {};
    for (const row of input.servers) {
      if (row.status === 'stopped' && !input.includeStopped) continue;
      if (!(await authz.allows(requester, ['read:servers'], { server: `${user.name}/${row.name}` }))) continue;
      const state = await authz.allows(requester, ['admin:server_state'], { server: `${user.name}/${row.name}` });
      servers[row.name] = serverModel(user.name, row, state);
    }
    full.servers = servers;
  }
  const model: Record<string, unknown> = {};
  for (const k of Object.keys(full)) if (keys.has(k)) model[k] = full[k];
  return model;
}

/**
 * The roles a user or service holds: `user` for every user, `admin` exactly when the admin flag is set (config
 * membership of the admin role sets it at start, revoking admin clears it), then the other roles from config.
 */
function rolesOf(admin: boolean, declared: string[], builtIn: string[] = ['user']): string[] {
  return [...new Set([...builtIn, ...(admin ? [ADMIN_ROLE] : []), ...declared.filter((r) => r !== ADMIN_ROLE)])];
}

/** Models of users as the requester may see them, loading what they show in a few queries for the whole page. */
export async function userModels(ctx: HubContext, requester: Requester, users: UserRow[], includeStopped: boolean): Promise<Array<Record<string, unknown>>> {
  const { store } = ctx;
  const ids = users.map((u) => u.id);
  const [groups, roles, servers] = await Promise.all([store.users.groupsOf(ids), store.roles.rolesOf('user', ids), store.servers.forUsers(ids)]);
  const out = [];
  for (const user of users) {
    const model = await userModel(ctx.authz, requester, {
      user, authState: ctx.authState?.open(user.id, user.auth_state) ?? null, groups: groups.get(user.id) ?? [],
      roles: roles.get(user.id) ?? [], servers: servers.get(user.id) ?? [], includeStopped,
    });
    if (model) out.push(model);
  }
  return out;
}

/** Which scope reveals which keys of a service (JupyterHub's `service_model`). */
const SERVICE_KEYS_BY_SCOPE: Array<[string, string[]]> = [
  ['read:services', ['kind', 'name', 'admin', 'url', 'prefix', 'command', 'pid', 'info', 'display']],
  ['read:services:name', ['kind', 'name', 'admin']],
  ['read:roles:services', ['kind', 'name', 'roles', 'admin']],
];

/**
 * A service as the requester may see it; null when it may see nothing of it. LabHub runs no service itself, so
 * `command` is empty and `pid` 0, as JupyterHub reports for a service it does not manage.
 */
export async function serviceModel(ctx: HubContext, requester: Requester, service: ServiceRow): Promise<Record<string, unknown> | null> {
  const keys = new Set<string>();
  for (const [scope, scopeKeys] of SERVICE_KEYS_BY_SCOPE) {
    if (await ctx.authz.allows(requester, [scope], { service: service.name })) for (const k of scopeKeys) keys.add(k);
  }
  if (!keys.size) return null;
  const roles = (await ctx.store.roles.rolesOf('service', [service.id])).get(service.id) ?? [];
  const config = ctx.config.services.find((s) => s.name === service.name);
  const full: Record<string, unknown> = {
    kind: 'service',
    name: service.name,
    roles: rolesOf(Boolean(service.admin), roles, []),
    admin: Boolean(service.admin),
    url: service.url ?? '',
    prefix: service.url ? servicePrefix(service.name) : '',
    command: [],
    pid: 0,
    info: config?.info ?? {},
    display: config?.display ?? true,
  };
  const model: Record<string, unknown> = {};
  for (const k of Object.keys(full)) if (keys.has(k)) model[k] = full[k];
  return model;
}

export function groupModel(group: GroupRow, members: string[], roles: string[], keys: Set<string>): Record<string, unknown> {
  const full: Record<string, unknown> = {
    kind: 'group', name: group.name, roles, users: members, properties: JSON.parse(group.properties) as unknown,
  };
  const model: Record<string, unknown> = {};
  for (const k of Object.keys(full)) if (keys.has(k)) model[k] = full[k];
  return model;
}

export function tokenApiIdOf(row: TokenRow): string {
  return `a${row.id}`;
}

/** `scopes` are the token's effective scopes (JupyterHub's `get_scopes_for(token)`), computed by the caller. */
export function tokenModel(row: TokenRow, owner: { kind: 'user' | 'service'; name: string }, oauthClient: string | null, scopes: string[]): Record<string, unknown> {
  return {
    [owner.kind]: owner.name,
    id: tokenApiIdOf(row),
    kind: 'api_token',
    roles: [],
    scopes,
    created: row.created,
    last_activity: row.last_activity,
    expires_at: row.expires_at,
    note: row.note,
    session_id: row.session_id,
    oauth_client: oauthClient,
  };
}
