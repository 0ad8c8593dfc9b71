import { randomBytes } from 'node:crypto';
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
  secretDigest,
  verifySuppliedToken,
  verifyTokenHash,
} from '../../hub/auth/tokens.js';

const KEY = randomBytes(32);

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

  it('refuses supplied tokens shorter than 8 characters', () => {
    expect(SUPPLIED_TOKEN_MIN_LENGTH).toBe(8);
    expect(() => hashSuppliedToken('1234567', KEY)).toThrow(TokenTooShort);
    expect(() => hashSuppliedToken('12345678', KEY)).not.toThrow();
  });

  it('fails closed on tampered or unknown stored hashes', () => {
    const t = generateToken();
    const stored = hashToken(t);
    expect(verifyTokenHash(t, stored.toUpperCase())).toBe(false);
    expect(verifyTokenHash(t, stored.slice(0, -2))).toBe(false);
    expect(verifyTokenHash(t, t)).toBe(false);
    expect(verifyTokenHash(t, '')).toBe(false);
    expect(verifyTokenHash(t, `sha512:1:00:${'0'.repeat(128)}`)).toBe(false);
    // A keyed hash is never taken for a plain one, nor the other way round.
    expect(verifyTokenHash('culler-secret-1', hashSuppliedToken('culler-secret-1', KEY))).toBe(false);
    expect(verifySuppliedToken(t, stored, KEY)).toBe(false);
  });
});

describe('supplied tokens (service api_token in config)', () => {
  it('are stored as an HMAC under a key the DB does not hold', () => {
    const stored = hashSuppliedToken('culler-secret-1', KEY);
    expect(stored).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(stored).not.toContain(secretDigest('culler-secret-1'));
    expect(verifySuppliedToken('culler-secret-1', stored, KEY)).toBe(true);
    expect(verifySuppliedToken('culler-secret-2', stored, KEY)).toBe(false);
    expect(verifySuppliedToken('culler-secret-1 ', stored, KEY)).toBe(false);
    expect(verifySuppliedToken('culler-secret-1', stored, randomBytes(32))).toBe(false);
  });

  it('a stored form that once meant a slow KDF is refused without any work', () => {
    const scryptForm = `scrypt$1073741824$8$1$${'A'.repeat(22)}$${'A'.repeat(43)}`;
    const started = performance.now();
    expect(verifySuppliedToken('culler-secret-1', scryptForm, KEY)).toBe(false);
    expect(verifyTokenHash('culler-secret-1', scryptForm)).toBe(false);
    expect(performance.now() - started).toBeLessThan(50);
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
