import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { clearCookieHeader, findRevoked, revokedOf, tokenInCookie } from '../../proxy/revocations.js';

/** Made by tornado 6 (`create_signed_value`, versions 2 and 1) and quoted by Python's SimpleCookie, as singleuser sends it. */
const TOKEN = 'Q3x9v-token_value_43_chars_long_abcdefghijk';
const V2 = '"2|1:0|10:1700000000|21:jupyterhub-user-alice|60:UTN4OXYtdG9rZW5fdmFsdWVfNDNfY2hhcnNfbG9uZ19hYmNkZWZnaGlqaw==|6a83d3ded5e36ac724f3090e5d4c2b153ee1bad2f31d33e53da0d8fd1cb21de0"';
const V1 = '"UTN4OXYtdG9rZW5fdmFsdWVfNDNfY2hhcnNfbG9uZ19hYmNkZWZnaGlqaw==|1700000000|39373c48ee472b6fc4080ba129991839849a9ee6"';
const digest = (token: string) => createHash('sha256').update(token).digest('hex');

describe('tokenInCookie', () => {
  it('reads the token out of tornado\'s signed cookies, quoted or not', () => {
    expect(tokenInCookie(V2)).toBe(TOKEN);
    expect(tokenInCookie(V2.slice(1, -1))).toBe(TOKEN);
    expect(tokenInCookie(V1)).toBe(TOKEN);
    expect(tokenInCookie('"2|1:0|10:1700000000|1:n|60:UTN4OXYtdG9rZW5fdmFsdWVfNDNfY2hhcnNfbG9uZ19hYmNkZWZnaGlqaw\\075\\075|ab"')).toBe(TOKEN);
  });

  it('finds nothing in other cookies', () => {
    for (const value of ['', 'abc', '2|1:0', '"', '2|1:0|10:1|1:n||sig', 'a|b']) expect(tokenInCookie(value)).toBeUndefined();
  });
});

describe('revokedOf', () => {
  it('keeps well-formed digests with times, and the latest time', () => {
    const revoked = revokedOf({ target: 'http://x', revoked_tokens: { [digest('a')]: '2030-01-01T00:00:00Z', [digest('b')]: '2031-01-01T00:00:00Z', nope: '2030-01-01T00:00:00Z', [digest('c')]: 'soon' } });
    expect([...revoked!.until.keys()]).toEqual([digest('a'), digest('b')]);
    expect(revoked!.lastUntil).toBe(Date.parse('2031-01-01T00:00:00Z'));
  });

  it('is undefined for routes without revocations or with a malformed value', () => {
    for (const value of [undefined, null, [], 'x', {}, { nope: 1 }]) expect(revokedOf({ target: 'http://x', revoked_tokens: value })).toBeUndefined();
  });
});

describe('findRevoked', () => {
  const revoked = revokedOf({ target: 'http://x', revoked_tokens: { [digest(TOKEN)]: '2030-01-01T00:00:00Z' } })!;
  const now = Date.parse('2029-01-01T00:00:00Z');
  const presented = (p: { url?: string; authorization?: string; cookie?: string }) => ({ url: p.url ?? '/user/alice/', authorization: p.authorization, cookie: p.cookie });

  it('finds a revoked token in a cookie (naming it), the Authorization header or the query', () => {
    expect(findRevoked(presented({ cookie: `_xsrf=2|ab|cd|ef; jupyterhub-user-alice=${V2}` }), revoked, now)).toEqual({ cookie: 'jupyterhub-user-alice' });
    expect(findRevoked(presented({ authorization: `Bearer ${TOKEN}` }), revoked, now)).toEqual({});
    expect(findRevoked(presented({ authorization: `token ${TOKEN}` }), revoked, now)).toEqual({});
    expect(findRevoked(presented({ url: `/user/alice/api?x=1&token=${TOKEN}` }), revoked, now)).toEqual({});
  });

  it('passes other tokens, and everything once the revocation has run out', () => {
    expect(findRevoked(presented({ authorization: 'token other', cookie: 'a=b' }), revoked, now)).toBeUndefined();
    expect(findRevoked(presented({ cookie: `c=${V2}` }), revoked, Date.parse('2030-01-01T00:00:01Z'))).toBeUndefined();
  });
});

describe('clearCookieHeader', () => {
  it('removes the cookie at the path singleuser set it on', () => {
    expect(clearCookieHeader('jupyterhub-user-alice', '/user/alice')).toBe('jupyterhub-user-alice=; Path=/user/alice/; Max-Age=0; HttpOnly');
    expect(clearCookieHeader('__Host-x', '/user/alice')).toBe('__Host-x=; Path=/; Max-Age=0; Secure; HttpOnly');
  });
});
