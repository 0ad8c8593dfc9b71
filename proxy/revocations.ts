/**
 * Tokens the hub revoked for one route, refused by the proxy itself.
 *
 * jupyterhub-singleuser caches the hub's answer about a token for minutes (`HubAuth.cache_max_age`, 300 s), and an
 * open websocket is never checked again, so a revoked share would keep working in an open tab. The hub therefore
 * stores the SHA-256 digests of the tokens it revoked in the route's data (`revoked_tokens`, digest → ISO 8601 time
 * until which to refuse), and the proxy refuses requests carrying one and cuts the websockets opened with one.
 * Keeping them in route data means they reach every worker and every replica the way route changes already do; a
 * proxy that ignores the key (configurable-http-proxy) simply falls back to singleuser's cache.
 */
import { createHash } from 'node:crypto';

/** The route data key the hub writes. */
export const REVOKED_TOKENS_KEY = 'revoked_tokens';

const DIGEST = /^[0-9a-f]{64}$/;
const TOKEN_AUTHORIZATION = /^(?:token|bearer)\s+(\S+)\s*$/i;
/** A cookie value longer than this cannot be one of the hub's tokens in any encoding; skipping it bounds the work. */
const MAX_COOKIE_VALUE = 1024;

export interface Revoked {
  /** Digest → epoch ms until which it is refused. */
  readonly until: ReadonlyMap<string, number>;
  /** The latest of those times: past it, the route refuses nothing and requests skip the check. */
  readonly lastUntil: number;
}

/** The route data's revocations; malformed entries are ignored (only the hub writes them, over the authenticated API). */
export function revokedOf(data: Readonly<Record<string, unknown>>): Revoked | undefined {
  const raw = data[REVOKED_TOKENS_KEY];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const until = new Map<string, number>();
  let lastUntil = 0;
  for (const [digest, when] of Object.entries(raw)) {
    const ms = typeof when === 'string' ? Date.parse(when) : NaN;
    if (!DIGEST.test(digest) || !Number.isFinite(ms)) continue;
    until.set(digest, ms);
    lastUntil = Math.max(lastUntil, ms);
  }
  return until.size > 0 ? { until, lastUntil } : undefined;
}

/** What a request presented that is revoked: the cookie that carried it, when it came in one. */
export interface RevokedCredential {
  cookie?: string;
}

/** The request's headers the check reads; websockets keep these to be checked again when a revocation arrives. */
export interface PresentedCredentials {
  url: string;
  authorization: string | undefined;
  cookie: string | undefined;
}

/** The first revoked token among those the request presents, if any is still refused at `now`. */
export function findRevoked(presented: PresentedCredentials, revoked: Revoked, now: number): RevokedCredential | undefined {
  if (revoked.lastUntil <= now) return undefined;
  const refused = (token: string | undefined) => {
    if (!token) return false;
    const until = revoked.until.get(createHash('sha256').update(token, 'utf8').digest('hex'));
    return until !== undefined && until > now;
  };
  const header = presented.authorization ? TOKEN_AUTHORIZATION.exec(presented.authorization)?.[1] : undefined;
  if (refused(header)) return {};
  const query = presented.url.indexOf('?');
  if (query !== -1 && refused(new URLSearchParams(presented.url.slice(query + 1)).get('token') ?? undefined)) return {};
  for (const [name, value] of cookies(presented.cookie)) {
    if (refused(tokenInCookie(value))) return { cookie: name };
  }
  return undefined;
}

/** `Set-Cookie` that removes a refused cookie, so the browser's next visit signs in afresh instead of being refused again. */
export function clearCookieHeader(name: string, routePath: string): string {
  // A `__Host-` cookie only exists with Path=/ and Secure, and only a header with both can replace it.
  if (name.startsWith('__Host-')) return `${name}=; Path=/; Max-Age=0; Secure; HttpOnly`;
  return `${name}=; Path=${routePath === '/' ? '/' : `${routePath}/`}; Max-Age=0; HttpOnly`;
}

function* cookies(header: string | undefined): Generator<[string, string]> {
  if (!header) return;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const value = pair.slice(eq + 1).trim();
    if (value.length <= MAX_COOKIE_VALUE) yield [pair.slice(0, eq).trim(), value];
  }
}

/**
 * The token inside a tornado signed cookie, the form jupyterhub-singleuser keeps its OAuth token in. The signature is
 * not checked: the proxy only ever refuses on a match, and a forged cookie would be refused by the server anyway.
 * Version 2 is `2|1:<key version>|<n>:<timestamp>|<n>:<name>|<n>:<base64 value>|<signature>`; version 1 is
 * `<base64 value>|<timestamp>|<signature>`. Python quotes the whole value (it holds `=`), escaping as `\NNN` octal.
 */
export function tokenInCookie(raw: string): string | undefined {
  const value = raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? unquote(raw.slice(1, -1)) : raw;
  const fields = value.split('|');
  let encoded: string | undefined;
  if (fields[0] === '2' && fields.length === 6) {
    const field = fields[4]!;
    encoded = field.slice(field.indexOf(':') + 1);
  } else if (fields.length === 3) {
    encoded = fields[0];
  }
  if (!encoded) return undefined;
  const token = Buffer.from(encoded, 'base64').toString('utf8');
  return token || undefined;
}

function unquote(quoted: string): string {
  return quoted.replace(/\\([0-7]{3}|.)/g, (_m, escaped: string) => (escaped.length === 3 ? String.fromCharCode(parseInt(escaped, 8)) : escaped));
}
