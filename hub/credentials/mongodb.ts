import { MongoClient, MongoServerError, type Document } from 'mongodb';
import type { AccountPlan, CredentialBroker, Delivery, IssueRequest } from './broker.js';
import { accountName, userDataNames, type AccountOwner } from './names.js';
import { accountVariables, withAccount } from './urls.js';

/**
 * What an admin is told when the broker makes accounts without roles (`grant_roles: false`, for servers such as
 * FerretDB 1.x that refuse them): such a server authenticates each lease but authorizes nothing, so isolation
 * between users' databases there is not something the hub can give.
 */
export const UNISOLATED_MONGODB_WARNING =
  'credentials.mongodb.grant_roles is false: the MongoDB server enforces no roles, so any lease can read and write every database there, ' +
  'other users\' included. Use a MongoDB server with authorization (grant_roles: true) where users must not reach each other\'s data.';

/** The one call the broker makes: a command on the `admin` database. */
export interface MongoAdmin {
  command(command: Document): Promise<Document>;
  /** Drops a database (a command on that database, not on `admin`). */
  dropDatabase(name: string): Promise<void>;
  close(): Promise<void>;
}

export interface MongoBrokerOptions {
  /** Where notebook servers connect, without credentials, e.g. mongodb://mongo:27017/. */
  connectUrl: string;
  /**
   * false for MongoDB-wire servers that implement users but not roles (FerretDB 1.x): accounts are created without
   * roles, so they can log in but nothing limits what they reach. Default true.
   */
  grantRoles?: boolean;
}

const USER_NOT_FOUND = 11;
const COMMAND_NOT_FOUND = 59;

/** The admin connection over the official driver. */
export function mongoAdmin(adminUrl: string, timeoutMs: number): MongoAdmin {
  const client = new MongoClient(adminUrl, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs });
  return {
    command: (command) => client.db('admin').command(command, { timeoutMS: timeoutMs }),
    dropDatabase: async (name) => {
      await client.db(name).dropDatabase({ timeoutMS: timeoutMs });
    },
    close: () => client.close(),
  };
}

/**
 * Per-server MongoDB users in the `admin` database: `read` on the sensor databases, `readWrite` on the user's own
 * database. MongoDB has no expiry for users, so the hub's sweeper is the TTL; revocation drops the user and kills
 * its sessions (servers without session killing, such as FerretDB, only get the drop).
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
    const roles = this.options.grantRoles === false ? [] : [
      ...readDatabases.map((db) => ({ role: 'read', db })),
      ...(ownDatabase ? [{ role: 'readWrite', db: database }] : []),
    ];
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
