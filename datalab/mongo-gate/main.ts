/** `node dist/datalab/mongo-gate/main.js`: settings in config.ts. Prints `listening on <port>` when ready. */
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { backendAddress, loadGateConfig } from './config.js';
import { startGate } from './gate.js';
import { grantsFrom } from './grants.js';

async function main(): Promise<void> {
  const config = loadGateConfig(process.env, process.argv.slice(2));
  const log = pino({ name: 'mongo-gate', level: config.LOG_LEVEL });
  const admin = new MongoClient(config.MONGODB_URL, { serverSelectionTimeoutMS: 5000 });
  const gate = await startGate({ host: config.LISTEN_HOST, port: config.LISTEN_PORT }, {
    backend: backendAddress(config.MONGODB_URL),
    grants: grantsFrom(admin),
    grantsMaxAgeMs: config.GRANTS_MAX_AGE_MS,
    log: (level, message, fields) => log[level](fields ?? {}, message),
  });
  log.info({ backend: backendAddress(config.MONGODB_URL) }, `listening on ${gate.port}`);
  const shutdown = async (): Promise<void> => {
    await gate.close();
    await admin.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
