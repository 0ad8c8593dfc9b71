/**
 * Resolved token requesters kept in memory, valid only while the DB's auth epoch stays where it was when they were
 * resolved (migration 006-auth-epoch: triggers bump it with every change to what a token may do). The epoch is read
 * on every request, so a change committed by anyone, on any hub sharing the DB, is seen by the next request. The
 * time limit only bounds how long an entry lives without use; expiry of the token itself is checked by the caller.
 */
export class RequesterCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();
  private epoch: string | undefined;

  constructor(
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The value cached under `key`, if it was stored in this epoch and not too long ago. */
  get(key: string, epoch: string): T | undefined {
    this.enter(epoch);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /**
   * Stores a value resolved after reading `epoch`. If the epoch moved meanwhile, the value may predate the change
   * and is dropped; reading the epoch before resolving is what makes this safe.
   */
  set(key: string, epoch: string, value: T): void {
    if (epoch !== this.epoch) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, until: this.now() + this.ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  private enter(epoch: string): void {
    if (epoch === this.epoch) return;
    this.entries.clear();
    this.epoch = epoch;
  }
}
