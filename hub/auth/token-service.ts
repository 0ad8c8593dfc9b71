import { randomBytes } from 'node:crypto';
import type { Store } from '../db/index.js';
import type { TokenRow } from '../db/schema.js';
import { generateToken, hashToken, hashSuppliedToken, tokenPrefix, verifySuppliedToken, verifyTokenHash } from './tokens.js';

export interface IssueTokenRequest {
  owner: { userId: number } | { serviceId: number };
  scopes: string[];
  note: string;
  /** Seconds; null or undefined for no expiry. */
  expiresIn?: number | null;
  sessionId?: string | null;
  oauthClientId?: string | null;
}

/** Creating and looking up API tokens. Only hashes are stored; a token is shown once, when it is created. */
export class TokenService {
  constructor(private readonly store: Store, private readonly activityResolutionMs = 30_000) {}

  /** `within`: the transaction store of a caller that records the issue with it (the audit log). */
  async issue(request: IssueTokenRequest, within: Store = this.store): Promise<{ token: string; row: TokenRow }> {
    const token = generateToken();
    const row = await within.tokens.create({
      hashed: hashToken(token),
      prefix: tokenPrefix(token),
      owner: request.owner,
      scopes: request.scopes,
      note: request.note,
      expiresAt: request.expiresIn ? new Date(Date.now() + request.expiresIn * 1000).toISOString() : null,
      sessionId: request.sessionId ?? null,
      oauthClientId: request.oauthClientId ?? null,
    });
    return { token, row };
  }

  /**
   * Keys the hashes of config-supplied tokens. It lives only in this process: the DB never holds what a guess could
   * be tested against, and since supplied tokens are stored anew at every start (syncConfigState), nothing is lost
   * when a restart draws a new key.
   */
  private readonly suppliedKey = randomBytes(32);

  /** Stores a token chosen by an admin in config (services); it may have low entropy (see hashSuppliedToken). */
  async storeSupplied(token: string, request: Omit<IssueTokenRequest, 'expiresIn'>): Promise<TokenRow> {
    return this.store.tokens.create({
      hashed: hashSuppliedToken(token, this.suppliedKey),
      prefix: tokenPrefix(token),
      owner: request.owner,
      scopes: request.scopes,
      note: request.note,
      expiresAt: null,
      sessionId: request.sessionId ?? null,
      oauthClientId: request.oauthClientId ?? null,
    });
  }

  /**
   * The live token row for a presented token, or null. Each candidate sharing the prefix costs one sha256 or
   * HMAC (about a microsecond), synchronously and without the thread pool, so no token can make a request slow.
   */
  async resolve(token: string): Promise<TokenRow | null> {
    if (token.length < 8 || token.length > 512) return null;
    const candidates = await this.store.tokens.candidates(tokenPrefix(token));
    return candidates.find((row) => verifyTokenHash(token, row.hashed) || verifySuppliedToken(token, row.hashed, this.suppliedKey)) ?? null;
  }

  /**
   * Records use of a token, as JupyterHub does: only when the stored last_activity is older than the resolution
   * (30 s), so a busy script does not turn every request into a DB write. The row is updated in memory first: a
   * cached row shows the write to the next request, and concurrent requests do not write twice.
   */
  async touch(row: TokenRow): Promise<void> {
    const now = Date.now();
    if (!this.activityIsStale(row.last_activity, now)) return;
    row.last_activity = new Date(now).toISOString();
    await this.store.tokens.touch(row.id, row.last_activity);
  }

  /** Whether a stored activity time is old enough (or absent) that a new one must be written. */
  activityIsStale(stored: string | null, now: number): boolean {
    return stored === null || now - Date.parse(stored) >= this.activityResolutionMs;
  }
}
