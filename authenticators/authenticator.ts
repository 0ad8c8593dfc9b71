/** The seam between the hub's login and an identity source. */
export interface AuthenticatedUser {
  /** Normalized username. */
  name: string;
  /** Set when the source decides admin status; undefined leaves the hub's record as it is. */
  admin?: boolean;
  groups?: string[];
  authState?: Record<string, unknown>;
}

export interface LoginAttempt {
  username: string;
  password: string;
  /** Client address, for rate limiting and logs. */
  ip: string;
}

export interface Authenticator {
  readonly kind: string;
  /** Returns the user on success, null on any failure: callers give one generic message either way. */
  authenticate(attempt: LoginAttempt): Promise<AuthenticatedUser | null>;
  /** The login-page shape: a username/password form, or a "Sign in with …" button that redirects. */
  readonly loginStyle: 'form' | 'redirect';
}
