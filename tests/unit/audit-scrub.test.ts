import { describe, expect, it } from 'vitest';
import { REDACTED, scrub, scrubString } from '../../hub/audit/scrub.js';
import { randomBytes } from 'node:crypto';
import { generateToken } from '../../hub/auth/tokens.js';
import { generatePassword } from '../../hub/credentials/names.js';

describe('the audit scrubber', () => {
  it('drops keys that name a secret, whatever their value', () => {
    expect(scrub({ password: 'x', api_token: 'y', code: 'z', cookie: 'c', secret_hash: 'h', Authorization: 'a', token_id: 7, note: 'ok' }))
      .toEqual({ token_id: 7, note: 'ok' });
  });

  it('redacts values that look like secrets, nested or not', () => {
    const token = generateToken();
    expect(scrubString(token)).toBe(REDACTED);
    expect(scrubString(`my token is ${token}`)).toBe(REDACTED);
    expect(scrubString('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig')).toBe(REDACTED);
    expect(scrubString('$scrypt$N=16384$abc')).toBe(REDACTED);
    expect(scrubString('postgres://bob:hunter2@db/x')).toBe(REDACTED);
    expect(scrub({ old: { profiles: [{ image: token }] } })).toEqual({ old: { profiles: [{ image: REDACTED }] } });
  });

  it('redacts every random secret the hub makes, and keeps the long names classes grant', () => {
    for (let i = 0; i < 5000; i++) {
      expect(scrubString(generateToken())).toBe(REDACTED);
      expect(scrubString(generatePassword())).toBe(REDACTED);
      expect(scrubString(randomBytes(24).toString('base64url'))).toBe(REDACTED);
      expect(scrubString(randomBytes(16).toString('hex'))).toBe(REDACTED);
    }
    for (const name of ['class-bio101-materials-autumn-term', 'labhub/notebook-debian:latest', 'sensors/building-42/#', 'u_alice_smith_634258']) {
      expect(scrubString(name)).toBe(name);
    }
  });

  it('keeps ordinary values and bounds long ones', () => {
    expect(scrub({ admin: true, users: ['bob', 'ann'], expires_at: '2026-12-05T15:00:00.000Z', n: null }))
      .toEqual({ admin: true, users: ['bob', 'ann'], expires_at: '2026-12-05T15:00:00.000Z', n: null });
    expect(scrubString('word '.repeat(500))).toHaveLength(512);
  });
});
