/**
 * One list+watch cache per resource kind, shared by every spawn and poll of the hub (KubeSpawner's reflectors):
 * a list, then a watch from its resourceVersion. The server ends each watch after `watchSeconds` and it is opened
 * again from the last version seen (a connection can go quiet without closing); a failed list or watch is retried
 * with backoff, and a version the server no longer has (410 Gone) means a fresh list.
 */
import { Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../../hub/log.js';

export type CacheListener<T> = (object: T, deleted: boolean) => void;

export interface ResourceCacheOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** e.g. `/api/v1/namespaces/labhub/pods`. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  log: Logger;
  watchSeconds?: number;
}

class Gone extends Error {}

export class ResourceCache<T extends KubernetesObject> {
  private readonly objects = new Map<string, T>();
  private readonly listeners = new Set<CacheListener<T>>();
  private readonly watcher: Watch;
  private readonly options: ResourceCacheOptions<T>;
  private readonly synced: Promise<void>;
  private markSynced: () => void = () => undefined;
  private resourceVersion = '';
  private running: Promise<void> | undefined;
  private current: AbortController | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  /** The last error of the list or watch, until one succeeds again; for messages. */
  lastError: string | undefined;

  constructor(options: ResourceCacheOptions<T>) {
    this.options = options;
    this.watcher = new Watch(options.kubeConfig);
    this.synced = new Promise((resolve) => (this.markSynced = resolve));
  }

  /** Starts the cache once; resolves when the first list has arrived, or rejects after `timeoutMs`. */
  async ready(timeoutMs: number): Promise<void> {
    this.running ??= this.loop();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the list of ${this.options.path} did not arrive within ${Math.round(timeoutMs / 1000)} s${this.lastError ? ` (${this.lastError})` : ''}`)), timeoutMs);
    });
    try {
      await Promise.race([this.synced, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  get(name: string): T | undefined {
    return this.objects.get(name);
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  subscribe(listener: CacheListener<T>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.current?.abort();
    this.wake?.();
    await this.running;
  }

  private set(object: T, deleted: boolean): void {
    const name = object.metadata?.name;
    if (!name) return;
    if (deleted) this.objects.delete(name);
    else this.objects.set(name, object);
    for (const listener of this.listeners) listener(object, deleted);
  }

  private async relist(): Promise<void> {
    const result = await this.options.list();
    const seen = new Set<string>();
    for (const item of result.items) {
      seen.add(item.metadata!.name!);
      this.set(item, false);
    }
    for (const [name, object] of this.objects) if (!seen.has(name)) this.set(object, true);
    this.resourceVersion = result.metadata?.resourceVersion ?? '';
    this.markSynced();
  }

  private watchOnce(): Promise<void> {
    const { path, labelSelector, fieldSelector, watchSeconds = 60 } = this.options;
    const query: Record<string, string | number | boolean> = { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: watchSeconds };
    if (labelSelector) query.labelSelector = labelSelector;
    if (fieldSelector) query.fieldSelector = fieldSelector;
    return new Promise<void>((resolve, reject) => {
      const onEvent = (type: string, object: T & { code?: number }) => {
        if (type === 'ERROR') {
          if (object.code === 410) reject(new Gone('resource version too old'));
          return;
        }
        if (object.metadata?.resourceVersion) this.resourceVersion = object.metadata.resourceVersion;
        if (type === 'ADDED' || type === 'MODIFIED') this.set(object, false);
        else if (type === 'DELETED') this.set(object, true);
      };
      const onDone = (err: unknown) => {
        if (!err) resolve();
        else if ((err as { statusCode?: number }).statusCode === 410) reject(new Gone('resource version too old'));
        else reject(err instanceof Error ? err : new Error(String(err)));
      };
      this.watcher.watch(path, query, onEvent, onDone).then((controller) => {
        this.current = controller;
        if (this.closed) controller.abort();
      }, reject);
    });
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      setTimeout(resolve, ms).unref();
    });
  }

  private async loop(): Promise<void> {
    let backoffMs = 500;
    while (!this.closed) {
      try {
        if (!this.resourceVersion) await this.relist();
        const opened = Date.now();
        await this.watchOnce();
        this.lastError = undefined;
        backoffMs = 500;
        // A server (or proxy) that closes every watch at once must not make this loop spin.
        if (Date.now() - opened < 1000) await this.pause(1000);
      } catch (err) {
        if (this.closed) return;
        if (err instanceof Gone) {
          this.resourceVersion = '';
          continue;
        }
        this.lastError = err instanceof Error ? err.message : String(err);
        this.options.log.warn({ path: this.options.path, err: this.lastError, retryMs: backoffMs }, 'Kubernetes list or watch failed; retrying');
        await this.pause(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    }
  }
}
