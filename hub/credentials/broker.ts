/**
 * The seam between the hub and a data service that hands out per-server accounts (MQTT, PostgreSQL, MongoDB).
 *
 * Modelled on Vault's database secrets engine: the hub generates the account name and password, the broker
 * creates the account with the rights the policy gives, extends it while the server runs, and deletes it (ending
 * live sessions) when the lease ends. The hub stores only `account` and `revokeData`, never the password.
 */
import type { AccountOwner } from './names.js';
import type { CredentialPolicy } from './policy.js';

export type ServiceName = 'mqtt' | 'postgres' | 'mongodb';

export const SERVICE_LABELS: Record<ServiceName, string> = { mqtt: 'MQTT', postgres: 'PostgreSQL', mongodb: 'MongoDB' };

export interface AccountPlan {
  /** Generated name of the account at the service; unique per lease. */
  account: string;
  /** What revocation needs besides the account name; written to the lease before the account exists. */
  revokeData: Record<string, unknown>;
}

export interface IssueRequest extends AccountPlan {
  /** The hub user the account is for. */
  user: string;
  password: string;
  expiresAt: Date;
  policy: CredentialPolicy;
}

/** How the server receives an account: environment variables and a section of the credentials JSON file. */
export interface Delivery {
  env: Record<string, string>;
  file: Record<string, unknown>;
}

export interface CredentialBroker {
  readonly service: ServiceName;
  /** Names for a new account of `owner`; pure, so it can be recorded before anything is created. */
  plan(owner: AccountOwner): AccountPlan;
  /** Creates the account. Throws with a message safe to show the user (no secret) when it cannot. */
  issue(request: IssueRequest): Promise<Delivery>;
  /** Extends the account's life at the service, where the service knows expiry at all. */
  renew(plan: AccountPlan, expiresAt: Date): Promise<void>;
  /** Deletes the account and ends its sessions. Idempotent: an account that does not exist counts as revoked. */
  revoke(plan: AccountPlan): Promise<void>;
  /**
   * When the account is deleted: removes what the user kept at the service across servers (the role owning their
   * schema), and with `purge` their data too (schema, database). Without it the data stays, owned by the admin, and
   * no later account can reach it (names derive from the uid). Returns what was removed, for the admin.
   */
  removeUser?(owner: AccountOwner, options: { purge: boolean }): Promise<string[]>;
  /** Closes the admin connection. */
  close(): Promise<void>;
}
