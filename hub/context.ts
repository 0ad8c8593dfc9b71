import type { LabHubConfig } from './config/schema.js';
import type { Store } from './db/index.js';
import type { Authorizer } from './auth/identity.js';
import type { SessionManager } from './auth/sessions.js';
import type { TokenService } from './auth/token-service.js';
import type { Xsrf } from './auth/xsrf.js';
import type { ServerManager } from './servers/manager.js';
import type { CredentialService } from './credentials/service.js';
import type { HubMetrics } from './metrics.js';
import type { Logger } from './log.js';
import type { Authenticator } from '../authenticators/authenticator.js';
import type { AuthStateVault } from './auth/auth-state.js';
import type { ProxyClient } from '../proxy/client.js';
import type { ProxySwitch } from './proxy-switch.js';
import type { Spawner } from '../spawners/spawner.js';
import type { ClassGuard } from './classes/guard.js';
import type { RouteRevocations } from './servers/route-revocations.js';

import type { LoginThrottle } from './auth/login-throttle.js';

/** What request handlers receive: built once by app.ts, passed in, never imported as global state. */
export interface HubContext {
  config: LabHubConfig;
  version: string;
  store: Store;
  authz: Authorizer;
  sessions: SessionManager;
  tokens: TokenService;
  xsrf: Xsrf;
  servers: ServerManager;
  spawner: Spawner;
  authenticator: Authenticator;
  /** Encrypts users.auth_state; absent without LABHUB_CRYPT_KEY. */
  authState?: AuthStateVault;
  proxy: ProxyClient;
  /** Has the proxy refuse tokens the hub revoked, at once (hub/servers/route-revocations.ts). */
  revocations: RouteRevocations;
  /** Points the hub at another proxy (`PATCH /proxy`); absent with several proxy instances (proxy.api_urls). */
  proxySwitch?: ProxySwitch;
  metrics: HubMetrics;
  log: Logger;
  /** The hub's own URL as the proxy reaches it, e.g. http://127.0.0.1:8081 */
  hubUrl: string;
  credentials: CredentialService;
  /** The class policy: what a class may grant and who may change its members (docs/classes.md). */
  classes: ClassGuard;
  /**
   * Failed password checks, per account and address: sign-in and the password change page count into the same
   * one, so a borrowed session cannot guess the owner's password faster than the login form allows. Null when off.
   */
  loginThrottle: LoginThrottle | null;
  /** Asks the process that runs the hub to shut it down (`POST /shutdown`); absent when nothing can. */
  requestShutdown?: (request: ShutdownRequest) => void;
}

/** What `POST /shutdown` asks for besides the hub itself. */
export interface ShutdownRequest {
  /** Stop the proxy this hub started. */
  proxy: boolean;
  /** Stop every user's server first. */
  servers: boolean;
}
