import type { Db } from './database.js';
import { AuditRepository } from './audit.js';
import { AuthEpochRepository } from './auth-epoch.js';
import { LeaseRepository } from './credentials.js';
import { GroupRepository } from './groups.js';
import { IdentityRepository } from './identities.js';
import { InvitationRepository } from './invitations.js';
import { OAuthRepository } from './oauth.js';
import { RoleRepository } from './roles.js';
import { ServerRepository } from './servers.js';
import { ServiceRepository } from './services.js';
import { SessionRepository } from './sessions.js';
import { ShareRepository } from './shares.js';
import { TokenRepository } from './tokens.js';
import { UserRepository } from './users.js';
import { QuotaRepository, UsageRepository } from './usage.js';

/** Every repository over one DB handle: what the hub's components receive instead of the raw DB. */
export interface Store {
  db: Db;
  users: UserRepository;
  groups: GroupRepository;
  tokens: TokenRepository;
  servers: ServerRepository;
  sessions: SessionRepository;
  oauth: OAuthRepository;
  roles: RoleRepository;
  services: ServiceRepository;
  invitations: InvitationRepository;
  leases: LeaseRepository;
  identities: IdentityRepository;
  authEpoch: AuthEpochRepository;
  audit: AuditRepository;
  shares: ShareRepository;
  usage: UsageRepository;
  quotas: QuotaRepository;
  /**
   * Runs `work` in one transaction, with repositories bound to it. Queries must go through the `tx` it is given:
   * on SQLite the transaction holds the only connection, so a query on the outer store would wait forever.
   */
  transaction<T>(work: (tx: Store) => Promise<T>): Promise<T>;
}

export function createStore(db: Db): Store {
  return {
    db,
    // A transaction begun inside another joins it (Kysely has no nested transactions).
    transaction: (work) => (db.isTransaction ? work(createStore(db)) : db.transaction().execute((trx) => work(createStore(trx)))),
    users: new UserRepository(db),
    groups: new GroupRepository(db),
    tokens: new TokenRepository(db),
    servers: new ServerRepository(db),
    sessions: new SessionRepository(db),
    oauth: new OAuthRepository(db),
    roles: new RoleRepository(db),
    services: new ServiceRepository(db),
    invitations: new InvitationRepository(db),
    leases: new LeaseRepository(db),
    identities: new IdentityRepository(db),
    authEpoch: new AuthEpochRepository(db),
    audit: new AuditRepository(db),
    shares: new ShareRepository(db),
    usage: new UsageRepository(db),
    quotas: new QuotaRepository(db),
  };
}
