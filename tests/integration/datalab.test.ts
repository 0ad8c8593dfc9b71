/**
 * The DataLab pipeline against real services: Mosquitto 2 with the dynamic-security plugin (a broker of our own,
 * tests/helpers/datalab-broker.ts) and the run's PostgreSQL (tests/helpers/global-setup.ts). Each service logs in
 * with its own least-privilege account made through the plugin's JSON API.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyAccounts, emulatorAccount, ingesterAccount } from '../../datalab/mqtt-accounts.js';
import { loadEmulatorConfig } from '../../datalab/sensor-emulator/config.js';
import { SensorEmulator, type EmulatorEvents } from '../../datalab/sensor-emulator/emulator.js';
import { parseReading, type Reading } from '../../datalab/readings.js';
import { mosquittoAvailable, startBroker, type TestBroker } from '../helpers/datalab-broker.js';
import { requireService } from '../helpers/jupyter.js';

const haveMosquitto = requireService('mosquitto with the dynamic-security plugin', mosquittoAvailable());
const EMULATOR = { username: 'svc-emulator', password: 'emulator-secret-1' };
const INGESTER = { username: 'svc-ingester', password: 'ingester-secret-1' };

function emulatorFor(broker: TestBroker, settings: Record<string, string>, clientId: string, events: EmulatorEvents = {}): SensorEmulator {
  const config = loadEmulatorConfig(
    { MQTT_URL: broker.url, MQTT_USERNAME: EMULATOR.username, MQTT_PASSWORD: EMULATOR.password, MQTT_CLIENT_ID: clientId, ...settings },
    [],
  );
  return new SensorEmulator(config, events);
}

describe.runIf(haveMosquitto)('DataLab with real Mosquitto', () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startBroker();
    await applyAccounts(broker.url, broker.admin, [
      emulatorAccount(EMULATOR.username, EMULATOR.password),
      ingesterAccount(INGESTER.username, INGESTER.password),
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
});
