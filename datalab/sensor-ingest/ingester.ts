/**
 * sensor-ingest: takes every message on `sensors/#`, validates it, and stores it in every sink.
 *
 * Delivery: QoS 1 with a persistent session (fixed client id, clean: false), so the broker queues what arrives
 * while the ingester or the broker is away. MQTT.js hands over one message at a time and sends its PUBACK only
 * when `handleMessage` finishes; that finishes once the reading is in the bounded buffer, so a full buffer (a slow
 * or unreachable database) stops the flow at the broker instead of growing memory. The buffer is written in
 * batches, retried with backoff until every sink took it; sinks are idempotent, so retries and redeliveries
 * store each reading once. A message that fails validation goes to the dead-letter topic and a counter.
 */
import type { IPublishPacket, MqttClient } from 'mqtt';
import { firstConnect, loginFrom, persistentClient } from '../mqtt-session.js';
import { parseReading, TOPIC_ROOT, type Reading } from '../readings.js';
import { BoundedBuffer } from './buffer.js';
import type { IngestConfig } from './config.js';
import type { IngestMetrics } from './metrics.js';
import type { ReadingSink } from './sink.js';

export interface IngesterHooks {
  /** Called after a batch is stored in every sink, with the time it happened. */
  onStored?: (readings: readonly Reading[], at: number) => void;
  onLog?: (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void;
}

const DEAD_LETTER_PAYLOAD_LIMIT = 4096;
const MAX_BACKOFF_MS = 5000;

export interface IngesterHealth {
  mqttConnected: boolean;
  buffered: number;
  /** Since when batch writes have been failing (ms since the epoch), or null. */
  failingSince: number | null;
}

export class Ingester {
  private readonly buffer: BoundedBuffer<Reading>;
  private client: MqttClient | undefined;
  private flushing: Promise<void> | undefined;
  private stopping = false;
  private failingSince: number | null = null;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: IngestConfig,
    private readonly sinks: readonly ReadingSink[],
    private readonly metrics: IngestMetrics,
    private readonly hooks: IngesterHooks = {},
  ) {
    this.buffer = new BoundedBuffer(config.BUFFER_SIZE);
  }

  health(): IngesterHealth {
    return { mqttConnected: this.client?.connected ?? false, buffered: this.buffer.size, failingSince: this.failingSince };
  }

  /** Prepares the sinks, connects, subscribes; resolves on the first CONNACK, rejects on a refused login. */
  async start(): Promise<void> {
    for (const sink of this.sinks) await sink.prepare();
    const login = loginFrom(this.config);
    const client = persistentClient(login);
    this.client = client;
    client.handleMessage = (packet, done) => {
      this.take(packet).then(
        () => done(),
        (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
      );
    };
    client.on('connect', (connack) => {
      this.metrics.connected.set(1);
      this.hooks.onLog?.('info', 'connected to the broker', { sessionPresent: connack.sessionPresent });
      client.subscribe(`${TOPIC_ROOT}/#`, { qos: 1 }, (err) => {
        if (err) this.hooks.onLog?.('warn', 'subscribe failed', { error: err.message });
      });
    });
    client.on('close', () => this.metrics.connected.set(0));
    await firstConnect(client, login, (err) => this.hooks.onLog?.('warn', 'broker connection error', { error: err.message }));
    // Messages taken before this runs wait in the buffer.
    this.flushing = this.flushLoop();
    this.schedulePrune();
  }

  /** Stops taking messages, writes what is buffered (within `drainMs`), and closes everything. */
  async stop(drainMs = 10_000): Promise<void> {
    clearTimeout(this.pruneTimer);
    await this.client?.endAsync();
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flushing, new Promise((r) => (timer = setTimeout(r, drainMs)))]);
    clearTimeout(timer);
    for (const sink of this.sinks) await sink.close().catch(() => undefined);
  }

  private async take(packet: IPublishPacket): Promise<void> {
    this.metrics.received.inc();
    const parsed = parseReading(packet.topic, packet.payload as Buffer);
    if (!parsed.ok) {
      this.deadLetter(packet, parsed.reason);
      return;
    }
    await this.buffer.push(parsed.reading);
    this.metrics.buffered.set(this.buffer.size);
  }

  private deadLetter(packet: IPublishPacket, reason: string): void {
    this.metrics.deadLetters.inc({ reason });
    const payload = Buffer.from(packet.payload).toString('utf8').slice(0, DEAD_LETTER_PAYLOAD_LIMIT);
    const letter = JSON.stringify({ topic: packet.topic, reason, payload, receivedAt: new Date().toISOString() });
    // Not awaited: the PUBACK for this publish is processed only after handleMessage returns.
    this.client!.publish(this.config.DEAD_LETTER_TOPIC, letter, { qos: 1 }, (err) => {
      if (err) this.hooks.onLog?.('warn', 'dead-letter publish failed', { error: err.message });
    });
  }

  private async flushLoop(): Promise<void> {
    let backoff = 50;
    while (!this.stopping || this.buffer.size > 0) {
      await this.buffer.waitFor(this.config.BATCH_SIZE, this.config.FLUSH_INTERVAL_MS);
      const batch = this.buffer.peek(this.config.BATCH_SIZE);
      if (batch.length === 0) continue;
      if (await this.writeBatch(batch)) {
        backoff = 50;
        this.buffer.drop(batch.length);
        this.metrics.buffered.set(this.buffer.size);
      } else {
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  /** Writes the batch to every sink; false (and logged) if any failed, so the whole batch is retried. */
  private async writeBatch(batch: Reading[]): Promise<boolean> {
    const results = await Promise.allSettled(
      this.sinks.map(async (sink) => {
        const end = this.metrics.writeSeconds.startTimer({ sink: sink.name });
        try {
          const fresh = await sink.write(batch);
          this.metrics.written.inc({ sink: sink.name }, fresh);
          this.metrics.duplicates.inc({ sink: sink.name }, batch.length - fresh);
        } catch (err) {
          this.metrics.writeErrors.inc({ sink: sink.name });
          throw new Error(`${sink.name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        } finally {
          end();
        }
      }),
    );
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length > 0) {
      this.failingSince ??= Date.now();
      this.hooks.onLog?.('warn', 'batch write failed, will retry', {
        readings: batch.length,
        errors: failures.map((f) => (f.reason as Error).message),
      });
      return false;
    }
    this.failingSince = null;
    const now = Date.now();
    for (const r of batch) this.metrics.endToEndSeconds.observe((now - Date.parse(r.ts)) / 1000);
    this.hooks.onStored?.(batch, now);
    return true;
  }

  private schedulePrune(): void {
    const prunable = this.sinks.filter((s): s is ReadingSink & { prune(): Promise<number> } => 'prune' in s);
    const run = (): void => {
      for (const sink of prunable) sink.prune().catch(() => undefined);
      this.pruneTimer = setTimeout(run, 3_600_000);
      this.pruneTimer.unref();
    };
    run();
  }
}
