import { describe, expect, it } from 'vitest';
import { NEXT_URL_MAX_LENGTH, validateNextUrl } from '../../hub/auth/next-url.js';

const HOST = '127.0.0.1:8000';
const check = (next: string | undefined) => validateNextUrl(next, HOST, { protocol: 'http' });

describe('validateNextUrl (JupyterHub test_login_redirect vectors)', () => {
  it.each([
    '/hub/admin',
    '/user/other',
    '/absolute',
    '/has?query#andhash',
    '/has?repo=https/host.git',
    '/has?repo=https://host.git',
    '/has#repo=https://host.git',
  ])('keeps %s', (next) => {
    expect(check(next)).toBe(next);
  });

  it.each([
    'relative/path',
    'https://other.domain',
    'ftp://other.domain',
    '//other.domain',
    '///other.domain/triple',
    '\\\\other.domain/backslashes',
  ])('rejects %s', (next) => {
    expect(check(next)).toBe('');
  });

  it.each([
    `http://${HOST}/other.domain/`,
    `http://${HOST}//other.domain/`,
    `http://${HOST}///other.domain/`,
    `http://${HOST}////other.domain/`,
  ])('reduces %s to a path with one leading slash (GHSA-3vff-hjqv-m7h8)', (next) => {
    expect(check(next)).toBe('/other.domain/');
  });
});

describe('validateNextUrl, more hostile input', () => {
  it('returns "" for nothing', () => {
    expect(check(undefined)).toBe('');
    expect(check('')).toBe('');
  });

  it.each([
    '/\\evil.com',
    '/\\\\evil.com',
  ])('escapes backslashes so browsers cannot read %s as protocol-relative', (next) => {
    const out = check(next);
    expect(out.startsWith('/%5C')).toBe(true);
    expect(out).not.toContain('\\');
  });

  it.each([
    '/\t/evil.com',
    '/\n/evil.com',
    '/\r\n/evil.com',
    '/user/a\u0000b',
    '/\u007f',
    '/\u0085/evil.com',
  ])('rejects control characters in %j', (next) => {
    expect(check(next)).toBe('');
  });

  it.each([
    'javascript:alert(1)',
    'javascript://%0Aalert(1)',
    'data:text/html,<script>alert(1)</script>',
    'https:evil.com',
    ' //evil.com',
    ' /hub/home',
    `http://${HOST}@evil.com/`,
    `http://${HOST}.evil.com/`,
    `http://evil.com/${HOST}/`,
    `//${HOST}.evil.com/`,
    `http://${HOST}:9999/`,
    '////evil.com',
  ])('rejects %s', (next) => {
    expect(check(next)).toBe('');
  });

  it('reduces our own URLs and keeps query and fragment', () => {
    expect(check(`http://${HOST}`)).toBe('/');
    expect(check(`//${HOST}/user/alice/lab?x=1#y`)).toBe('/user/alice/lab?x=1#y');
    expect(check(`///${HOST}/hub/home`)).toBe('/hub/home');
    expect(check(`HTTP://${HOST.toUpperCase()}/hub/home?`)).toBe('/hub/home');
  });

  it('treats only the configured protocol as ours', () => {
    expect(check(`https://${HOST}/hub/home`)).toBe('');
    expect(validateNextUrl(`https://${HOST}/hub/home`, HOST, { protocol: 'https' })).toBe('/hub/home');
    expect(validateNextUrl(`https://${HOST}//evil.com`, HOST)).toBe('/evil.com');
    expect(validateNextUrl(`http://${HOST}/x`, HOST)).toBe('/x');
  });

  it('treats subdomain_host and its subdomains as ours', () => {
    const opts = { protocol: 'https', subdomainHost: 'hub.example.org' };
    expect(validateNextUrl('https://alice.hub.example.org//lab', 'hub.example.org', opts)).toBe('/lab');
    expect(validateNextUrl('https://hub.example.org/hub/home', 'hub.example.org', opts)).toBe('/hub/home');
    expect(validateNextUrl('https://evilhub.example.org/x', 'hub.example.org', opts)).toBe('');
    expect(validateNextUrl('https://hub.example.org.evil.com/x', 'hub.example.org', opts)).toBe('');
    expect(validateNextUrl('https://alice.hub.example.org@evil.com/x', 'hub.example.org', opts)).toBe('');
  });

  it('refuses values longer than the limit', () => {
    const long = `/${'a'.repeat(NEXT_URL_MAX_LENGTH)}`;
    expect(check(long)).toBe('');
    expect(check(long.slice(0, NEXT_URL_MAX_LENGTH))).toBe(long.slice(0, NEXT_URL_MAX_LENGTH));
    expect(validateNextUrl('/abcdef', HOST, { maxLength: 4 })).toBe('');
  });

  it('leaves HTML escaping to templates but never produces a non-path', () => {
    expect(check('/"><script>alert(1)</script>')).toBe('/"><script>alert(1)</script>');
    expect(check('"><script>alert(1)</script>')).toBe('');
  });
});
