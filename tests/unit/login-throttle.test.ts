import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../hub/auth/login-throttle.js';

describe('login throttle', () => {
  const options = { accountThreshold: 3, ipThreshold: 5, baseDelayMs: 1000, maxDelayMs: 8000, windowMs: 60_000 };

  it('lets the first failures through, then doubles the wait up to the cap', () => {
    let now = 0;
    const throttle = new LoginThrottle(options, () => now);
    for (let i = 0; i < 2; i++) throttle.attempt('alice', `10.0.0.${i}`);
    expect(throttle.waitMs('alice', '10.0.0.9')).toBe(0);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      throttle.attempt('alice', `10.0.1.${i}`);
      waits.push(throttle.waitMs('alice', '10.0.0.9'));
      now += waits.at(-1)!;
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
  });

  it('throttles a client address spraying many accounts', () => {
    const now = 0;
    const throttle = new LoginThrottle(options, () => now);
    for (let i = 0; i < 5; i++) throttle.attempt(`user${i}`, '192.0.2.1');
    expect(throttle.waitMs('someone-else', '192.0.2.1')).toBe(1000);
    expect(throttle.waitMs('someone-else', '192.0.2.2')).toBe(0);
  });

  it('forgets after the window, and a success clears the account but not the address', () => {
    let now = 0;
    const throttle = new LoginThrottle(options, () => now);
    for (let i = 0; i < 5; i++) throttle.attempt(i < 3 ? 'bob' : `other${i}`, '198.51.100.1');
    expect(throttle.waitMs('bob', '198.51.100.2')).toBeGreaterThan(0);
    throttle.succeeded('bob', '198.51.100.3');
    expect(throttle.waitMs('bob', '198.51.100.2')).toBe(0);
    expect(throttle.waitMs('bob', '198.51.100.1')).toBeGreaterThan(0);
    now += 61_000;
    expect(throttle.waitMs('bob', '198.51.100.1')).toBe(0);
  });

  it('keeps memory bounded under a spray of names', () => {
    const throttle = new LoginThrottle({ ...options, maxEntries: 100 }, () => 0);
    for (let i = 0; i < 1000; i++) throttle.attempt(`spray${i}`, '203.0.113.1');
    expect(throttle.waitMs('spray0', '203.0.113.9')).toBe(0);
    expect(throttle.waitMs('spray999', '203.0.113.9')).toBe(0);
  });

  it('counts an attempt when it is heard, so attempts still being checked hold back the ones after them', () => {
    const throttle = new LoginThrottle(options, () => 0);
    // 25 attempts arrive before any password check has finished: only the first `accountThreshold` are heard.
    const heard = Array.from({ length: 25 }, (_, i) => throttle.attempt('carol', `10.1.0.${i}`)).filter((w) => w === 0);
    expect(heard).toHaveLength(options.accountThreshold);
  });

  it('a success takes back its address\'s provisional failure, and only that one', () => {
    const throttle = new LoginThrottle(options, () => 0);
    for (let i = 0; i < 4; i++) throttle.attempt(`user${i}`, '192.0.2.7');
    expect(throttle.attempt('dave', '192.0.2.7')).toBe(0);
    expect(throttle.waitMs('someone', '192.0.2.7')).toBe(1000);
    throttle.succeeded('dave', '192.0.2.7');
    expect(throttle.waitMs('someone', '192.0.2.7')).toBe(0);
    expect(throttle.attempt('erin', '192.0.2.7')).toBe(0);
    expect(throttle.waitMs('someone', '192.0.2.7')).toBe(1000);
  });
});
