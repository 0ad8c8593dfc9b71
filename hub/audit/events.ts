/**
 * Every kind of audit record and the details it may carry. Details are typed per action so that a caller cannot
 * hand over a field the kind does not declare (a token, a password, a link code); the scrubber is the second net.
 */
export type AuditActor =
  | { kind: 'user'; name: string; uid: string }
  | { kind: 'service'; name: string }
  | { kind: 'system' };

export interface AuditTarget {
  /** Servers, tokens, leases and links are named in the details; their target is the user who owns them. */
  kind: 'user' | 'group' | 'service';
  name: string;
  uid?: string;
}

interface Grants {
  old: Record<string, unknown> | null;
  new: Record<string, unknown> | null;
}

/** Why the hub stopped a server nobody asked it to stop. */
export type StopReason = 'idle' | 'quota';

/** action → details. */
export interface AuditDetails {
  'login.success': { authenticator: string };
  /** The target is the name typed, bounded and scrubbed; a failed login never creates a user row. */
  'login.failure': { authenticator: string; reason: 'rejected' | 'throttled' | 'not_allowed' };
  logout: Record<string, never>;
  'token.create': { token_id: number; note: string; scopes: string[]; expires_at: string | null };
  'token.revoke': { token_id: number };
  'user.create': { admin: boolean };
  'user.delete': { purge: boolean };
  'user.admin': { admin: boolean };
  'user.rename': { old_name: string; new_name: string };
  /** A user changed their own password on the password page (links set it with link.use). */
  'user.password': Record<string, never>;
  'group.change': { change: 'create' | 'delete' | 'add_users' | 'remove_users' | 'set_groups'; users?: string[]; groups?: string[] };
  'class.change': Grants;
  'link.create': { link: 'invitation' | 'setup'; expires_at: string };
  'link.use': { link: 'invitation' | 'setup' };
  'server.start': { server: string; profile: string | null; outcome: 'requested' | 'started' | 'failed'; error?: string };
  /** `reason` says why the hub stopped a server on its own (the actor is then the system). */
  'server.stop': { server: string; outcome: 'requested' | 'stopped' | 'failed'; error?: string; reason?: StopReason };
  'lease.issue': { lease_id: number; service: string; account: string; server: string };
  'lease.revoke': { lease_id: number; service: string; account: string };
  /** The target is the server's owner; `with` the user or group the share is for. */
  'share.grant': { server: string; with: { kind: 'user' | 'group'; name: string }; scopes: string[]; via?: 'code' };
  'share.revoke': { server: string; with: { kind: 'user' | 'group'; name: string }; scopes: string[] };
  'share_code.create': { server: string; code_id: number; scopes: string[]; expires_at: string | null };
  'share_code.revoke': { server: string; code_id: number };
  /** The target is the user or the class (group) the quota is for. */
  'quota.set': Grants;
  'quota.delete': { old: Record<string, unknown> };
  /** A running server reached a quota; it is stopped at `stop_at` unless the quota frees up or is raised. */
  'quota.warning': { server: string; quota: string; stop_at: string };
}

export type AuditAction = keyof AuditDetails;

export const AUDIT_ACTIONS: readonly AuditAction[] = Object.freeze([
  'login.success', 'login.failure', 'logout', 'token.create', 'token.revoke', 'user.create', 'user.delete', 'user.admin',
  'user.rename', 'user.password', 'group.change', 'class.change', 'link.create', 'link.use', 'server.start', 'server.stop',
  'lease.issue', 'lease.revoke', 'share.grant', 'share.revoke', 'share_code.create', 'share_code.revoke',
  'quota.set', 'quota.delete', 'quota.warning',
] satisfies AuditAction[]);

export type AuditEvent = {
  [A in AuditAction]: { action: A; actor: AuditActor; target?: AuditTarget; source?: string | null; details: AuditDetails[A] };
}[AuditAction];
