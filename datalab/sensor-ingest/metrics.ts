/** The ingester's Prometheus metrics, on a registry of its own (several ingesters can live in one test process). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createIngestMetrics(withProcessMetrics: boolean) {
  const registry = new Registry();
  if (withProcessMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const perSink = (name: string, help: string) => new Counter({ name, help, labelNames: ['sink'] as const, registers });
  return {
    registry,
    received: new Counter({ name: 'labhub_ingest_messages_total', help: 'MQTT messages received', registers }),
    deadLetters: new Counter({
      name: 'labhub_ingest_dead_letters_total',
      help: 'Messages rejected and sent to the dead-letter topic, by reason (json, schema, topic)',
      labelNames: ['reason'] as const,
      registers,
    }),
    written: perSink('labhub_ingest_readings_written_total', 'Readings newly stored, by sink'),
    duplicates: perSink('labhub_ingest_duplicates_total', 'Readings delivered again and stored only once, by sink'),
    writeErrors: perSink('labhub_ingest_write_errors_total', 'Failed batch writes (retried), by sink'),
    writeSeconds: new Histogram({
      name: 'labhub_ingest_write_seconds',
      help: 'Time to write one batch, by sink',
      labelNames: ['sink'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    endToEndSeconds: new Histogram({
      name: 'labhub_ingest_end_to_end_seconds',
      help: 'From the reading timestamp to stored in every sink',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    buffered: new Gauge({ name: 'labhub_ingest_buffered_readings', help: 'Readings taken from MQTT, not yet stored', registers }),
    connected: new Gauge({ name: 'labhub_ingest_mqtt_connected', help: '1 while connected to the broker', registers }),
  };
}

export type IngestMetrics = ReturnType<typeof createIngestMetrics>;
