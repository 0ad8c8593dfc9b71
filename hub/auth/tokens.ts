/**
 * API tokens: generation, hashing at rest, and the `a<id>` form the REST API shows.
 * Lookup is by the 4-character prefix column, then a constant-time hash check of each candidate. Every stored form
 * costs one fast hash to check, so no request can make the hub do slow work, whatever it presents.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const GENERATED_TOKEN_BYTES = 32;
export const TOKEN_PREFIX_LENGTH = 4;
/** Upstream's minimum for tokens written into config by people (`orm.Hashed.min_length`). */
export const SUPPLIED_TOKEN_MIN_LENGTH = 8;

/** 256 random bits, base64url without padding: 43 characters, safe in headers, URLs and cookies. */
export function generateToken(): string {
  return randomBytes(GENERATED_TOKEN_BYTES).toString('base64url');
}

export function tokenPrefix(token: string): string {
  return token.slice(0, TOKEN_PREFIX_LENGTH);
}

function sha256(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * Hex sha256 of a high-entropy secret (session secrets, OAuth codes, one-time link codes): what is stored and looked
 * up in place of the secret itself.
 */
export function secretDigest(secret: string): string {
  return sha256(secret).toString('hex');
}

/** For generated tokens: with 256 random bits, a fast hash is as strong as a slow one. */
export function hashToken(token: string): string {
  return `sha256:${secretDigest(token)}`;
}

export class TokenTooShort extends Error {
  constructor() {
    super(`Tokens must be at least ${SUPPLIED_TOKEN_MIN_LENGTH} characters`);
    this.name = 'TokenTooShort';
  }
}

/**
 * For tokens people chose (service `api_token` in config): they may be guessable, so a stolen DB alone must not
 * let anyone test guesses. Rather than a slow KDF on every request (which a burst of tokens sharing a prefix turns
 * into a stalled hub), the hash is keyed with a secret that never reaches the DB (TokenService keeps it in memory).
 */
export function hashSuppliedToken(token: string, key: Buffer): string {
  if (token.length < SUPPLIED_TOKEN_MIN_LENGTH) throw new TokenTooShort();
  return `hmac-sha256:${hmac(token, key).toString('hex')}`;
}

function hmac(token: string, key: Buffer): Buffer {
  return createHmac('sha256', key).update(token, 'utf8').digest();
}

const SHA256_HASH = /^sha256:[0-9a-f]{64}$/;
const HMAC_HASH = /^hmac-sha256:[0-9a-f]{64}$/;

/** Constant-time check of a presented token against a stored `sha256:` hash (generated tokens, OAuth client secrets). */
export function verifyTokenHash(token: string, stored: string): boolean {
  return SHA256_HASH.test(stored) && timingSafeEqual(sha256(token), Buffer.from(stored.slice(7), 'hex'));
}

/** Constant-time check against a stored `hmac-sha256:` hash made with the same key; other forms fail. */
export function verifySuppliedToken(token: string, stored: string, key: Buffer): boolean {
  return HMAC_HASH.test(stored) && timingSafeEqual(hmac(token, key), Buffer.from(stored.slice(12), 'hex'));
}

/** The id the REST API shows for a token (`"a17"`); the letter keeps ids apart from raw DB keys. */
export function tokenApiId(dbId: number): string {
  return `a${dbId}`;
}

/** Canonical form only: `a` and a positive integer without leading zeros that fits a safe integer. */
const TOKEN_API_ID = /^a[1-9][0-9]{0,15}$/;

export function parseTokenApiId(apiId: string): number | null {
  if (!TOKEN_API_ID.test(apiId)) return null;
  const id = Number(apiId.slice(1));
  return Number.isSafeInteger(id) ? id : null;
}
