import type { GroupRow, ServerRow, TokenRow, UserRow } from '../db/schema.js';
import type { Authorizer, Requester } from '../auth/identity.js';
import { progressUrl, serverPrefix } from '../servers/naming.js';

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
    progress_url: progressUrl(user, row.name),
    full_url: null,
    full_progress_url: null,
  };
  if (includeState) model.state = JSON.parse(row.spawner_state) as unknown;
  return model;
}

/** Which scope reveals which keys of a user (JupyterHub's vertical filtering of the User model). */
const USER_KEYS_BY_SCOPE: Array<[string, string[]]> = [
  ['read:users', ['kind', 'name', 'admin', 'roles', 'groups', 'server', 'pending', 'created', 'last_activity']],
  ['read:users:name', ['kind', 'name', 'admin']],
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
    roles: ['user', ...(user.admin ? ['admin'] : []), ...input.roles],
    groups: input.groups,
    server: defaultServer?.status === 'running' ? serverPrefix(user.name, '') : null,
    pending: pendingOf(defaultServer),
    created: user.created,
    last_activity: user.last_activity,
    auth_state: input.authState,
  };
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
