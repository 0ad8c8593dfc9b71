import * as oidc from 'openid-client';
import type { OidcConfig } from '../hub/config/auth-schema.js';
import { normalizeUsername, validateUsername } from '../hub/auth/usernames.js';
import type { Logger } from '../hub/log.js';
import type { AuthenticatedUser, Authenticator, PendingLogin, RedirectLogin, UserInfo } from './authenticator.js';

type Claims = Record<string, unknown>;

/**
 * OpenID Connect with openid-client: discovery, the authorization code flow with PKCE (S256), state and nonce, and
 * ID token validation (signature, issuer, audience, expiry, nonce) by the library. The username and groups come
 * from configurable claims of the ID token and userinfo; the provider's tokens go to auth_state, are refreshed
 * before a spawn, and the ID token is the hint for the provider's end-session endpoint at logout.
 */
export class OidcAuthenticator implements Authenticator, RedirectLogin {
  readonly kind = 'oidc';
  readonly loginStyle = 'redirect' as const;
  readonly redirect = this;
  readonly serviceName: string;
  private discovered: Promise<oidc.Configuration> | null = null;

  constructor(private readonly config: OidcConfig, readonly callbackUrl: string, private readonly log: Logger) {
    this.serviceName = config.login_service;
  }

  /** Discovery once, retried on the next login if the provider was down. */
  private configuration(): Promise<oidc.Configuration> {
    this.discovered ??= oidc.discovery(new URL(this.config.issuer), this.config.client_id, this.config.client_secret, undefined,
      // The library refuses http:// unless told; only a provider on a test host is reached that way.
      this.config.allow_insecure_http ? { execute: [oidc.allowInsecureRequests] } : undefined)
      .catch((err: unknown) => {
        this.discovered = null;
        throw err;
      });
    return this.discovered;
  }

  async authenticate(): Promise<AuthenticatedUser | null> {
    return null;
  }

  async begin(): Promise<{ url: string; pending: PendingLogin }> {
    const configuration = await this.configuration();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: this.callbackUrl, scope: this.config.scopes.join(' '), state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    return { url: url.href, pending: { verifier, state, nonce } };
  }

  async finish(callbackUrl: URL, pending: PendingLogin): Promise<AuthenticatedUser | null> {
    try {
      const configuration = await this.configuration();
      const tokens = await oidc.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true,
      });
      const idClaims = tokens.claims()!;
      const userinfo = await oidc.fetchUserInfo(configuration, tokens.access_token, idClaims.sub);
      const claims: Claims = { ...userinfo, ...idClaims };
      const name = this.usernameFrom(claims);
      if (name === null) return null;
      return {
        name, groups: this.groupsFrom(claims), authState: this.authState(tokens, claims),
        identity: { issuer: idClaims.iss, subject: idClaims.sub }, userInfo: userInfoFrom(claims),
      };
    } catch (err) {
      // State, nonce, PKCE, audience, signature, replayed code: the library says which; the user sees one message.
      const { code, error, cause } = err as { code?: string; error?: string; cause?: { message?: string } };
      this.log.info({ err: (err as Error).message, code, error, reason: cause?.message }, 'OpenID Connect callback refused');
      return null;
    }
  }

  private usernameFrom(claims: Claims): string | null {
    const claim = this.config.username_claim;
    // An e-mail address the provider did not verify is anyone's to claim (oauthenticator GHSA-rrvg-cxh4-qhrv).
    if (claim === 'email' && claims.email_verified !== true) return null;
    const value = claims[claim];
    if (typeof value !== 'string') return null;
    const name = normalizeUsername(value);
    return validateUsername(name) === null ? name : null;
  }

  private groupsFrom(claims: Claims): string[] {
    const value = this.config.groups_claim ? claims[this.config.groups_claim] : undefined;
    return Array.isArray(value) ? value.filter((g): g is string => typeof g === 'string') : [];
  }

  private authState(tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, claims: Claims, previous?: Record<string, unknown>): Record<string, unknown> {
    const expiresIn = tokens.expiresIn();
    return {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token ?? previous?.refresh_token ?? null,
      id_token: tokens.id_token ?? previous?.id_token ?? null,
      expires_at: expiresIn === undefined ? null : Math.floor(Date.now() / 1000) + expiresIn,
      scope: tokens.scope ?? null,
      oidc_user: claims,
    };
  }

  async refreshAuthState(state: Record<string, unknown>): Promise<Record<string, unknown> | null> {
    const expiresAt = typeof state.expires_at === 'number' ? state.expires_at : null;
    if (expiresAt !== null && expiresAt - Date.now() / 1000 > this.config.refresh_before_spawn) return state;
    if (typeof state.refresh_token !== 'string') return expiresAt === null ? state : null;
    try {
      const tokens = await oidc.refreshTokenGrant(await this.configuration(), state.refresh_token);
      const claims = (state.oidc_user ?? {}) as Claims;
      return this.authState(tokens, claims, state);
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 'OpenID Connect token refresh refused');
      return null;
    }
  }

  async logoutUrl(state: Record<string, unknown> | null, returnTo: string): Promise<string | null> {
    if (!this.config.end_session) return null;
    const configuration = await this.configuration();
    if (!configuration.serverMetadata().end_session_endpoint) return null;
    const params: Record<string, string> = { post_logout_redirect_uri: returnTo, client_id: this.config.client_id };
    if (typeof state?.id_token === 'string') params.id_token_hint = state.id_token;
    return oidc.buildEndSessionUrl(configuration, params).href;
  }
}

/** The standard profile claims JupyterHub 6 shows as user_info; an avatar only over https, nothing the UI must not load. */
function userInfoFrom(claims: Claims): UserInfo | undefined {
  const text = (v: unknown) => (typeof v === 'string' && v.trim() && v.length <= 200 ? v.trim() : undefined);
  const name = text(claims.name);
  const picture = text(claims.picture);
  const info: UserInfo = {
    ...(name !== undefined && { name, display_name: name, initials: name.split(/\s+/).map((w) => [...w][0]).join('').slice(0, 3).toUpperCase() }),
    ...(picture !== undefined && /^https:\/\//.test(picture) && { avatar_url: picture }),
  };
  return Object.keys(info).length ? info : undefined;
}
