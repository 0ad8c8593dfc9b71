import { EventEmitter } from 'node:events';

/** One event of the spawn progress stream, in JupyterHub's shape. */
export interface SpawnEvent {
  progress?: number;
  message: string;
  html_message?: string;
  ready?: boolean;
  failed?: boolean;
  url?: string;
}

/**
 * The progress of one spawn: every event so far (so a page opened late replays them) and a live feed.
 * It ends with exactly one `ready` or `failed` event.
 */
export class SpawnProgress {
  readonly events: SpawnEvent[] = [];
  private readonly emitter = new EventEmitter();
  private lastProgress = 0;
  done = false;

  constructor() {
    // Many browser tabs may watch one spawn; the default limit of 10 would only warn, never protect.
    this.emitter.setMaxListeners(0);
  }

  emit(event: SpawnEvent): void {
    if (this.done) return;
    // The bar never goes backwards, whatever order a spawner reports in.
    const progress = event.progress === undefined ? this.lastProgress : Math.max(this.lastProgress, Math.min(100, event.progress));
    this.lastProgress = progress;
    const full = { ...event, progress };
    this.events.push(full);
    if (event.ready || event.failed) this.done = true;
    this.emitter.emit('event', full);
  }

  subscribe(listener: (event: SpawnEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
