import type { Logger } from '../log.js';
import type { Store } from '../db/index.js';
import type { LeaseRow } from '../db/schema.js';
import { SERVICE_LABELS, type AccountPlan, type CredentialBroker, type Delivery, type ServiceName } from './broker.js';
import { generatePassword, type AccountOwner } from './names.js';
import { resolvePolicy, type ClassProperties, type CredentialPolicy } from './policy.js';
import { BY_HUB, recordAudit, SYSTEM, type AuditBy } from '../audit/record.js';

export interface ConfiguredBroker {
  broker: CredentialBroker;
  /** A required service that cannot issue fails the spawn; an optional one is skipped with a message. */
  required: boolean;
}

export interface CredentialServiceOptions {
  ttlMs: number;
  sweepIntervalMs: number;
  defaults: CredentialPolicy;
  /** Pauses between the attempts of one revocation; after the last, the sweeper retries. */
  retryDelaysMs?: number[];
}

export interface IssueForServer {
  user: AccountOwner;
  serverId: number;
  serverName: string;
  classes: ClassProperties[];
  progress(message: string): void;
}

/** What a server receives: environment variables and the files its spawner puts in LABHUB_SECRETS_DIR. */
export interface ServerCredentials {
  env: Record<string, string>;
  secretFiles: Record<string, string>;
}

/** The file every server with at least one credential gets, one section per service. */
export const CREDENTIALS_FILE = 'credentials.json';

/** Thrown when a required service cannot issue: the spawn fails with this message. */
export class CredentialIssueError extends Error {
  override name = 'CredentialIssueError';
}

const planOf = (lease: LeaseRow): AccountPlan => ({ account: lease.account, revokeData: JSON.parse(lease.revoke_data) as Record<string, unknown> });

/**
 * Leases of per-server accounts at the lab's data services, after Vault's expiration manager: issued just before
 * a server starts, renewed while it runs, revoked when it stops, when its user is deleted, or by the sweeper once
 * expired or orphaned. A lease row is written before its account exists, so no account is ever unknown to the hub.
 */
