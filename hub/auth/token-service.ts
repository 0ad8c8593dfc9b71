import type { Store } from '../db/index.js';
import type { TokenRow } from '../db/schema.js';
import { nowIso } from '../db/database.js';
import { generateToken, hashToken, hashSuppliedToken, tokenPrefix, verifyTokenHash } from './tokens.js';

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
  /** Last time each token's activity was written, to write at most once per resolution window. */
  private readonly lastTouched = new Map<number, number>();

  constructor(private readonly store: Store, private readonly activityResolutionMs = 30_000) {}

  async issue(request: IssueTokenRequest): Promise<{ token: string; row: TokenRow }> {
    const token = generateToken();
    const row = await this.store.tokens.create({
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

  /** Stores a token chosen by an admin in config (services); hashed slowly, since it may have low entropy. */
  async storeSupplied(token: string, request: Omit<IssueTokenRequest, 'expiresIn'>): Promise<TokenRow> {
    return this.store.tokens.create({
      hashed: await hashSuppliedToken(token),
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
   * Admin-chosen tokens are stored with a slow KDF; remembering which (stored hash, sha256 of token) pairs were
   * already verified keeps that cost to the first request instead of every request of, say, the idle culler.
   */
  private readonly verifiedSlowHashes = new Set<string>();

  /** The live token row for a presented token, or null. */
  async resolve(token: string): Promise<TokenRow | null> {
    if (token.length < 8 || token.length > 512) return null;
    const candidates = await this.store.tokens.candidates(tokenPrefix(token));
    for (const row of candidates) {
      if (row.hashed.startsWith('sha256:')) {
        if (verifyTokenHash(token, row.hashed)) return row;
        continue;
      }
      const key = `${row.hashed}\n${hashToken(token)}`;
      if (this.verifiedSlowHashes.has(key)) return row;
      if (verifyTokenHash(token, row.hashed)) {
        this.verifiedSlowHashes.add(key);
        return row;
      }
    }
    return null;
  }

  /** Records use of a token, throttled: a busy script must not turn every request into a DB write. */
  async touch(row: TokenRow): Promise<void> {
    const now = Date.now();
    if (now - (this.lastTouched.get(row.id) ?? 0) < this.activityResolutionMs) return;
    this.lastTouched.set(row.id, now);
    await this.store.tokens.touch(row.id, nowIso());
  }

  forget(tokenId: number): void {
    this.lastTouched.delete(tokenId);
  }
}
