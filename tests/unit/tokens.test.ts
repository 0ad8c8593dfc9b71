import { describe, expect, it } from 'vitest';
import {
  SUPPLIED_TOKEN_MIN_LENGTH,
  TokenTooShort,
  generateToken,
  hashSuppliedToken,
  hashToken,
  parseTokenApiId,
  tokenApiId,
  tokenPrefix,
  verifyTokenHash,
} from '../../hub/auth/tokens.js';

describe('generated tokens', () => {
  it('are 43 base64url characters without padding, and differ each time', () => {
    const tokens = new Set(Array.from({ length: 200 }, generateToken));
    expect(tokens.size).toBe(200);
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('have a 4-character lookup prefix', () => {
    expect(tokenPrefix('abcdefgh')).toBe('abcd');
    expect(tokenPrefix('ab')).toBe('ab');
  });

  it('hash to sha256:<hex>, deterministically', () => {
    const t = generateToken();
    expect(hashToken(t)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(hashToken(t)).toBe(hashToken(t));
    expect(hashToken('abc')).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('verifyTokenHash', () => {
  it('accepts the right token and refuses others for sha256 hashes', () => {
    const t = generateToken();
    const stored = hashToken(t);
    expect(verifyTokenHash(t, stored)).toBe(true);
    expect(verifyTokenHash(generateToken(), stored)).toBe(false);
    expect(verifyTokenHash(t.slice(0, -1), stored)).toBe(false);
    expect(verifyTokenHash('', stored)).toBe(false);
  });

  it('accepts the right token and refuses others for scrypt hashes of supplied tokens', () => {
    const stored = hashSuppliedToken('culler-secret-1');
    expect(stored).toMatch(/^scrypt\$4096\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(verifyTokenHash('culler-secret-1', stored)).toBe(true);
    expect(verifyTokenHash('culler-secret-2', stored)).toBe(false);
    expect(verifyTokenHash('culler-secret-1 ', stored)).toBe(false);
  });

  it('salts supplied tokens', () => {
    expect(hashSuppliedToken('same-secret')).not.toBe(hashSuppliedToken('same-secret'));
  });

  it('refuses supplied tokens shorter than 8 characters', () => {
    expect(SUPPLIED_TOKEN_MIN_LENGTH).toBe(8);
    expect(() => hashSuppliedToken('1234567')).toThrow(TokenTooShort);
    expect(() => hashSuppliedToken('12345678')).not.toThrow();
  });

  it('fails closed on tampered, unknown or out-of-bounds stored hashes', () => {
    const t = generateToken();
    const stored = hashToken(t);
    expect(verifyTokenHash(t, stored.toUpperCase())).toBe(false);
    expect(verifyTokenHash(t, stored.slice(0, -2))).toBe(false);
    expect(verifyTokenHash(t, t)).toBe(false);
    expect(verifyTokenHash(t, '')).toBe(false);
    expect(verifyTokenHash(t, `sha512:1:00:${'0'.repeat(128)}`)).toBe(false);
    const supplied = hashSuppliedToken('culler-secret-1');
    // N=2^30 would need gigabytes: refused before any work is done
    expect(verifyTokenHash('culler-secret-1', supplied.replace('$4096$', '$1073741824$'))).toBe(false);
    expect(verifyTokenHash('culler-secret-1', supplied.replace('$4096$', '$4095$'))).toBe(false);
    expect(verifyTokenHash('culler-secret-1', supplied.replace('$8$1$', '$0$1$'))).toBe(false);
  });
});

describe('token API ids', () => {
  it('format as a<id>', () => {
    expect(tokenApiId(17)).toBe('a17');
    expect(parseTokenApiId(tokenApiId(123456))).toBe(123456);
  });

  it.each([
    ['a17', 17],
    ['a1', 1],
    ['a9007199254740991', 9007199254740991],
  ])('parses %s', (id, n) => {
    expect(parseTokenApiId(id)).toBe(n);
  });

  it.each(['a', 'a0', 'a01', 'a0x1', 'a-1', 'a+1', 'a1.0', 'a1e3', 'A17', '17', 'b17', ' a17', 'a17 ', 'a１７', 'a9007199254740992',
    'a99999999999999999999', 'a17\n', ''])('refuses %j', (id) => {
    expect(parseTokenApiId(id)).toBeNull();
  });
});