export class CredentialService {
  private readonly brokers: Map<ServiceName, ConfiguredBroker>;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly deps: { store: Store; log: Logger },
    brokers: ConfiguredBroker[],
    private readonly options: CredentialServiceOptions,
  ) {
    this.brokers = new Map(brokers.map((b) => [b.broker.service, b]));
  }

  get enabled(): boolean {
    return this.brokers.size > 0;
  }

  /** Issues an account at every configured service for a server about to start. */
  async issueForServer(request: IssueForServer): Promise<ServerCredentials> {
    const env: Record<string, string> = {};
    const file: Record<string, unknown> = {};
    if (!this.enabled) return { env, secretFiles: {} };
    let policy: CredentialPolicy | Error;
    try {
      policy = resolvePolicy(this.options.defaults, request.classes, request.user.name, request.user.uid);
    } catch (err) {
      policy = err instanceof Error ? err : new Error(String(err));
    }
    for (const [service, { broker, required }] of this.brokers) {
      const label = SERVICE_LABELS[service];
      request.progress(`Issuing ${label} credentials`);
      try {
        if (policy instanceof Error) throw policy;
        const delivery = await this.issueOne(broker, request, policy);
        Object.assign(env, delivery.env);
        file[service] = delivery.file;
      } catch (err) {
        const reason = errorText(err);
        this.deps.log.warn({ user: request.user.name, server: request.serverName, service, err: reason }, 'could not issue credentials');
        if (required) throw new CredentialIssueError(`could not issue ${label} credentials: ${reason}`);
        request.progress(`${label} credentials unavailable (${reason}); starting without them`);
      }
    }
    const secretFiles: Record<string, string> = Object.keys(file).length ? { [CREDENTIALS_FILE]: `${JSON.stringify(file, null, 2)}\n` } : {};
    return { env, secretFiles };
  }

  private async issueOne(broker: CredentialBroker, request: IssueForServer, policy: CredentialPolicy): Promise<Delivery> {
    const plan = broker.plan(request.user);
    const expiresAt = new Date(Date.now() + this.options.ttlMs);
    const lease = await this.deps.store.leases.create({
      userName: request.user.name, serverId: request.serverId, serverName: request.serverName, service: broker.service,
      account: plan.account, revokeData: plan.revokeData, expiresAt: expiresAt.toISOString(),
    });
    try {
      const delivery = await broker.issue({ ...plan, user: request.user.name, password: generatePassword(), expiresAt, policy });
      await this.deps.store.transaction(async (tx) => {
        await tx.leases.markActive(lease.id);
        await recordAudit(tx, {
          action: 'lease.issue', actor: SYSTEM, target: { kind: 'user', name: request.user.name, uid: request.user.uid },
          details: { lease_id: lease.id, service: broker.service, account: plan.account, server: request.serverName },
        });
      });
      this.deps.log.info({ user: request.user.name, server: request.serverName, service: broker.service, account: plan.account, lease: lease.id }, 'credentials issued');
      return delivery;
    } catch (err) {
      // Part of the account may exist (a role without its client): undo it now, or leave it to the sweeper.
      await this.revoke(lease);
      throw err;
    }
  }

  async revokeServer(serverId: number): Promise<LeaseRow[]> {
    return this.revokeAll(await this.deps.store.leases.unrevokedOfServer(serverId));
  }

  async revokeUser(userName: string): Promise<LeaseRow[]> {
    return this.revokeAll(await this.deps.store.leases.unrevokedOfUser(userName));
  }

  /**
   * For a deleted account, after revokeUser: what each service keeps for the user goes (their owner role), and
   * their data too with `purge`. A service that fails is reported, not retried: the admin sees it in the result.
   */
  async removeUser(owner: AccountOwner, options: { purge: boolean }): Promise<{ removed: string[]; failed: string[] }> {
    const removed: string[] = [];
    const failed: string[] = [];
    for (const [service, { broker }] of this.brokers) {
      if (!broker.removeUser) continue;
      try {
        removed.push(...(await broker.removeUser(owner, options)));
      } catch (err) {
        this.deps.log.error({ user: owner.name, service, err: errorText(err) }, 'could not remove the user\'s data at a service');
        failed.push(`${SERVICE_LABELS[service]}: ${errorText(err)}`);
      }
    }
    return { removed, failed };
  }

  /** Revokes leases; returns those that could not be revoked (they stay `revoking` and the sweeper retries). */
  async revokeAll(leases: LeaseRow[]): Promise<LeaseRow[]> {
    await this.deps.store.leases.markRevoking(leases.map((l) => l.id));
    const failed: LeaseRow[] = [];
    for (const lease of leases) if (!(await this.revoke(lease))) failed.push(lease);
    return failed;
  }

  /** One lease, with retries; true once revoked. A failure is recorded on the lease and logged as an error. */
  async revoke(lease: LeaseRow, by: AuditBy = BY_HUB): Promise<boolean> {
    const { store, log } = this.deps;
    await store.leases.markRevoking([lease.id]);
    const configured = this.brokers.get(lease.service as ServiceName);
    const delays = [0, ...(this.options.retryDelaysMs ?? [200, 1000])];
    let reason = `no ${lease.service} broker is configured any more`;
    for (const delay of configured ? delays : []) {
      if (delay) await new Promise((r) => setTimeout(r, delay));
      try {
        await configured!.broker.revoke(planOf(lease));
        await store.transaction(async (tx) => {
          await tx.leases.markRevoked(lease.id);
          await recordAudit(tx, {
            action: 'lease.revoke', ...by, target: { kind: 'user', name: lease.user_name },
            details: { lease_id: lease.id, service: lease.service, account: lease.account },
          });
        });
        log.info({ user: lease.user_name, service: lease.service, account: lease.account, lease: lease.id }, 'credentials revoked');
        return true;
      } catch (err) {
        reason = errorText(err);
      }
    }
    await store.leases.recordRevokeFailure(lease.id, reason);
    log.error({ user: lease.user_name, service: lease.service, account: lease.account, lease: lease.id, err: reason },
      'credential revocation failed; the sweeper will retry');
    return false;
  }

  /**
   * One pass of the sweeper: extends leases of running servers that are past half their life, then revokes every
   * lease that expired, whose server is gone, or whose revocation failed before.
   */
  sweep(): Promise<{ renewed: number; revoked: number; failed: number }> {
    const pass = this.sweeping.then(() => this.sweepOnce());
    this.sweeping = pass.catch(() => undefined);
    return pass;
  }

  private async sweepOnce(): Promise<{ renewed: number; revoked: number; failed: number }> {
    const { store, log } = this.deps;
    let renewed = 0;
    const halfLife = Date.now() + this.options.ttlMs / 2;
    for (const lease of await store.leases.renewable()) {
      if (Date.parse(lease.expires_at) > halfLife) continue;
      const configured = this.brokers.get(lease.service as ServiceName);
      if (!configured) continue;
      const expiresAt = new Date(Date.now() + this.options.ttlMs);
      try {
        await configured.broker.renew(planOf(lease), expiresAt);
        await store.leases.setExpiry(lease.id, expiresAt.toISOString());
        renewed += 1;
      } catch (err) {
        log.warn({ lease: lease.id, service: lease.service, err: errorText(err) }, 'could not renew credentials; will retry');
      }
    }
    const due = await store.leases.dueForRevocation(new Date().toISOString());
    const failed = await this.revokeAll(due);
    if (renewed || due.length) log.info({ renewed, revoked: due.length - failed.length, failed: failed.length }, 'credential sweep');
    return { renewed, revoked: due.length - failed.length, failed: failed.length };
  }

  /** Starts the periodic sweep; the first pass runs at once (it revokes what a killed hub left behind). */
  start(): Promise<unknown> {
    if (!this.enabled) return Promise.resolve();
    const pass = () => this.sweep().catch((e: unknown) => this.deps.log.error({ err: errorText(e) }, 'credential sweep failed'))
      .finally(() => {
        if (!this.closed) this.timer = setTimeout(pass, this.options.sweepIntervalMs).unref();
      });
    return pass();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.sweeping;
    await Promise.allSettled([...this.brokers.values()].map((b) => b.broker.close()));
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
