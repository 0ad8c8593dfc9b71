import { z } from 'zod';
import { fetchedUrl } from './fields.js';

/**
 * The `auth:` section: settings of the PAM, LDAP and OpenID Connect authenticators, and what applies to every
 * authenticator (groups, login rate limits, auth_state). `authenticator.kind` picks the source; documented in
 * docs/config.md.
 */
const seconds = (max: number) => z.number().min(0).max(max);

const pamSchema = z.strictObject({
  /** The PAM service (a file in /etc/pam.d). A dedicated one without `nullok` is safest. */
  service: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/, 'expected a PAM service name').default('login'),
});

const ldapSchema = z
  .strictObject({
    /** ldap://host:389 or ldaps://host:636. */
    url: z.string().regex(/^ldaps?:\/\/[^\s/]+\/?$/, 'expected ldap://host[:port] or ldaps://host[:port]'),
    /** Upgrade an ldap:// connection with StartTLS before anything is sent. */
    start_tls: z.boolean().default(false),
    /** PEM file of the CA that signed the server's certificate (LDAPS and StartTLS). */
    ca_file: z.string().min(1).optional(),
    /** Only for tests against a server with a self-signed certificate. */
    tls_reject_unauthorized: z.boolean().default(true),
    timeout: z.number().min(0.1).max(120).default(10),
    /** Direct bind: DN templates tried in order; `{username}` is replaced by the RFC 4514-escaped login name. */
    bind_dn_templates: z.array(z.string().includes('{username}', { message: 'a bind DN template needs {username}' })).default([]),
    /** Search-then-bind: a service account finds the user's DN, then the user's password is checked by binding as it. */
    search: z
      .strictObject({
        base_dn: z.string().min(1),
        bind_dn: z.string().min(1),
        bind_password: z.string().min(1),
        /** The attribute the login name is matched against: uid on OpenLDAP, sAMAccountName on Active Directory. */
        user_attribute: z.string().regex(/^[a-zA-Z][a-zA-Z0-9-]*$/).default('uid'),
        /** An extra filter ANDed with the user match, e.g. (objectClass=person). */
        filter: z.string().regex(/^\(.*\)$/, 'expected an LDAP filter in parentheses').optional(),
      })
      .optional(),
    /** The attribute whose value becomes the hub username (it must be unique); default: the login name. */
    username_attribute: z.string().regex(/^[a-zA-Z][a-zA-Z0-9-]*$/).optional(),
    /** Where groups are searched; their `name_attribute` values are the group names used by auth.*_groups. */
    group_search: z
      .strictObject({
        base_dn: z.string().min(1),
        /** `{dn}` is the user's DN and `{username}` the login name, both filter-escaped. */
        filter: z.string().default('(|(member={dn})(uniqueMember={dn})(memberUid={username}))'),
        name_attribute: z.string().regex(/^[a-zA-Z][a-zA-Z0-9-]*$/).default('cn'),
      })
      .optional(),
  })
  .refine((l) => l.bind_dn_templates.length > 0 || l.search !== undefined, {
    message: 'set bind_dn_templates or search: without either no password would ever be checked',
  })
  .refine((l) => !(l.start_tls && l.url.startsWith('ldaps:')), { message: 'start_tls is for ldap:// URLs; ldaps:// is TLS already' });

const oidcSchema = z.strictObject({
  /** The issuer; discovery reads <issuer>/.well-known/openid-configuration. */
  issuer: fetchedUrl,
  client_id: z.string().min(1),
  client_secret: z.string().min(1),
  /** Default: <public_url>/hub/oauth_callback; it must be registered at the provider. */
  redirect_url: fetchedUrl
    // The token request carries the callback as the browser reached it, in a URL's normal form; the authorization
    // request must carry the same string or the provider refuses the code (invalid_grant) after a successful login.
    .refine((u) => !URL.canParse(u) || new URL(u).href === u, {
      error: (issue) => `write it in its normal form, ${new URL(String(issue.input)).href}: the provider compares it as text`,
    })
    .optional(),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).default(['openid', 'profile', 'email']),
  /** Claim giving the username (from the ID token, else userinfo). `email` is used only when email_verified is true. */
  username_claim: z.string().min(1).default('preferred_username'),
  /** Claim holding a list of group names; empty: the provider gives no groups. */
  groups_claim: z.string().default('groups'),
  /** Display name on the login button. */
  login_service: z.string().min(1).max(60).default('OpenID Connect'),
  /** http:// issuers are refused unless this is set (for a provider on the same host in tests). */
  allow_insecure_http: z.boolean().default(false),
  /** After logout, send the browser to the provider's end-session endpoint when it has one. */
  end_session: z.boolean().default(true),
  /** Refresh the provider's tokens before a spawn when the access token expires within this many seconds. */
  refresh_before_spawn: seconds(86_400).default(60),
});

export const authSchema = z.strictObject({
  pam: pamSchema.prefault({}),
  ldap: ldapSchema.optional(),
  oidc: oidcSchema.optional(),
  /** Users in any of these groups of the identity source may log in (with allowed_users and admin_users). */
  allowed_groups: z.array(z.string().min(1)).default([]),
  /** Members are admins. When set, it is authoritative: someone outside it and outside admin_users loses admin. */
  admin_groups: z.array(z.string().min(1)).default([]),
  /** Members are refused, whatever else says. */
  blocked_groups: z.array(z.string().min(1)).default([]),
  /** Make the user's hub groups exactly the source's groups at each login (creating hub groups as needed). */
  manage_groups: z.boolean().default(false),
  /** Failed-login throttling with a growing delay, per account and per client address (in memory). */
  rate_limit: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Failures allowed per account before the delay starts. */
      account_failures: z.number().int().min(1).max(1000).default(5),
      /** Failures allowed per client address before the delay starts. */
      ip_failures: z.number().int().min(1).max(100_000).default(30),
      /** The first delay, doubled at each further failure. */
      base_delay: seconds(3600).default(1),
      max_delay: seconds(86_400).default(300),
      /** Failures older than this are forgotten. */
      window: z.number().min(1).max(86_400 * 7).default(900),
    })
    .prefault({}),
  /** Store what the source returns (OIDC tokens, LDAP attributes) encrypted with LABHUB_CRYPT_KEY. */
  auth_state: z.strictObject({ enabled: z.boolean().default(false) }).prefault({}),
});

export type AuthConfig = z.infer<typeof authSchema>;
export type LdapConfig = z.infer<typeof ldapSchema>;
export type OidcConfig = z.infer<typeof oidcSchema>;
