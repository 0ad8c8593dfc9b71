import type { Store } from '../db/index.js';
import type { Logger } from '../log.js';

const PRUNE_EVERY_MS = 3_600_000;

/** Prunes audit records older than the retention period: at start and hourly. Retention 0 keeps everything. */
export class AuditRetention {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly store: Store, private readonly retentionDays: number, private readonly log: Logger) {}

  async start(): Promise<void> {
    if (this.retentionDays === 0) return;
    await this.prune();
    this.timer = setInterval(() => void this.prune(), PRUNE_EVERY_MS).unref();
  }

  async prune(): Promise<number> {
    const before = new Date(Date.now() - this.retentionDays * 86_400_000).toISOString();
    try {
      const removed = await this.store.audit.pruneBefore(before);
      if (removed) this.log.info({ removed, before }, 'audit records past retention pruned');
      return removed;
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'could not prune the audit log');
      return 0;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
