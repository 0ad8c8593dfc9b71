/**
 * A bounded FIFO whose items stay in it until they are written: `push` waits while it is full, so a slow or
 * failing database turns into the ingester not taking the next MQTT message, and the broker holding it.
 */
export class BoundedBuffer<T> {
  private items: T[] = [];
  private spaceWaiters: (() => void)[] = [];
  private itemWaiters: (() => void)[] = [];

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.length;
  }

  async push(item: T): Promise<void> {
    while (this.items.length >= this.capacity) await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    this.items.push(item);
    for (const wake of this.itemWaiters.splice(0)) wake();
  }

  /** The oldest `n` items, left in the buffer. */
  peek(n: number): T[] {
    return this.items.slice(0, n);
  }

  /** Removes the oldest `n` items (after they were written) and lets waiting producers in. */
  drop(n: number): void {
    this.items.splice(0, n);
    for (const wake of this.spaceWaiters.splice(0)) wake();
  }

  /** Resolves when the buffer holds at least `n` items, or after `ms`, whichever comes first. */
  async waitFor(n: number, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.items.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.itemWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
