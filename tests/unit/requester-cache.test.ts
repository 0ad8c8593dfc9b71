import { describe, expect, it } from 'vitest';
import { RequesterCache } from '../../hub/auth/requester-cache.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('RequesterCache', () => {
  it('answers from memory while the epoch stays put', () => {
    const cache = new RequesterCache<string>(30_000, 10, clock().now);
    expect(cache.get('k', '1')).toBeUndefined();
    cache.set('k', '1', 'alice');
    expect(cache.get('k', '1')).toBe('alice');
    expect(cache.get('other', '1')).toBeUndefined();
  });

  it('forgets everything when the epoch moves, and does not bring it back if it moves back', () => {
    const cache = new RequesterCache<string>(30_000, 10, clock().now);
    cache.get('k', '1');
    cache.set('k', '1', 'alice');
    expect(cache.get('k', '2')).toBeUndefined();
    expect(cache.get('k', '1')).toBeUndefined();
  });

  it('drops a value resolved before the epoch moved: it may predate the change', () => {
    const cache = new RequesterCache<string>(30_000, 10, clock().now);
    cache.get('k', '1');
    // Another request sees the new epoch while this one was still resolving under the old one.
    cache.get('other', '2');
    cache.set('k', '1', 'stale');
    expect(cache.get('k', '2')).toBeUndefined();
    expect(cache.get('k', '1')).toBeUndefined();
  });

  it('expires entries after the time limit', () => {
    const c = clock();
    const cache = new RequesterCache<string>(30_000, 10, c.now);
    cache.get('k', '1');
    cache.set('k', '1', 'alice');
    c.advance(29_999);
    expect(cache.get('k', '1')).toBe('alice');
    c.advance(1);
    expect(cache.get('k', '1')).toBeUndefined();
  });

  it('holds at most maxEntries, dropping the oldest', () => {
    const cache = new RequesterCache<number>(30_000, 3, clock().now);
    cache.get('0', '1');
    for (let i = 0; i < 5; i++) cache.set(String(i), '1', i);
    expect([0, 1, 2, 3, 4].map((i) => cache.get(String(i), '1'))).toEqual([undefined, undefined, 2, 3, 4]);
  });

  it('delete removes one entry', () => {
    const cache = new RequesterCache<string>(30_000, 10, clock().now);
    cache.get('a', '1');
    cache.set('a', '1', 'x');
    cache.set('b', '1', 'y');
    cache.delete('a');
    expect([cache.get('a', '1'), cache.get('b', '1')]).toEqual([undefined, 'y']);
  });
});
