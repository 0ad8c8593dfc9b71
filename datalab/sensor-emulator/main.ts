/** `node dist/datalab/sensor-emulator/main.js [--sites 3 --sensors-per-site 4 --rate-hz 1 …]`: see config.ts. */
import { pino } from 'pino';
import { loadEmulatorConfig } from './config.js';
import { SensorEmulator } from './emulator.js';

const log = pino({ name: 'sensor-emulator' });

async function main(): Promise<void> {
  const config = loadEmulatorConfig(process.env, process.argv.slice(2));
  const emulator = new SensorEmulator(config, {
    onConnectionChange: (connected) => log.info({ connected }, connected ? 'connected to the broker' : 'connection lost, reconnecting'),
  });
  await emulator.start();
  log.info({ sensors: emulator.sensorCount, rateHz: config.RATE_HZ, url: config.MQTT_URL }, 'publishing');
  const report = setInterval(() => log.info(emulator.counts, 'readings'), 60_000);
  const shutdown = async (): Promise<void> => {
    clearInterval(report);
    await emulator.stop();
    log.info(emulator.counts, 'stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
  if (config.LIMIT > 0) {
    await emulator.finished;
    await shutdown();
  }
}

main().catch((err: unknown) => {
  log.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
