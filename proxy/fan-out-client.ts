import type { Logger } from '../hub/log.js';
import { ProxyApiError } from './chp-client.js';
import type { ProxyClient, RouteEntry } from './client.js';

/**
 * Several proxy instances serving the same routes (e.g. two replicas behind one load balancer), driven as one.
 * A change goes to every instance at once and succeeds when at least one instance took it: a lost instance must
 * not stop users' servers from starting. The instances that missed it are put right by their supervisor's
 * re-sync when they answer again (`hub/proxy-supervisor.ts`), so none stays behind for longer than a check interval.
 */
export class FanOutProxyClient implements ProxyClient {
  /** API URLs of instances that failed a change since their last re-sync. */
  private readonly missed = new Set<string>();

  constructor(private readonly instances: readonly { apiUrl: string; client: ProxyClient }[], private readonly log: Logger) {}

  addRoute(path: string, target: string, data: Record<string, unknown>): Promise<void> {
    return this.everywhere(`add ${path}`, (client) => client.addRoute(path, target, data));
  }

  deleteRoute(path: string): Promise<void> {
    return this.everywhere(`delete ${path}`, (client) => client.deleteRoute(path));
  }

  /** The union of every answering instance's table; each route with its most recent `last_activity`. */
  async getRoutes(): Promise<Record<string, RouteEntry>> {
    const tables = await this.settle('list routes', (client) => client.getRoutes());
    const merged: Record<string, RouteEntry> = {};
    for (const table of tables) {
      for (const [key, entry] of Object.entries(table)) {
        const known = merged[key];
        if (!known || Date.parse(entry.last_activity ?? '') > Date.parse(known.last_activity ?? '')) merged[key] = entry;
      }
    }
    return merged;
  }

  /** Whether the instance at `apiUrl` missed a change; clears the mark (the caller re-syncs it). */
  takeMissed(apiUrl: string): boolean {
    return this.missed.delete(apiUrl);
  }

  private async everywhere(what: string, call: (client: ProxyClient) => Promise<void>): Promise<void> {
    await this.settle(what, call);
  }

  private async settle<T>(what: string, call: (client: ProxyClient) => Promise<T>): Promise<T[]> {
    const results = await Promise.allSettled(this.instances.map(({ client }) => call(client)));
    const answers: T[] = [];
    const failures: string[] = [];
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') answers.push(result.value);
      else {
        this.missed.add(this.instances[i]!.apiUrl);
        failures.push(`${this.instances[i]!.apiUrl}: ${(result.reason as Error).message}`);
      }
    });
    if (answers.length === 0) throw new ProxyApiError(`no proxy instance could ${what}: ${failures.join('; ')}`);
    for (const failure of failures) this.log.warn({ err: failure }, `a proxy instance could not ${what}; it is re-synced when it answers`);
    return answers;
  }
}
