/** Wires one ingester from its settings: the sinks the settings name, metrics, and the HTTP endpoints. */
import { promisify } from 'node:util';
import type { IngestConfig } from './config.js';
import { createIngestHttpServer, listen } from './http.js';
import { Ingester, type IngesterHooks } from './ingester.js';
import { createIngestMetrics } from './metrics.js';
import { MongoSink } from './mongo-sink.js';
import { PostgresSink } from './postgres-sink.js';
import type { ReadingSink } from './sink.js';

export interface RunningIngester {
  ingester: Ingester;
  /** Port of /metrics and /healthz. */
  httpPort: number;
  stop(): Promise<void>;
}

export async function startIngestService(config: IngestConfig, hooks: IngesterHooks = {}, processMetrics = true): Promise<RunningIngester> {
  const sinks: ReadingSink[] = [new PostgresSink(config.POSTGRES_URL, config.SEEN_RETENTION_HOURS)];
  if (config.MONGODB_URL !== undefined) sinks.push(new MongoSink(config.MONGODB_URL, config.MONGODB_DATABASE));
  const metrics = createIngestMetrics(processMetrics);
  const ingester = new Ingester(config, sinks, metrics, hooks);
  const server = createIngestHttpServer(metrics.registry, () => ingester.health());
  const httpPort = await listen(server, config.HTTP_PORT, config.HTTP_HOST);
  try {
    await ingester.start();
  } catch (err) {
    server.close();
    for (const sink of sinks) await sink.close().catch(() => undefined);
    throw err;
  }
  return {
    ingester,
    httpPort,
    async stop() {
      await ingester.stop();
      server.closeAllConnections();
      await promisify(server.close.bind(server))();
    },
  };
}
