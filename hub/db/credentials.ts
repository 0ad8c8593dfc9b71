import { nowIso, type Db } from './database.js';
import type { LeaseRow } from './schema.js';

export interface NewLease {
  userName: string;
  serverId: number;
  serverName: string;
  service: string;
  account: string;
  revokeData: Record<string, unknown>;
  expiresAt: string;
}

/**
 * Credential leases. A lease is `issuing` from before its account exists until the broker confirmed it, `active`
 * while its server may use it, `revoking` once revocation was decided (and while it keeps failing), `revoked` at the end.
 */
export class LeaseRepository {
  constructor(private readonly db: Db) {}

  create(lease: NewLease): Promise<LeaseRow> {
    return this.db.insertInto('credential_leases').values({
      user_name: lease.userName, server_id: lease.serverId, server_name: lease.serverName, service: lease.service,
      account: lease.account, revoke_data: JSON.stringify(lease.revokeData), status: 'issuing', issued_at: nowIso(),
      expires_at: lease.expiresAt, revoked_at: null, revoke_failures: 0, last_error: null,
    }).returningAll().executeTakeFirstOrThrow();
  }

  byId(id: number): Promise<LeaseRow | undefined> {
    return this.db.selectFrom('credential_leases').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async markActive(id: number): Promise<void> {
    await this.db.updateTable('credential_leases').set({ status: 'active' }).where('id', '=', id).where('status', '=', 'issuing').execute();
  }

  /** Leases not yet revoked of one user (newest first): what the admin API lists. */
  unrevokedOfUser(userName: string): Promise<LeaseRow[]> {
    return this.db.selectFrom('credential_leases').selectAll().where('user_name', '=', userName)
      .where('status', '!=', 'revoked').orderBy('id', 'desc').execute();
  }

  /** Every lease not yet revoked, oldest first: the admin's overview, failing revocations included. */
  unrevoked(): Promise<LeaseRow[]> {
    return this.db.selectFrom('credential_leases').selectAll().where('status', '!=', 'revoked').orderBy('id').execute();
  }

  unrevokedOfServer(serverId: number): Promise<LeaseRow[]> {
    return this.db.selectFrom('credential_leases').selectAll().where('server_id', '=', serverId)
      .where('status', '!=', 'revoked').execute();
  }

  /**
   * Leases to revoke now: expired, already being revoked, or whose server is neither starting nor running
   * (stopped, deleted, or a spawn the hub was killed in the middle of).
   */
  dueForRevocation(now: string): Promise<LeaseRow[]> {
    return this.db.selectFrom('credential_leases').selectAll().where('status', '!=', 'revoked')
      .where((eb) => eb.or([
        eb('expires_at', '<=', now),
        eb('status', '=', 'revoking'),
        eb.not(eb.exists(eb.selectFrom('servers').select('servers.id').whereRef('servers.id', '=', 'credential_leases.server_id')
          .where('servers.status', 'in', ['starting', 'running']))),
      ])).orderBy('id').execute();
  }

  /** Active leases of running servers: what renewal extends. */
  renewable(): Promise<LeaseRow[]> {
    return this.db.selectFrom('credential_leases').selectAll().where('credential_leases.status', '=', 'active')
      .where((eb) => eb.exists(eb.selectFrom('servers').select('servers.id').whereRef('servers.id', '=', 'credential_leases.server_id')
        .where('servers.status', '=', 'running'))).execute();
  }

  async setExpiry(id: number, expiresAt: string): Promise<void> {
    await this.db.updateTable('credential_leases').set({ expires_at: expiresAt }).where('id', '=', id).where('status', '=', 'active').execute();
  }

  async markRevoking(ids: number[]): Promise<void> {
    if (!ids.length) return;
    await this.db.updateTable('credential_leases').set({ status: 'revoking' }).where('id', 'in', ids).where('status', '!=', 'revoked').execute();
  }

  async markRevoked(id: number): Promise<void> {
    await this.db.updateTable('credential_leases').set({ status: 'revoked', revoked_at: nowIso(), last_error: null }).where('id', '=', id).execute();
  }

  async recordRevokeFailure(id: number, error: string): Promise<void> {
    await this.db.updateTable('credential_leases')
      .set((eb) => ({ revoke_failures: eb('revoke_failures', '+', 1), last_error: error.slice(0, 500) })).where('id', '=', id).execute();
  }
}
