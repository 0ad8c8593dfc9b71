import type { AuthConfig } from '../config/auth-schema.js';

/**
 * Failed-login throttling, per account and per client address: after `threshold` failures inside the window,
 * each further failure doubles the wait before the next attempt is heard (up to `maxDelayMs`). A wait rather than
 * a lock-out, so an attacker cannot lock a victim out for long; accounts that do not exist are throttled alike, so
 * the answer says nothing about which accounts exist. An attempt counts as a failure from the moment it is heard
 * until it succeeds: a password check is asynchronous, so counting only its outcome let any number of concurrent
 * attempts through the check before the first failure was recorded. Kept in memory: a restart forgets it, as
 * JupyterHub's nativeauthenticator does; a hub behind several replicas would need a shared store.
 */
export interface ThrottleOptions {
  accountThreshold: number;
  ipThreshold: number;
  baseDelayMs: number;
  maxDelayMs: number;
  windowMs: number;
  /** Entries kept per kind at most; the oldest are dropped first so memory stays bounded under a spray. */
  maxEntries?: number;
}

interface Record {
  failures: number;
  lastFailure: number;
  notBefore: number;
}

class FailureCounter {
  private readonly entries = new Map<string, Record>();

  constructor(private readonly threshold: number, private readonly options: ThrottleOptions) {}

  private live(key: string, now: number): Record | undefined {
    const entry = this.entries.get(key);
    if (entry && now - entry.lastFailure > this.options.windowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  waitMs(key: string, now: number): number {
    return Math.max(0, (this.live(key, now)?.notBefore ?? 0) - now);
  }

  private holdUntil(entry: Record): number {
    const over = entry.failures - this.threshold;
    return over < 0 ? 0 : entry.lastFailure + Math.min(this.options.baseDelayMs * 2 ** Math.min(over, 30), this.options.maxDelayMs);
  }

  fail(key: string, now: number): void {
    const entry = this.live(key, now) ?? { failures: 0, lastFailure: now, notBefore: 0 };
    entry.failures += 1;
    entry.lastFailure = now;
    entry.notBefore = this.holdUntil(entry);
    this.entries.delete(key);
    this.entries.set(key, entry);
    const max = this.options.maxEntries ?? 100_000;
    while (this.entries.size > max) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Takes back one failure counted ahead of an attempt that then succeeded. */
  refund(key: string, now: number): void {
    const entry = this.live(key, now);
    if (!entry) return;
    entry.failures = Math.max(0, entry.failures - 1);
    entry.notBefore = this.holdUntil(entry);
  }

  clear(key: string): void {
    this.entries.delete(key);
  }
}

export class LoginThrottle {
  private readonly accounts: FailureCounter;
  private readonly addresses: FailureCounter;

  constructor(options: ThrottleOptions, private readonly clock: () => number = Date.now) {
    this.accounts = new FailureCounter(options.accountThreshold, options);
    this.addresses = new FailureCounter(options.ipThreshold, options);
  }

  /** Milliseconds to wait before an attempt may be heard; 0 means go ahead. */
  waitMs(account: string, ip: string): number {
    const now = this.clock();
    return Math.max(this.accounts.waitMs(account, now), this.addresses.waitMs(ip, now));
  }

  /**
   * Checks and counts in one synchronous step: returns the wait (the attempt is not heard), or 0 after counting
   * the attempt as a failure of both the account and the address until `succeeded` says otherwise.
   */
  attempt(account: string, ip: string): number {
    const wait = this.waitMs(account, ip);
    if (wait > 0) return wait;
    const now = this.clock();
    this.accounts.fail(account, now);
    this.addresses.fail(ip, now);
    return 0;
  }

  /** A success clears the account's count; the address keeps the rest of its own, so one good account cannot launder a spray. */
  succeeded(account: string, ip: string): void {
    this.accounts.clear(account);
    this.addresses.refund(ip, this.clock());
  }
}

/** The hub's one throttle from `auth.rate_limit`, or null when the admin turned it off. */
export function loginThrottleFrom(rateLimit: AuthConfig['rate_limit']): LoginThrottle | null {
  if (!rateLimit.enabled) return null;
  return new LoginThrottle({
    accountThreshold: rateLimit.account_failures, ipThreshold: rateLimit.ip_failures,
    baseDelayMs: rateLimit.base_delay * 1000, maxDelayMs: rateLimit.max_delay * 1000, windowMs: rateLimit.window * 1000,
  });
}
