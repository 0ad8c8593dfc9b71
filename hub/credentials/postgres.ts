import pg from 'pg';
import type { AccountPlan, CredentialBroker, Delivery, IssueRequest } from './broker.js';
import { accountName, userDataNames } from './names.js';
import { scramSha256Verifier } from './scram.js';
import { accountVariables, withAccount } from './urls.js';

export interface PostgresBrokerOptions {
  /** The admin connection: a role with CREATEROLE that may grant on the shared schemas. */
  adminUrl: string;
  /** Where notebook servers connect, without credentials, e.g. postgres://db:5432/processed. */
  connectUrl: string;
  timeoutMs: number;
}

const id = (name: string) => pg.escapeIdentifier(name);
const literal = (value: string) => pg.escapeLiteral(value);

/**
 * Per-server PostgreSQL roles. A lease's role is a LOGIN role that expires (VALID UNTIL) and inherits:
 *   - `labhub_read_<schema>`: USAGE and SELECT on one shared schema (one NOLOGIN role per schema, made on demand);
 *   - `labhub_owner_<user>`: owner of the user's schema `u_<user>`, which outlives the lease so the user's
 *     tables survive a server restart.
 * Revocation blocks new logins, terminates the role's sessions (VALID UNTIL does not end them), hands what the
 * role created to the user's owner role, and drops it.
 */
export class PostgresBroker implements CredentialBroker {
  readonly service = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(private readonly options: PostgresBrokerOptions) {
    this.pool = new pg.Pool({ connectionString: options.adminUrl, max: 2, connectionTimeoutMillis: options.timeoutMs, statement_timeout: options.timeoutMs });
    // An idle admin connection that drops must not crash the hub; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  plan(user: string): AccountPlan {
    const names = userDataNames(user);
    return { account: accountName('lh', user), revokeData: { owner: names.postgresOwner, schema: names.postgresSchema } };
  }

  async issue(request: IssueRequest): Promise<Delivery> {
    const { account, password, expiresAt, policy } = request;
    const { owner, schema } = request.revokeData as { owner: string; schema: string };
    const { read_schemas: readSchemas, own_schema: ownSchema, connection_limit: connectionLimit } = policy.postgres;
    const database = await this.inTransaction(async (client) => {
      // One issue at a time: the shared roles and schemas below are created on demand.
      await client.query(`select pg_advisory_xact_lock(hashtext('labhub-credentials'))`);
      const { rows } = await client.query<{ db: string }>('select current_database() as db');
      const db = rows[0]!.db;
      const memberOf: string[] = [];
      for (const shared of readSchemas) {
        const reader = `labhub_read_${shared}`;
        await ensureRole(client, reader);
        await client.query(`grant usage on schema ${id(shared)} to ${id(reader)}`);
        await client.query(`grant select on all tables in schema ${id(shared)} to ${id(reader)}`);
        await client.query(`alter default privileges in schema ${id(shared)} grant select on tables to ${id(reader)}`);
        memberOf.push(reader);
      }
      if (ownSchema) {
        await ensureRole(client, owner);
        await client.query(`create schema if not exists ${id(schema)} authorization ${id(owner)}`);
        memberOf.push(owner);
      }
      await client.query(`create role ${id(account)} login inherit password ${literal(scramSha256Verifier(password))}
        valid until ${literal(expiresAt.toISOString())} connection limit ${connectionLimit}`);
      for (const role of memberOf) await client.query(`grant ${id(role)} to ${id(account)}`);
      await client.query(`grant connect on database ${id(db)} to ${id(account)}`);
      const searchPath = [...(ownSchema ? [schema] : []), ...readSchemas].map(id).join(', ') || "''";
      await client.query(`alter role ${id(account)} in database ${id(db)} set search_path = ${searchPath}`);
      return db;
    });
    const url = withAccount(this.options.connectUrl, account, password);
    url.pathname = `/${database}`;
    return {
      env: {
        ...accountVariables('POSTGRES', url.toString(), account, password),
        LABHUB_POSTGRES_SCHEMA: ownSchema ? schema : '',
        PGHOST: url.hostname, PGPORT: url.port || '5432', PGDATABASE: database, PGUSER: account, PGPASSWORD: password,
      },
      file: { url: url.toString(), host: url.hostname, port: Number(url.port || 5432), database, username: account, password,
        schema: ownSchema ? schema : null, read_schemas: readSchemas },
    };
  }

  async renew(plan: AccountPlan, expiresAt: Date): Promise<void> {
    if (!(await this.roleExists(plan.account))) throw new Error(`role ${plan.account} no longer exists`);
    await this.pool.query(`alter role ${id(plan.account)} valid until ${literal(expiresAt.toISOString())}`);
  }

  async revoke(plan: AccountPlan): Promise<void> {
    const { account } = plan;
    if (!(await this.roleExists(account))) return;
    const { owner } = plan.revokeData as { owner: string };
    await this.pool.query(`alter role ${id(account)} nologin`);
    await this.pool.query('select pg_terminate_backend(pid) from pg_stat_activity where usename = $1', [account]);
    await this.inTransaction(async (client) => {
      const heir = (await client.query('select 1 from pg_roles where rolname = $1', [owner])).rowCount ? id(owner) : 'current_user';
      await client.query(`reassign owned by ${id(account)} to ${heir}`);
      await client.query(`drop owned by ${id(account)}`);
      await client.query(`drop role ${id(account)}`);
    });
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private async roleExists(role: string): Promise<boolean> {
    return Boolean((await this.pool.query('select 1 from pg_roles where rolname = $1', [role])).rowCount);
  }

  private async inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      const result = await work(client);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

async function ensureRole(client: pg.PoolClient, role: string): Promise<void> {
  const exists = await client.query('select 1 from pg_roles where rolname = $1', [role]);
  if (!exists.rowCount) await client.query(`create role ${id(role)} nologin`);
}
