/**
 * `npm run bench:ingest`: readings per second through sensor-ingest into PostgreSQL (and MongoDB when
 * BENCH_INGEST_MONGODB_URL names a server; none can be had here), with end-to-end latency from the reading's
 * timestamp (its publish time) to the commit of the batch holding it.
 *
 *  1. Paced: the emulator publishes at BENCH_INGEST_RATES readings/s (100 sensors), BENCH_INGEST_SECONDS each;
 *     throughput stored per second, and p50/p99/max latency. A rate the ingester cannot follow shows as a growing
 *     latency.
 *  2. Drain: BENCH_INGEST_BACKLOG readings published while the ingester is away (its persistent session queues
 *     them at the broker), then the ingester starts: its sustained rate is the backlog over the time to store it all.
 *
 * Real Mosquitto 2 (dynamic-security accounts) and a throwaway PostgreSQL 15 cluster, both on this machine, with
 * the benchmark itself: on a 2-core machine every figure is shared CPU. Writes bench/results/ingest-<time>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { applyAccounts, emulatorAccount, ingesterAccount } from '../datalab/mqtt-accounts.js';
import type { Reading } from '../datalab/readings.js';
import { loadEmulatorConfig } from '../datalab/sensor-emulator/config.js';
import { SensorEmulator } from '../datalab/sensor-emulator/emulator.js';
import { loadIngestConfig } from '../datalab/sensor-ingest/config.js';
import { startIngestService, type RunningIngester } from '../datalab/sensor-ingest/service.js';
import { startMosquitto, type MosquittoBroker } from '../tests/helpers/mosquitto.js';
import { createDatabase, startPostgres } from '../tests/helpers/postgres.js';
import { REPO } from './lib/hubs.js';
import { envInt } from './lib/env.js';
import { machineInfo } from './lib/report.js';
import { sig, summarize } from './lib/stats.js';

const RATES = (process.env.BENCH_INGEST_RATES ?? '500,1000,2000,4000').split(',').map(Number);
const SECONDS = envInt('BENCH_INGEST_SECONDS', 10, 1);
const BACKLOG = envInt('BENCH_INGEST_BACKLOG', 50_000, 1);
const SENSORS = 100;
const EMULATOR = { username: 'bench-emulator', password: 'bench-emulator-secret' };
const INGESTER = { username: 'bench-ingester', password: 'bench-ingester-secret' };

interface Row {
  phase: string;
  offered: number | null;
  readings: number;
  storedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

let dbCounter = 0;

async function withIngester<T>(
  broker: MosquittoBroker,
  postgresUrl: string,
  body: (start: () => Promise<RunningIngester>, latencies: number[], stored: () => number) => Promise<T>,
): Promise<T> {
  const dbUrl = await createDatabase(postgresUrl, `bench_ingest_${++dbCounter}`);
  const latencies: number[] = [];
  let count = 0;
  const config = loadIngestConfig(
    {
      MQTT_URL: broker.url,
      MQTT_USERNAME: INGESTER.username,
      MQTT_PASSWORD: INGESTER.password,
      MQTT_CLIENT_ID: `bench-ingest-${dbCounter}`,
      POSTGRES_URL: dbUrl,
      MONGODB_URL: process.env.BENCH_INGEST_MONGODB_URL || undefined,
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
    },
    [],
  );
  const start = () =>
    startIngestService(config, {
      onStored: (readings: readonly Reading[], at: number) => {
        count += readings.length;
        for (const r of readings) latencies.push(at - Date.parse(r.ts));
      },
    }, false);
  const result = await body(start, latencies, () => count);
  const check = new pg.Client({ connectionString: dbUrl });
  await check.connect();
  const { rows } = await check.query<{ n: number }>('SELECT coalesce(sum(count), 0)::int AS n FROM shared.sensor_minute');
  await check.end();
  if (rows[0]!.n !== count) throw new Error(`aggregates count ${rows[0]!.n} readings, the ingester stored ${count}`);
  return result;
}

function emulator(broker: MosquittoBroker, clientId: string, rate: number, limit: number): SensorEmulator {
  return new SensorEmulator(
    loadEmulatorConfig(
      {
        MQTT_URL: broker.url,
        MQTT_USERNAME: EMULATOR.username,
        MQTT_PASSWORD: EMULATOR.password,
        MQTT_CLIENT_ID: clientId,
        SITES: '5',
        SENSORS_PER_SITE: String(SENSORS / 5),
        RATE_HZ: String(rate / SENSORS),
        LIMIT: String(limit),
        DROPOUT_SENSOR: 'none',
      },
      [],
    ),
  );
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the ingester');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function row(phase: string, offered: number | null, latencies: number[], seconds: number): Row {
  const s = summarize(latencies);
  return { phase, offered, readings: s.count, storedPerSecond: Math.round(s.count / seconds), p50Ms: sig(s.p50), p99Ms: sig(s.p99), maxMs: sig(s.max) };
}

async function paced(broker: MosquittoBroker, postgresUrl: string, rate: number): Promise<Row> {
  const total = rate * SECONDS;
  return withIngester(broker, postgresUrl, async (start, latencies, stored) => {
    const service = await start();
    const source = emulator(broker, `bench-emu-paced-${rate}`, rate, total);
    const t0 = Date.now();
    await source.start();
    await source.finished;
    await until(() => stored() >= total, 120_000);
    const seconds = (Date.now() - t0) / 1000;
    await source.stop();
    await service.stop();
    return row('paced', rate, latencies, seconds);
  });
}

async function drain(broker: MosquittoBroker, postgresUrl: string): Promise<Row> {
  return withIngester(broker, postgresUrl, async (start, latencies, stored) => {
    // First connection makes the persistent session and its subscription; then the ingester goes away.
    const first = await start();
    await new Promise((r) => setTimeout(r, 300)); // let the SUBACK arrive before leaving
    await first.stop();
    const source = emulator(broker, 'bench-emu-backlog', 20_000, BACKLOG);
    await source.start();
    await source.finished;
    await source.stop();
    const t0 = Date.now();
    const service = await start();
    await until(() => stored() >= BACKLOG, 300_000);
    const seconds = (Date.now() - t0) / 1000;
    await service.stop();
    return { ...row('drain', null, latencies, seconds), p50Ms: NaN, p99Ms: NaN, maxMs: NaN };
  });
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const postgres = await startPostgres({ database: 'bench' });
  const broker = await startMosquitto({ persistence: true });
  const rows: Row[] = [];
  try {
    await applyAccounts(broker.url, broker.admin, [
      emulatorAccount(EMULATOR.username, EMULATOR.password),
      ingesterAccount(INGESTER.username, INGESTER.password),
    ]);
    for (const rate of RATES) {
      rows.push(await paced(broker, postgres.url, rate));
      console.log(JSON.stringify(rows.at(-1)));
    }
    rows.push(await drain(broker, postgres.url));
    console.log(JSON.stringify(rows.at(-1)));
  } finally {
    await broker.stop();
    await postgres.stop();
  }
  const sinks = process.env.BENCH_INGEST_MONGODB_URL ? 'PostgreSQL + MongoDB' : 'PostgreSQL';
  console.log(`\nsensor-ingest into ${sinks}; ${machine.nproc} cores (${machine.cpu}), ${machine.node}\n`);
  console.log('| phase | offered readings/s | readings | stored readings/s | p50 ms | p99 ms | max ms |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const ms = (x: number) => (Number.isNaN(x) ? '–' : String(x));
    console.log(`| ${r.phase} | ${r.offered ?? 'backlog'} | ${r.readings} | ${r.storedPerSecond} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${ms(r.maxMs)} |`);
  }
  const dir = join(REPO, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `ingest-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ machine: { ...machine, loadavgEnd: machine.loadavgStart }, sinks, seconds: SECONDS, rows }, null, 2));
  console.log(`\nwrote ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
