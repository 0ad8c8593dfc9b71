/**
 * The DataLab pipeline against real services: Mosquitto 2 with the dynamic-security plugin (a broker of our own,
 * tests/helpers/mosquitto.ts) and the run's PostgreSQL (tests/helpers/global-setup.ts). Each service logs in
 * with its own least-privilege account made through the plugin's JSON API.
 */
import { MongoClient } from 'mongodb';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyAccounts, emulatorAccount, ingesterAccount, DEAD_LETTER_TOPIC } from '../../datalab/mqtt-accounts.js';
import { loadEmulatorConfig } from '../../datalab/sensor-emulator/config.js';
import { SensorEmulator, type EmulatorEvents } from '../../datalab/sensor-emulator/emulator.js';
import { parseReading, type Reading } from '../../datalab/readings.js';
import { loadIngestConfig } from '../../datalab/sensor-ingest/config.js';
import { startIngestService, type RunningIngester } from '../../datalab/sensor-ingest/service.js';
import { PostgresSink } from '../../datalab/sensor-ingest/postgres-sink.js';
import { mosquittoUnavailableReason, startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { ferretdbAvailable, startFerretDb } from '../helpers/ferretdb.js';
import { requireService } from '../helpers/jupyter.js';
import { createDatabase } from '../helpers/postgres.js';

const haveMosquitto = requireService('mosquitto with the dynamic-security plugin', mosquittoUnavailableReason() === null);
const postgresUrl = inject('postgresUrl');
const havePostgres = requireService('postgres', postgresUrl !== null);
const haveFerretDb = requireService('FerretDB 1.24, a MongoDB-wire server (scripts/setup-credentials.sh)', ferretdbAvailable());
const MONITOR = { username: 'svc-monitor', password: 'monitor-secret-1' };
const EMULATOR = { username: 'svc-emulator', password: 'emulator-secret-1' };
const INGESTER = { username: 'svc-ingester', password: 'ingester-secret-1' };

function emulatorFor(broker: MosquittoBroker, settings: Record<string, string>, clientId: string, events: EmulatorEvents = {}): SensorEmulator {
  const config = loadEmulatorConfig(
    { MQTT_URL: broker.url, MQTT_USERNAME: EMULATOR.username, MQTT_PASSWORD: EMULATOR.password, MQTT_CLIENT_ID: clientId, ...settings },
    [],
  );
  return new SensorEmulator(config, events);
}

describe.runIf(haveMosquitto)('DataLab with real Mosquitto', () => {
  let broker: MosquittoBroker;

  beforeAll(async () => {
    broker = await startMosquitto({ persistence: true });
    await applyAccounts(broker.url, broker.admin, [
      emulatorAccount(EMULATOR.username, EMULATOR.password),
      ingesterAccount(INGESTER.username, INGESTER.password),
      { ...MONITOR, role: 'deadletter-reader', acls: [{ acltype: 'subscribePattern', topic: 'deadletter/#', allow: true }] },
    ]);
  });
  afterAll(async () => {
    await broker?.stop();
  });

  describe('sensor-emulator', () => {
    it('publishes every reading of N sensors on M sites, valid against the schema, acknowledged by the broker', async () => {
      const seen: Reading[] = [];
      const reader = await mqtt.connectAsync(broker.url, { ...INGESTER, clientId: 'emu-test-reader', clean: true });
      reader.on('message', (topic, payload) => {
        const parsed = parseReading(topic, payload);
        if (parsed.ok) seen.push(parsed.reading);
      });
      await reader.subscribeAsync('sensors/#', { qos: 1 });
      const emulator = emulatorFor(broker, { SITES: '2', SENSORS_PER_SITE: '3', RATE_HZ: '50', LIMIT: '300', DROPOUT_SENSOR: 'none' }, 'emu-test-1');
      await emulator.start();
      await emulator.finished;
      await emulator.stop();
      await expect.poll(() => seen.length, { timeout: 5000 }).toBe(300);
      await reader.endAsync();

      expect(emulator.counts).toEqual({ published: 300, acknowledged: 300, silent: 0 });
      expect(new Set(seen.map((r) => `${r.site}/${r.sensor}`)).size).toBe(6);
      expect(new Set(seen.map((r) => r.kind))).toEqual(new Set(['temperature', 'humidity', 'air_quality']));
    });

    it('has a sensor that drops out and comes back', async () => {
      const flaky: number[] = [];
      const withEvents = emulatorFor(
        broker,
        { SITES: '1', SENSORS_PER_SITE: '2', RATE_HZ: '100', LIMIT: '400', DROPOUT_SENSOR: 'site-1/s02', DROPOUT_PERIOD_S: '1', DROPOUT_DURATION_S: '0.5' },
        'emu-test-2',
        { onPublished: (r) => void (r.sensor === 's02' && flaky.push(Date.parse(r.ts))) },
      );
      await withEvents.start();
      await withEvents.finished;
      await withEvents.stop();
      expect(withEvents.counts.silent).toBeGreaterThan(50);
      const gaps = flaky.slice(1).map((t, i) => t - flaky[i]!);
      // Silent for about half a second, then back: a long gap between two stretches of readings every 10 ms.
      expect(gaps.filter((g) => g >= 400).length).toBeGreaterThanOrEqual(1);
      expect(gaps.filter((g) => g < 20).length).toBeGreaterThan(50);
    });

    it('may publish only under sensors/: its account cannot publish elsewhere or subscribe', async () => {
      const client = await mqtt.connectAsync(broker.url, { ...EMULATOR, clientId: 'emu-test-acl', protocolVersion: 5, clean: true });
      try {
        await expect(client.publishAsync('deadletter/sensors', 'x', { qos: 1 })).rejects.toThrow(/not authorized/i);
        await expect(client.subscribeAsync('sensors/#', { qos: 1 })).rejects.toThrow(/not authorized/i);
      } finally {
        await client.endAsync();
      }
      await expect(mqtt.connectAsync(broker.url, { ...EMULATOR, password: 'wrong', reconnectPeriod: 0 })).rejects.toThrow(/not authori[sz]ed/i);
    });

    it('reconnects after the broker restarts and goes on publishing', async () => {
      const emulator = emulatorFor(broker, { SITES: '1', SENSORS_PER_SITE: '2', RATE_HZ: '50', DROPOUT_SENSOR: 'none' }, 'emu-test-3');
      await emulator.start();
      await expect.poll(() => emulator.counts.acknowledged, { timeout: 5000 }).toBeGreaterThan(20);
      await broker.restart();
      const before = emulator.counts.acknowledged;
      await expect.poll(() => emulator.counts.acknowledged, { timeout: 10_000 }).toBeGreaterThan(before + 50);
      await emulator.stop();
    });
  });

  describe.runIf(havePostgres)('sensor-ingest', () => {
    let db: pg.Pool;
    let running: RunningIngester | undefined;
    let dbUrl: string;
    let dbCounter = 0;

    async function ingest(clientId: string, settings: Record<string, string> = {}): Promise<RunningIngester> {
      dbUrl = await createDatabase(postgresUrl!, `datalab_ingest_${++dbCounter}`);
      db = new pg.Pool({ connectionString: dbUrl, max: 2 });
      db.on('error', () => undefined); // the outage test terminates its idle connections
      const config = loadIngestConfig(
        {
          MQTT_URL: broker.url,
          MQTT_USERNAME: INGESTER.username,
          MQTT_PASSWORD: INGESTER.password,
          MQTT_CLIENT_ID: clientId,
          POSTGRES_URL: dbUrl,
          HTTP_HOST: '127.0.0.1',
          HTTP_PORT: '0',
          ...settings,
        },
        [],
      );
      running = await startIngestService(config, {}, false);
      return running;
    }

    async function stored(): Promise<{ readings: number; aggregated: number; buckets: number }> {
      const { rows } = await db.query<{ readings: number; aggregated: number; buckets: number }>(
        `SELECT (SELECT count(*) FROM ingest.readings_seen)::int AS readings,
                (SELECT coalesce(sum(count), 0) FROM shared.sensor_minute)::int AS aggregated,
                (SELECT count(*) FROM shared.sensor_minute)::int AS buckets`,
      );
      return rows[0]!;
    }

    async function metric(name: string): Promise<string> {
      const text = await (await fetch(`http://127.0.0.1:${running!.httpPort}/metrics`)).text();
      return text.split('\n').filter((l) => l.startsWith(name)).join('\n');
    }

    afterEach(async () => {
      await running?.stop();
      running = undefined;
      await db?.end();
    });

    it('stores what the emulator publishes: counts match, aggregates per sensor and minute are consistent', async () => {
      const service = await ingest('ingest-test-1');
      const emulator = emulatorFor(broker, { SITES: '2', SENSORS_PER_SITE: '3', RATE_HZ: '100', LIMIT: '600', DROPOUT_SENSOR: 'none' }, 'emu-ingest-1');
      await emulator.start();
      await emulator.finished;
      await emulator.stop();
      await expect.poll(stored, { timeout: 10_000 }).toMatchObject({ readings: 600, aggregated: 600 });

      const { rows } = await db.query<{ bad: number; sensors: number }>(
        `SELECT count(*) FILTER (WHERE NOT (min <= mean AND mean <= max AND abs(mean - sum / count) < 1e-9))::int AS bad,
                count(DISTINCT (site, sensor))::int AS sensors FROM shared.sensor_minute`,
      );
      expect(rows[0]).toEqual({ bad: 0, sensors: 6 });
      expect(await metric('labhub_ingest_readings_written_total')).toContain('labhub_ingest_readings_written_total{sink="postgres"} 600');
      const health = await fetch(`http://127.0.0.1:${service.httpPort}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', mqttConnected: true, buffered: 0 });
    });

    it('sends malformed messages to the dead-letter topic and a counter, and goes on ingesting', async () => {
      await ingest('ingest-test-2');
      const letters: { reason: string; topic: string }[] = [];
      const monitor = await mqtt.connectAsync(broker.url, { ...MONITOR, clientId: 'dl-monitor', clean: true });
      monitor.on('message', (_t, payload) => letters.push(JSON.parse(payload.toString()) as { reason: string; topic: string }));
      await monitor.subscribeAsync(DEAD_LETTER_TOPIC, { qos: 1 });
      const sender = await mqtt.connectAsync(broker.url, { ...EMULATOR, clientId: 'dl-sender', clean: true });
      const good = { site: 'site-9', sensor: 's01', kind: 'humidity', unit: 'percent', ts: new Date().toISOString(), value: 55, seq: 0 };
      await sender.publishAsync('sensors/site-9/s01', '{"truncated', { qos: 1 });
      await sender.publishAsync('sensors/site-9/s01', JSON.stringify({ ...good, value: 'wet' }), { qos: 1 });
      await sender.publishAsync('sensors/site-9/s02', JSON.stringify(good), { qos: 1 });
      await sender.publishAsync('sensors/site-9/s01', JSON.stringify(good), { qos: 1 });
      await sender.endAsync();

      await expect.poll(() => letters.length, { timeout: 5000 }).toBe(3);
      await monitor.endAsync();
      expect(letters.map((l) => l.reason)).toEqual(['json', 'schema', 'topic']);
      expect(letters[2]?.topic).toBe('sensors/site-9/s02');
      await expect.poll(stored, { timeout: 5000 }).toMatchObject({ readings: 1, aggregated: 1 });
      expect(await metric('labhub_ingest_dead_letters_total')).toMatch(/reason="json"} 1/);
    });

    it('stores each reading once when it is delivered again', async () => {
      await ingest('ingest-test-3');
      const sender = await mqtt.connectAsync(broker.url, { ...EMULATOR, clientId: 'dup-sender', clean: true });
      const reading = { site: 'site-7', sensor: 's01', kind: 'temperature', unit: 'degC', ts: new Date().toISOString(), value: 21.5, seq: 3 };
      for (let i = 0; i < 3; i++) await sender.publishAsync('sensors/site-7/s01', JSON.stringify(reading), { qos: 1 });
      await sender.endAsync();
      await expect.poll(() => metric('labhub_ingest_duplicates_total'), { timeout: 5000 }).toContain('{sink="postgres"} 2');
      expect(await stored()).toEqual({ readings: 1, aggregated: 1, buckets: 1 });

      // A batch retried after its commit went through (a lost acknowledgement) changes nothing either.
      const sink = new PostgresSink(dbUrl, 72);
      try {
        expect(await sink.write([{ ...reading, kind: 'temperature' }])).toBe(0);
      } finally {
        await sink.close();
      }
      const { rows } = await db.query('SELECT count, sum, min, max, mean FROM shared.sensor_minute');
      expect(rows).toEqual([{ count: '1', sum: 21.5, min: 21.5, max: 21.5, mean: 21.5 }]);
    });

    it.runIf(haveFerretDb)('also stores each raw reading once in a MongoDB-wire server (FerretDB)', async () => {
      const ferret = await startFerretDb();
      const mongo = new MongoClient(ferret.adminUrl);
      try {
        await ingest('ingest-test-mongo', { MONGODB_URL: ferret.adminUrl, MONGODB_DATABASE: 'lab' });
        const emulator = emulatorFor(broker, { SITES: '2', SENSORS_PER_SITE: '2', RATE_HZ: '100', LIMIT: '200', DROPOUT_SENSOR: 'none' }, 'emu-mongo');
        await emulator.start();
        await emulator.finished;
        await emulator.stop();
        const readings = mongo.db('lab').collection<{ _id: string; value: number }>('readings');
        await expect.poll(() => readings.countDocuments(), { timeout: 10_000 }).toBe(200);
        await expect.poll(stored, { timeout: 10_000 }).toMatchObject({ readings: 200, aggregated: 200 });

        const sender = await mqtt.connectAsync(broker.url, { ...EMULATOR, clientId: 'mongo-dup-sender', clean: true });
        const reading = { site: 'site-8', sensor: 's01', kind: 'temperature', unit: 'degC', ts: new Date().toISOString(), value: 19.25, seq: 1 };
        for (let i = 0; i < 3; i++) await sender.publishAsync('sensors/site-8/s01', JSON.stringify(reading), { qos: 1 });
        await sender.endAsync();
        await expect.poll(() => readings.countDocuments(), { timeout: 5000 }).toBe(201);
        await new Promise((r) => setTimeout(r, 500));
        expect(await readings.countDocuments({ 'meta.site': 'site-8' })).toBe(1);
        expect(await metric('labhub_ingest_readings_written_total')).toContain('labhub_ingest_readings_written_total{sink="mongodb"} 201');
      } finally {
        await mongo.close();
        await ferret.stop();
      }
    });

    it('loses no reading when the broker restarts mid-stream', async () => {
      await ingest('ingest-test-4');
      const emulator = emulatorFor(broker, { SITES: '2', SENSORS_PER_SITE: '3', RATE_HZ: '60', LIMIT: '1500', DROPOUT_SENSOR: 'none' }, 'emu-ingest-4');
      await emulator.start();
      await expect.poll(async () => (await stored()).readings, { timeout: 10_000 }).toBeGreaterThan(200);
      await broker.restart();
      await emulator.finished;
      await emulator.stop();
      await expect.poll(stored, { timeout: 20_000 }).toMatchObject({ readings: 1500, aggregated: 1500 });
    });

    it('holds readings while PostgreSQL refuses connections and stores them all once it is back', async () => {
      const service = await ingest('ingest-test-5', { BUFFER_SIZE: '200', BATCH_SIZE: '50' });
      const name = new URL(dbUrl).pathname.slice(1);
      const admin = new pg.Client({ connectionString: postgresUrl! });
      await admin.connect();
      try {
        await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS false`);
        await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
        const emulator = emulatorFor(broker, { SITES: '1', SENSORS_PER_SITE: '4', RATE_HZ: '100', LIMIT: '800', DROPOUT_SENSOR: 'none' }, 'emu-ingest-5');
        await emulator.start();
        // The buffer fills and stops there: the rest waits at the broker.
        await expect.poll(() => service.ingester.health().buffered, { timeout: 10_000 }).toBe(200);
        expect(service.ingester.health().failingSince).not.toBeNull();
        await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
        await emulator.finished;
        await emulator.stop();
      } finally {
        await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
        await admin.end();
      }
      await expect.poll(stored, { timeout: 20_000 }).toMatchObject({ readings: 800, aggregated: 800 });
      expect(service.ingester.health().failingSince).toBeNull();
    });
  });
});
