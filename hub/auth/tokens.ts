/**
 * API tokens: generation, hashing at rest, and the `a<id>` form the REST API shows.
 * Lookup is by the 4-character prefix column, then a constant-time hash check of each candidate.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseScryptHash, scryptHashSync, verifyScryptHashSync, type ScryptParams } from './passwords.js';

const GENERATED_TOKEN_BYTES = 32;
export const TOKEN_PREFIX_LENGTH = 4;
/** Upstream's minimum for tokens written into config by people (`orm.Hashed.min_length`). */
export const SUPPLIED_TOKEN_MIN_LENGTH = 8;

/**
 * Supplied tokens are checked synchronously on every request that uses them, so the cost is kept near
 * upstream's 16384 rounds of salted sha512 (~10 ms, 4 MiB) rather than a login-grade KDF.
 */
const SUPPLIED_TOKEN_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 12, r: 8, p: 1 });

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

/** For tokens people chose (service `api_token` in config): they may be guessable, so use a salted KDF. */
export function hashSuppliedToken(token: string): string {
  if (token.length < SUPPLIED_TOKEN_MIN_LENGTH) throw new TokenTooShort();
  return scryptHashSync(token, SUPPLIED_TOKEN_SCRYPT);
}

const SHA256_HASH = /^sha256:[0-9a-f]{64}$/;

/** Constant-time check of a presented token against either stored form; unknown forms fail. */
export function verifyTokenHash(token: string, stored: string): boolean {
  if (SHA256_HASH.test(stored)) return timingSafeEqual(sha256(token), Buffer.from(stored.slice(7), 'hex'));
  if (parseScryptHash(stored)) return verifyScryptHashSync(token, stored);
  return false;
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
