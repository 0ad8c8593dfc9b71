import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * Table shapes shared by both dialects. Timestamps are ISO 8601 strings (UTC, `Z`) in both, so that
 * SQLite and PostgreSQL return the same values; JSON columns are text holding JSON.
 * Booleans are integers 0/1 so one set of queries serves both dialects.
 */
type Bool = number;
type Json = string;
type Timestamp = string;

export interface UsersTable {
  id: Generated<number>;
  name: string;
  admin: Bool;
  created: Timestamp;
  last_activity: Timestamp | null;
  /** Rotated to end every session of the user at once (password change, admin "log out everywhere"). */
  cookie_id: string;
  password_hash: string | null;
  auth_state: string | null;
  /** Immutable, unique, never reused: names every per-user object (user-uid.ts). */
  uid: string;
  /** The name the account's objects were made under before uids existed (migration 004); null for newer accounts. */
  legacy_name: string | null;
  /** JSON of JupyterHub 6's user_info (name, display_name, initials, avatar_url), from the last login; null: none. */
  user_info: string | null;
}

export interface GroupsTable {
  id: Generated<number>;
  name: string;
  properties: Json;
}

export interface UserGroupsTable {
  user_id: number;
  group_id: number;
}

export interface RolesTable {
  id: Generated<number>;
  name: string;
  description: string;
  scopes: Json;
}

export interface RoleMembersTable {
  role_id: number;
  /** 'user' | 'group' | 'service' */
  kind: string;
  member_id: number;
}

export interface ServicesTable {
  id: Generated<number>;
  name: string;
  admin: Bool;
  url: string | null;
  /** True for services declared in config; they are re-synced at every start. */
  from_config: Bool;
  created: Timestamp;
}

export interface ApiTokensTable {
  id: Generated<number>;
  hashed: string;
  prefix: string;
  user_id: number | null;
  service_id: number | null;
  scopes: Json;
  note: string;
  created: Timestamp;
  expires_at: Timestamp | null;
  last_activity: Timestamp | null;
  session_id: string | null;
  oauth_client_id: string | null;
}

export interface OAuthClientsTable {
  identifier: string;
  description: string;
  /** Hash of the client secret (for servers, the server's API token). */
  secret_hash: string;
  redirect_uri: string;
  allowed_scopes: Json;
  created: Timestamp;
}

export interface OAuthCodesTable {
  id: Generated<number>;
  code_hash: string;
  client_id: string;
  user_id: number;
  scopes: Json;
  session_id: string | null;
  redirect_uri: string;
  expires_at: Timestamp;
  /** The S256 PKCE challenge the authorize request carried, if any: the token request must then prove it. */
  code_challenge: string | null;
}

export interface SessionsTable {
  id: string;
  /** sha256 of the cookie secret; the cookie holds `<id>.<secret>`. */
  secret_hash: string;
  user_id: number;
  cookie_id: string;
  created: Timestamp;
  expires_at: Timestamp;
}

/** A user's or a group's use of another user's server (JupyterHub 5.0 sharing); scopes bare, e.g. `["access:servers"]`. */
export interface SharesTable {
  id: Generated<number>;
  owner_id: number;
  server_name: string;
  user_id: number | null;
  group_id: number | null;
  scopes: Json;
  created: Timestamp;
}

/** A link that makes a share for whoever accepts it; only the code's hash is kept. */
export interface ShareCodesTable {
  id: Generated<number>;
  owner_id: number;
  server_name: string;
  code_hash: string;
  scopes: Json;
  created: Timestamp;
  expires_at: Timestamp | null;
  last_exchanged_at: Timestamp | null;
  exchange_count: Generated<number>;
}

export interface ServersTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  /** 'stopped' | 'starting' | 'running' | 'stopping' */
  status: string;
  /** Where the proxy sends traffic, once known. */
  url: string | null;
  spawner_kind: string | null;
  spawner_state: Json;
  user_options: Json;
  /** JupyterHub 6.0's display_name; null: none given. */
  display_name: string | null;
  started: Timestamp | null;
  last_activity: Timestamp | null;
  token_id: number | null;
  /** Why the last start failed, shown in progress and the API until the next start. */
  last_error: string | null;
}

/** One-time links: first-admin setup and invitations; only the hash of the code is kept. */
export interface InvitationsTable {
  id: Generated<number>;
  code_hash: string;
  /** The account an invitation sets the password of; null for the first-admin setup link. */
  user_id: number | null;
  /** Digest of that account's state when the link was made (one-time-links.ts); null for the setup link. */
  account_state: string | null;
  created: Timestamp;
  expires_at: Timestamp;
}

export type LeaseStatus = 'issuing' | 'active' | 'revoking' | 'revoked';

