/**
 * Hashing of human-chosen secrets with scrypt (Node's built-in memory-hard KDF; no native dependency).
 * Stored form: `scrypt$<N>$<r>$<p>$<salt base64url>$<hash base64url>`, so parameters can be raised later
 * without breaking stored hashes.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** OWASP's scrypt baseline is N=2^17 at r=8; 2^15 (32 MiB, ~100 ms) keeps logins responsive on a small hub. */
export const PASSWORD_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** Stored parameters beyond these are refused, so a tampered row cannot make verification exhaust memory. */
const MAX_N = 2 ** 17;
const MAX_R = 16;
const MAX_P = 4;

/** Node refuses scrypt when 128·N·r exceeds maxmem (default 32 MiB, exactly our N=2^15·r=8); allow twice that. */
function scryptOptions({ N, r, p }: ScryptParams): ScryptOptions {
  return { N, r, p, maxmem: 256 * N * r };
}

export function formatScryptHash(params: ScryptParams, salt: Buffer, hash: Buffer): string {
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

interface ScryptHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

const SCRYPT_HASH = /^scrypt\$(\d{1,7})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{22,})\$([A-Za-z0-9_-]{43,})$/;

/** A stored scrypt hash, or null if it is malformed or its parameters are out of bounds. */
export function parseScryptHash(stored: string): ScryptHash | null {
  const m = SCRYPT_HASH.exec(stored);
  if (!m) return null;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const powerOfTwo = N >= 2 && (N & (N - 1)) === 0;
  if (!powerOfTwo || N > MAX_N || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return null;
  return { params: { N, r, p }, salt: Buffer.from(m[4] as string, 'base64url'), hash: Buffer.from(m[5] as string, 'base64url') };
}

function scryptAsync(secret: string, salt: Buffer, keylen: number, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, keylen, scryptOptions(params), (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export const PASSWORD_MAX_LENGTH = 1024;

export type PasswordRejection = 'empty' | 'whitespace-only' | 'contains-nul' | 'too-long';

export class PasswordRejected extends Error {
  constructor(readonly reason: PasswordRejection) {
    super(PASSWORD_REJECTION_MESSAGES[reason]);
    this.name = 'PasswordRejected';
  }
}

const PASSWORD_REJECTION_MESSAGES: Readonly<Record<PasswordRejection, string>> = {
  empty: 'Password must not be empty',
  'whitespace-only': 'Password must not be only whitespace',
  'contains-nul': 'Password must not contain NUL characters',
  'too-long': `Password must be at most ${PASSWORD_MAX_LENGTH} characters`,
};

/**
 * Why a password can never be accepted, or null. Checked before hashing: NUL truncates in C-based
 * tools (PAM), and the length cap keeps a single request from costing unbounded CPU.
 */
export function passwordRejection(password: string): PasswordRejection | null {
  if (password.length > PASSWORD_MAX_LENGTH) return 'too-long';
  if (password === '') return 'empty';
  if (password.includes('\0')) return 'contains-nul';
  if (password.trim() === '') return 'whitespace-only';
  return null;
}

/** NIST SP 800-63B §5.1.1.2: normalize so the same password typed through another keyboard or IME still matches. */
function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Hash a password for storage; throws `PasswordRejected` for passwords that can never be accepted. */
export async function hashPassword(password: string): Promise<string> {
  const rejection = passwordRejection(password);
  if (rejection) throw new PasswordRejected(rejection);
  const salt = randomBytes(SALT_BYTES);
  return formatScryptHash(PASSWORD_SCRYPT, salt, await scryptAsync(normalizePassword(password), salt, KEY_BYTES, PASSWORD_SCRYPT));
}

/** Constant-time check of a password against a stored hash. Unacceptable passwords and malformed hashes fail. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseScryptHash(stored);
  if (!parsed || passwordRejection(password)) return false;
  const actual = await scryptAsync(normalizePassword(password), parsed.salt, parsed.hash.length, parsed.params);
  return timingSafeEqual(actual, parsed.hash);
}

/**
 * Spend the time `verifyPassword` would and fail. Call it for unknown users (with the password given)
 * so that response time does not reveal which accounts exist.
 */
export async function dummyVerify(password: string): Promise<false> {
  if (passwordRejection(password)) return false;
  await scryptAsync(normalizePassword(password), randomBytes(SALT_BYTES), KEY_BYTES, PASSWORD_SCRYPT);
  return false;
}
