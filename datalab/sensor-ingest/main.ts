/** `node dist/datalab/sensor-ingest/main.js`: settings in config.ts; metrics and health on HTTP_PORT. */
import { pino } from 'pino';
import { loadIngestConfig } from './config.js';
import { startIngestService } from './service.js';

const log = pino({ name: 'sensor-ingest' });

async function main(): Promise<void> {
  const config = loadIngestConfig(process.env, process.argv.slice(2));
  const service = await startIngestService(config, {
    onLog: (level, message, fields) => log[level](fields ?? {}, message),
  });
  log.info({ url: config.MQTT_URL, mongodb: config.MONGODB_URL !== undefined, httpPort: service.httpPort }, 'ingesting sensors/#');
  const shutdown = async (): Promise<void> => {
    await service.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
}

main().catch((err: unknown) => {
  log.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
