import type { LabHubConfig } from '../hub/config/schema.js';
import { ConfigError, publicOrigin } from '../hub/config/load.js';
import type { Store } from '../hub/db/index.js';
import type { Logger } from '../hub/log.js';
import type { Authenticator } from './authenticator.js';
import { DummyAuthenticator } from './dummy.js';
import { LdapAuthenticator } from './ldap.js';
import { NativeAuthenticator } from './native.js';
import { OidcAuthenticator } from './oidc.js';
import { PamAuthenticator } from './pam.js';

/** The authenticator `authenticator.kind` names, with its section of `auth:`. */
export function createAuthenticator(config: LabHubConfig, store: Store, log: Logger): Authenticator {
  const authLog = log.child({ component: 'auth' });
  switch (config.authenticator.kind) {
    case 'dummy':
      log.warn('the dummy authenticator is for tests and demos only: do not use it in production');
      return new DummyAuthenticator(config.authenticator.password);
    case 'pam':
      return new PamAuthenticator(config.auth.pam.service, authLog);
    case 'ldap':
      if (!config.auth.ldap) throw new ConfigError('authenticator.kind is ldap but auth.ldap is not set');
      return new LdapAuthenticator(config.auth.ldap, authLog);
    case 'oidc':
      if (!config.auth.oidc) throw new ConfigError('authenticator.kind is oidc but auth.oidc is not set');
      return new OidcAuthenticator(config.auth.oidc, config.auth.oidc.redirect_url ?? `${publicOrigin(config)}/hub/oauth_callback`, authLog);
    case 'native':
      return new NativeAuthenticator(store);
  }
}