/**
 * A credential the hub created at a data service for one server. The row is written before the account exists
 * (`issuing`), so a hub killed mid-issue finds it and revokes it; it holds what revocation needs, never the password.
 */
export interface CredentialLeasesTable {
  id: Generated<number>;
  user_name: string;
  server_id: number;
  server_name: string;
  service: string;
  /** The generated account name at the service (MQTT client, PostgreSQL role, MongoDB user). */
  account: string;
  /** Service-specific names revocation needs (the role owning the user's schema, …). */
  revoke_data: Json;
  status: LeaseStatus;
  issued_at: Timestamp;
  expires_at: Timestamp;
  revoked_at: Timestamp | null;
  revoke_failures: number;
  /** Why the last revocation attempt failed; never contains a secret. */
  last_error: string | null;
}

/** A hub user's identity at an external identity provider (OpenID Connect issuer + subject). */
export interface UserIdentitiesTable {
  issuer: string;
  subject: string;
  user_id: number;
}

/** One row (id 1) whose epoch DB triggers bump on every change to what a token may do (migration 006). */
export interface AuthEpochTable {
  id: number;
  epoch: ColumnType<number | string | bigint, number, number>;
}

/** One audit record (migration 008, hub/audit/). Never updated; deleted only by retention pruning. */
export interface AuditEventsTable {
  id: Generated<number>;
  time: Timestamp;
  action: string;
  /** 'user' | 'service' | 'system' */
  actor_kind: string;
  actor_name: string | null;
  actor_uid: string | null;
  target_kind: string | null;
  target_name: string | null;
  target_uid: string | null;
  /** The client address the hub saw (after its trusted-proxy rules). */
  source: string | null;
  details: Json;
}

/** One server run, from ready to stopped (migration 013, hub/usage/). Numbers are null where nothing was known. */
export interface ServerUsageTable {
  id: Generated<number>;
  user_id: number;
  /** The servers row it ran as; a named server deleted later leaves its history. */
  server_id: number;
  server_name: string;
  /** The class whose profile it ran; null without one (or when the class was deleted). */
  class_id: number | null;
  profile: string | null;
  spawner: string;
  /** CPUs, memory bytes and GPUs the spawner reserved. */
  cpu_request: number | null;
  mem_request: number | null;
  gpu_request: number;
  started_at: Timestamp;
  stopped_at: Timestamp | null;
  /** Measured: CPU seconds used so far, memory in use at the last sample, its peak, and its integral. */
  cpu_seconds: number | null;
  mem_bytes: number | null;
  mem_peak: number | null;
  mem_byte_seconds: number;
  sampled_at: Timestamp | null;
  /** When the user was warned that a quota is used up; the server is stopped a grace period later. */
  quota_warned_at: Timestamp | null;
}

/** An admin's limits for one user or one class (each member's use of that class's profiles). */
export interface QuotasTable {
  id: Generated<number>;
  user_id: number | null;
  group_id: number | null;
  window_hours: number;
  server_hours: number | null;
  cpu_hours: number | null;
  memory_gib_hours: number | null;
  gpu_hours: number | null;
  max_servers: number | null;
  updated: Timestamp;
}

export interface HomeStorageTable {
  user_id: number;
  bytes: number;
  measured_at: Timestamp;
}

export interface Database {
  users: UsersTable;
  groups: GroupsTable;
  user_groups: UserGroupsTable;
  roles: RolesTable;
  role_members: RoleMembersTable;
  services: ServicesTable;
  api_tokens: ApiTokensTable;
  oauth_clients: OAuthClientsTable;
  oauth_codes: OAuthCodesTable;
  sessions: SessionsTable;
  servers: ServersTable;
  invitations: InvitationsTable;
  credential_leases: CredentialLeasesTable;
  user_identities: UserIdentitiesTable;
  auth_epoch: AuthEpochTable;
  audit_events: AuditEventsTable;
  shares: SharesTable;
  share_codes: ShareCodesTable;
  server_usage: ServerUsageTable;
  quotas: QuotasTable;
  home_storage: HomeStorageTable;
}

export type UserRow = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type GroupRow = Selectable<GroupsTable>;
export type TokenRow = Selectable<ApiTokensTable>;
export type ServerRow = Selectable<ServersTable>;
export type ServiceRow = Selectable<ServicesTable>;
export type SessionRow = Selectable<SessionsTable>;
export type OAuthClientRow = Selectable<OAuthClientsTable>;
export type OAuthCodeRow = Selectable<OAuthCodesTable>;
export type RoleRow = Selectable<RolesTable>;
export type InvitationRow = Selectable<InvitationsTable>;
export type LeaseRow = Selectable<CredentialLeasesTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
export type UsageRow = Selectable<ServerUsageTable>;
export type QuotaRow = Selectable<QuotasTable>;
export type { ColumnType };
