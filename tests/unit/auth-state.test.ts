import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthStateVault, parseCryptKeys } from '../../hub/auth/auth-state.js';

describe('auth_state encryption', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);

  it('round-trips, hides the plaintext and binds the row to its user', () => {
    const vault = new AuthStateVault([k1]);
    const sealed = vault.seal(7, { access_token: 'secret-token-value' });
    expect(sealed).not.toContain('secret-token-value');
    expect(sealed.startsWith('aes256gcm:')).toBe(true);
    expect(vault.open(7, sealed)).toEqual({ access_token: 'secret-token-value' });
    expect(vault.open(8, sealed)).toBeNull();
  });

  it('refuses tampered, foreign-key and plain JSON values', () => {
    const vault = new AuthStateVault([k1]);
    const sealed = vault.seal(1, { a: 1 });
    const parts = sealed.split(':');
    parts[3] = Buffer.from('{"a":2}').toString('base64url');
    expect(vault.open(1, parts.join(':'))).toBeNull();
    expect(new AuthStateVault([k2]).open(1, sealed)).toBeNull();
    expect(vault.open(1, '{"a":1}')).toBeNull();
    expect(vault.open(1, null)).toBeNull();
  });

  it('rotates: the first key encrypts, every key decrypts', () => {
    const old = new AuthStateVault([k1]).seal(3, { v: 'old' });
    const rotated = new AuthStateVault([k2, k1]);
    expect(rotated.open(3, old)).toEqual({ v: 'old' });
    const fresh = rotated.seal(3, { v: 'new' });
    expect(new AuthStateVault([k2]).open(3, fresh)).toEqual({ v: 'new' });
    expect(new AuthStateVault([k1]).open(3, fresh)).toBeNull();
  });

  it('parses LABHUB_CRYPT_KEY as hex or base64 keys separated by ;, and refuses bad ones without echoing them', () => {
    expect(parseCryptKeys(undefined)).toBeUndefined();
    expect(parseCryptKeys('  ')).toBeUndefined();
    const keys = parseCryptKeys(`${k1.toString('hex')};${k2.toString('base64')}`)!;
    expect(keys.map((k) => k.toString('hex'))).toEqual([k1.toString('hex'), k2.toString('hex')]);
    expect(() => parseCryptKeys('short-secret-value')).toThrow(/key 1/);
    expect(() => parseCryptKeys('short-secret-value')).not.toThrow(/short-secret-value/);
  });
});
