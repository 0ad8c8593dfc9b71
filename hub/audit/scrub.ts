/**
 * The second net under the typed details: whatever reaches the audit table passes through here. Keys that name a
 * secret are dropped, and any string that looks like one (random base64url or hex, a JWT, a bcrypt/scrypt hash, a
 * `user:password@` URL) is replaced, so a token pasted into a note or a username field never lands.
 */
const SECRET_KEY = /token$|^token|password|passwd|secret|code|cookie|hash|api_?key|authorization/i;
const SAFE_KEYS = new Set(['token_id']);
const RUN = /[A-Za-z0-9_-]{20,}/g;
const SECRET_VALUE = [
  /[A-Fa-f0-9]{32,}/, // hex tokens and digests
  /[A-Za-z0-9]{32,}/, // any long run without separators
  /[A-Za-z0-9+/]{32,}={0,2}/, // base64 blobs
  /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/, // JWTs
  /\$(?:2[aby]?|scrypt|argon2[id]*|pbkdf2[^$]*)\$/, // password hashes
  /:\/\/[^/\s:@]+:[^/\s@]+@/, // credentials in URLs
];

/**
 * Random base64url (hub tokens, cookies, link codes, generated passwords) mixes cases throughout: 20 characters or
 * more with upper case, lower case and a digit, or with four of each case. Names rarely do.
 */
function looksRandom(run: string): boolean {
  const upper = run.replace(/[^A-Z]/g, '').length;
  const lower = run.replace(/[^a-z]/g, '').length;
  const digits = /[0-9]/.test(run);
  return (upper > 0 && lower > 0 && digits) || (upper >= 4 && lower >= 4);
}

export const REDACTED = '[redacted]';
const MAX_STRING = 512;
const MAX_DEPTH = 6;

export function looksSecret(value: string): boolean {
  return SECRET_VALUE.some((re) => re.test(value)) || [...value.matchAll(RUN)].some(([run]) => looksRandom(run));
}

/** A string safe to store: bounded, and redacted when it looks like a secret. */
export function scrubString(value: string): string {
  const bounded = value.length > MAX_STRING ? value.slice(0, MAX_STRING) : value;
  return looksSecret(bounded) ? REDACTED : bounded;
}

export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.slice(0, 1000).map((v) => scrub(v, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      if (SECRET_KEY.test(key) && !SAFE_KEYS.has(key)) continue;
      out[scrubString(key)] = scrub(v, depth + 1);
    }
    return out;
  }
  return null;
}
