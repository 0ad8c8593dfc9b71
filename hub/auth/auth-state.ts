import { ConfigError } from '../config/load.js';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * users.auth_state at rest: AES-256-GCM under keys from LABHUB_CRYPT_KEY, a `;`-separated list of 32-byte keys
 * (64 hex characters or 44 base64 characters each), like JUPYTERHUB_CRYPT_KEY. The first key encrypts, every
 * key decrypts: to rotate, put the new key first, keep the old one until every user has logged in again (or the
 * old states are cleared), then drop it.
 * Stored form: `aes256gcm:<key id>:<iv>:<ciphertext>:<tag>` (base64url); the key id is a hash prefix of the key,
 * so the right key is found without trying them all, and the user id is bound in as associated data so a state
 * copied onto another user's row does not decrypt.
 */
export class AuthStateVault {
  private readonly keys: { id: string; key: Buffer }[];

  constructor(keys: Buffer[]) {
    if (!keys.length) throw new Error('no key');
    this.keys = keys.map((key) => ({ id: createHash('sha256').update(key).digest('base64url').slice(0, 8), key }));
  }

  seal(userId: number, state: Record<string, unknown>): string {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(`user:${userId}`));
    const ct = Buffer.concat([cipher.update(JSON.stringify(state), 'utf8'), cipher.final()]);
    return ['aes256gcm', id, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join(':');
  }

  /** The state, or null when it cannot be read (unknown key, tampering, plain text from before encryption). */
  open(userId: number, stored: string | null): Record<string, unknown> | null {
    if (!stored) return null;
    const [scheme, id, iv, ct, tag] = stored.split(':');
    const entry = this.keys.find((k) => k.id === id);
    if (scheme !== 'aes256gcm' || !entry || !iv || ct === undefined || !tag) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', entry.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(`user:${userId}`));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      const text = Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
      const value = JSON.parse(text) as unknown;
      return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }
}

/** Parses LABHUB_CRYPT_KEY; undefined when it is unset or blank. Throws on a malformed key, never echoing it. */
export function parseCryptKeys(raw: string | undefined): Buffer[] | undefined {
  if (!raw?.trim()) return undefined;
  return raw.split(';').map((s) => s.trim()).filter(Boolean).map((part, i) => {
    const key = /^[0-9a-fA-F]{64}$/.test(part) ? Buffer.from(part, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(part) ? Buffer.from(part, 'base64') : null;
    if (key?.length !== 32) throw new ConfigError(`LABHUB_CRYPT_KEY: key ${i + 1} is not 32 bytes as 64 hex or 44 base64 characters (make one with: openssl rand -hex 32)`);
    return key;
  });
}
