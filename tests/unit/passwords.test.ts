import { describe, expect, it } from 'vitest';
import {
  PASSWORD_MAX_LENGTH,
  PasswordRejected,
  dummyVerify,
  hashPassword,
  passwordRejection,
  verifyPassword,
} from '../../hub/auth/passwords.js';

describe('hashPassword / verifyPassword', () => {
  it('stores scrypt parameters, salt and hash, and verifies', async () => {
    const stored = await hashPassword('correct horse battery staple');
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifyPassword('correct horse battery staple', stored)).toBe(true);
    expect(await verifyPassword('correct horse battery stapl', stored)).toBe(false);
    expect(await verifyPassword('Correct horse battery staple', stored)).toBe(false);
  });

  it('salts each hash', async () => {
    expect(await hashPassword('same password')).not.toBe(await hashPassword('same password'));
  });

  it('treats NFKC-equivalent spellings as the same password', async () => {
    const stored = await hashPassword('ﬁsh-Ｐassword');
    expect(await verifyPassword('fish-Password', stored)).toBe(true);
  });

  it.each([
    ['', 'empty'],
    ['   ', 'whitespace-only'],
    ['\t\n\u00A0\u3000', 'whitespace-only'],
    ['pass\u0000word', 'contains-nul'],
    ['x'.repeat(PASSWORD_MAX_LENGTH + 1), 'too-long'],
  ])('refuses %j before hashing', async (password, reason) => {
    expect(passwordRejection(password)).toBe(reason);
    const err = await hashPassword(password).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PasswordRejected);
    expect((err as PasswordRejected).reason).toBe(reason);
  });

  it('accepts a password of exactly the maximum length', async () => {
    const password = 'x'.repeat(PASSWORD_MAX_LENGTH);
    expect(passwordRejection(password)).toBeNull();
    expect(await verifyPassword(password, await hashPassword(password))).toBe(true);
  });

  it('fails closed on refused passwords and malformed or out-of-bounds hashes', async () => {
    const stored = await hashPassword('a good password');
    expect(await verifyPassword('', stored)).toBe(false);
    expect(await verifyPassword('a good password', '')).toBe(false);
    expect(await verifyPassword('a good password', 'plaintext')).toBe(false);
    expect(await verifyPassword('a good password', stored.replace('$32768$', '$1073741824$'))).toBe(false);
    expect(await verifyPassword('a good password', stored.replace('$8$1$', '$8$99$'))).toBe(false);
    expect(await verifyPassword('a good password', stored.slice(0, -10))).toBe(false);
  });
});

describe('dummyVerify', () => {
  it('always fails, taking about as long as a real verification', async () => {
    const stored = await hashPassword('a good password');
    const time = async (f: () => Promise<boolean>) => {
      const t0 = performance.now();
      for (let i = 0; i < 3; i++) await f();
      return performance.now() - t0;
    };
    expect(await dummyVerify('a good password')).toBe(false);
    const real = await time(() => verifyPassword('wrong password', stored));
    const dummy = await time(() => dummyVerify('wrong password'));
    expect(dummy / real).toBeGreaterThan(0.5);
    expect(dummy / real).toBeLessThan(2);
  });

  it('returns at once for passwords verifyPassword refuses at once', async () => {
    expect(await dummyVerify('')).toBe(false);
  });

  it('does not block the event loop while hashing', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await hashPassword('a good password');
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(5);
  });
});
