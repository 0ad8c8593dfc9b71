/** The seam between the hub's login and an identity source. */
export interface AuthenticatedUser {
  /** Normalized username. */
  name: string;
  /** Set when the source decides admin status; undefined leaves the hub's record as it is. */
  admin?: boolean;
  /** Group names from the identity source (UNIX groups, LDAP groups, an OIDC groups claim). */
  groups?: string[];
  authState?: Record<string, unknown>;
  /** The provider's stable id for this person (OpenID Connect `iss` + `sub`), bound to the hub user at first login. */
  identity?: { issuer: string; subject: string };
  /** How the person is shown (JupyterHub 6's user_info): only these keys, each a short string. */
  userInfo?: UserInfo;
}

export interface UserInfo {
  name?: string;
  display_name?: string;
  initials?: string;
  avatar_url?: string;
}

export interface LoginAttempt {
  username: string;
  password: string;
  /** Client address, for rate limiting and logs. */
  ip: string;
}

/** What the hub keeps between sending the browser to the identity provider and its return: never sent to the browser. */
export type PendingLogin = Record<string, string>;

/** A login that happens at an identity provider (OpenID Connect): the hub redirects there and gets a callback. */
export interface RedirectLogin {
  /** Display name on the login button, e.g. "Keycloak". */
  readonly serviceName: string;
  /** The hub's callback URL registered at the provider (…/hub/oauth_callback). */
  readonly callbackUrl: string;
  begin(): Promise<{ url: string; pending: PendingLogin }>;
  /** Finishes at the callback; null when the provider's answer does not check out (state, code, tokens). */
  finish(callbackUrl: URL, pending: PendingLogin): Promise<AuthenticatedUser | null>;
}

export interface Authenticator {
  readonly kind: string;
  /** Returns the user on success, null on any failure: callers give one generic message either way. */
  authenticate(attempt: LoginAttempt): Promise<AuthenticatedUser | null>;
  /** The login-page shape: a username/password form, or a "Sign in with …" button that redirects. */
  readonly loginStyle: 'form' | 'redirect';
  /** Present when loginStyle is 'redirect'. */
  readonly redirect?: RedirectLogin;
  /**
   * Brings the source's credentials in auth_state up to date before a spawn (refreshing expired provider tokens).
   * Returns the state to store and hand to the spawner, or null when the user must sign in again.
   */
  refreshAuthState?(state: Record<string, unknown>): Promise<Record<string, unknown> | null>;
  /** Where to send the browser after the hub's own logout (the provider's end-session endpoint), if anywhere. */
  logoutUrl?(state: Record<string, unknown> | null, returnTo: string): Promise<string | null>;
}
