import { MongoClient, MongoServerError, type Document } from 'mongodb';
import type { AccountPlan, CredentialBroker, Delivery, IssueRequest } from './broker.js';
import { accountName, userDataNames, type AccountOwner } from './names.js';
import { accountVariables, withAccount } from './urls.js';

/**
 * How leases are limited to their databases:
 * - `roles`: MongoDB's own roles on each account (a MongoDB server with authorization);
 * - `gate`: a grant document per account that LabHub's mongo-gate enforces in front of a server without roles
 *   (FerretDB 1.x); notebooks must reach the server only through the gate;
 * - `none`: accounts only authenticate.
 */
export type MongoAuthorization = 'roles' | 'gate' | 'none';

/** What a lease may use, as the gate reads it (datalab/mongo-gate/grants.ts). */
export interface MongoGrant {
  read: string[];
  write: string[];
}

/** The broker's admin connection. */
export interface MongoAdmin {
  /** A command on the `admin` database. */
  command(command: Document): Promise<Document>;
  /** Drops a database (a command on that database, not on `admin`). */
  dropDatabase(name: string): Promise<void>;
  /** Writes or (with null) deletes an account's grant for the gate. */
  setGrant(account: string, grant: MongoGrant | null): Promise<void>;
  close(): Promise<void>;
}

export interface MongoBrokerOptions {
  /** Where notebook servers connect, without credentials, e.g. mongodb://mongo:27017/ (the gate, with `gate`). */
  connectUrl: string;
  /** Default `roles`. */
  authorization?: MongoAuthorization;
}

/** Where grants live; datalab/mongo-gate reads them from here. */
export const GATE_GRANTS = { database: 'labhub_gate', collection: 'grants' } as const;

const USER_NOT_FOUND = 11;
const COMMAND_NOT_FOUND = 59;

/** The admin connection over the official driver. */
export function mongoAdmin(adminUrl: string, timeoutMs: number): MongoAdmin {
  const client = new MongoClient(adminUrl, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs });
  const grants = client.db(GATE_GRANTS.database).collection<{ _id: string } & MongoGrant>(GATE_GRANTS.collection);
  return {
    command: (command) => client.db('admin').command(command, { timeoutMS: timeoutMs }),
    dropDatabase: async (name) => {
      await client.db(name).dropDatabase({ timeoutMS: timeoutMs });
    },
    setGrant: async (account, grant) => {
      if (grant) await grants.replaceOne({ _id: account }, grant, { upsert: true, timeoutMS: timeoutMs });
      else await grants.deleteOne({ _id: account }, { timeoutMS: timeoutMs });
    },
    close: () => client.close(),
  };
}

/**
 * Per-server MongoDB users in the `admin` database: `read` on the sensor databases, `readWrite` on the user's own
 * database, as roles or as a grant for the gate. MongoDB has no expiry for users, so the hub's sweeper is the TTL;
 * revocation deletes the grant (the gate then cuts the account's open connections), drops the user and kills its
 * sessions (servers without session killing, such as FerretDB, only get the drop).
 */
export class MongoBroker implements CredentialBroker {
  readonly service = 'mongodb' as const;

  constructor(private readonly admin: MongoAdmin, private readonly options: MongoBrokerOptions) {}

  plan(owner: AccountOwner): AccountPlan {
    return { account: accountName('labhub', owner.name, '-'), revokeData: { database: userDataNames(owner).mongoDatabase } };
  }

  async issue(request: IssueRequest): Promise<Delivery> {
    const { account, password, policy } = request;
    const { database } = request.revokeData as { database: string };
    const { read_databases: readDatabases, own_database: ownDatabase } = policy.mongodb;
    const authorization = this.options.authorization ?? 'roles';
    const roles = authorization !== 'roles' ? [] : [
      ...readDatabases.map((db) => ({ role: 'read', db })),
      ...(ownDatabase ? [{ role: 'readWrite', db: database }] : []),
    ];
    // The grant first: a driver may log in the moment the account exists.
    if (authorization === 'gate') await this.admin.setGrant(account, { read: readDatabases, write: ownDatabase ? [database] : [] });
    await this.admin.command({ createUser: account, pwd: password, roles });
    const url = withAccount(this.options.connectUrl, account, password);
    url.searchParams.set('authSource', 'admin');
    return {
      env: {
        ...accountVariables('MONGODB', url.toString(), account, password),
        LABHUB_MONGODB_DATABASE: ownDatabase ? database : '',
        LABHUB_MONGODB_READ_DATABASES: readDatabases.join(','),
      },
      file: { url: url.toString(), username: account, password, database: ownDatabase ? database : null, read_databases: readDatabases },
    };
  }

  async renew(): Promise<void> {}

  async revoke(plan: AccountPlan): Promise<void> {
    if (this.options.authorization === 'gate') await this.admin.setGrant(plan.account, null);
    await this.admin.command({ dropUser: plan.account }).catch((err: unknown) => {
      if (!(err instanceof MongoServerError && err.code === USER_NOT_FOUND)) throw err;
    });
    await this.admin.command({ killAllSessionsByPattern: [{ users: [{ user: plan.account, db: 'admin' }] }] }).catch((err: unknown) => {
      if (!(err instanceof MongoServerError && err.code === COMMAND_NOT_FOUND)) throw err;
    });
  }

  /** Accounts are per lease and already revoked; what is left is the user's own database, dropped only when purging. */
  async removeUser(owner: AccountOwner, { purge }: { purge: boolean }): Promise<string[]> {
    if (!purge) return [];
    const { mongoDatabase } = userDataNames(owner);
    await this.admin.dropDatabase(mongoDatabase);
    return [`MongoDB database ${mongoDatabase}`];
  }

  close(): Promise<void> {
    return this.admin.close();
  }
}
