import { describe, expect, it } from 'vitest';
import { dailyCycle, isDroppedOut, nextValue, seededRandom } from '../../../datalab/sensor-emulator/signals.js';
import { dropoutSensor, loadEmulatorConfig } from '../../../datalab/sensor-emulator/config.js';
import { buildSensors } from '../../../datalab/sensor-emulator/emulator.js';
import { parseReading, readingKey } from '../../../datalab/readings.js';

const base = { MQTT_USERNAME: 'emu', MQTT_PASSWORD: 'pw' };
const climate = { meanTemperature: 10, amplitude: 5 };

describe('sensor signals', () => {
  it('peaks at 15:00 UTC and bottoms at 03:00 UTC', () => {
    expect(dailyCycle(Date.UTC(2026, 0, 1, 15))).toBeCloseTo(1, 6);
    expect(dailyCycle(Date.UTC(2026, 0, 1, 3))).toBeCloseTo(-1, 6);
  });

  it('makes warm afternoons and cool nights, with humidity moving the other way', () => {
    const mean = (kind: 'temperature' | 'humidity', hour: number): number => {
      const random = seededRandom(7);
      const state = { drift: 0, spike: 0 };
      let sum = 0;
      for (let i = 0; i < 200; i++) sum += nextValue(kind, Date.UTC(2026, 0, 1, hour) + i * 1000, climate, state, random, { spikeProbability: 0 });
      return sum / 200;
    };
    expect(mean('temperature', 15) - mean('temperature', 3)).toBeGreaterThan(8);
    expect(mean('humidity', 15)).toBeLessThan(mean('humidity', 3));
  });

  it('gives air quality a low background and occasional spikes that decay', () => {
    const random = seededRandom(3);
    const state = { drift: 0, spike: 0 };
    const values = Array.from({ length: 5000 }, (_, i) => nextValue('air_quality', i * 1000, climate, state, random, { spikeProbability: 0.002 }));
    const sorted = [...values].sort((a, b) => a - b);
    expect(sorted[Math.floor(values.length / 2)]).toBeLessThan(20);
    expect(sorted[values.length - 1]).toBeGreaterThan(40);
    expect(values.every((v) => v > 0)).toBe(true);
  });

  it('is reproducible from a seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    expect(Array.from({ length: 5 }, a)).toEqual(Array.from({ length: 5 }, b));
  });

  it('drops a sensor out for the last part of each period and brings it back', () => {
    expect(isDroppedOut(10_000, 60_000, 20_000)).toBe(false);
    expect(isDroppedOut(45_000, 60_000, 20_000)).toBe(true);
    expect(isDroppedOut(61_000, 60_000, 20_000)).toBe(false);
  });
});

describe('sensor-emulator settings', () => {
  it('reads env, lets flags override it, and fills defaults', () => {
    const c = loadEmulatorConfig({ ...base, SITES: '2' }, ['--sites', '5', '--rate-hz=2.5']);
    expect(c.SITES).toBe(5);
    expect(c.RATE_HZ).toBe(2.5);
    expect(c.SENSORS_PER_SITE).toBe(4);
    expect(dropoutSensor(c)).toBe('site-1/s04');
  });

  it('rejects bad values and unknown flags without echoing the password', () => {
    expect(() => loadEmulatorConfig({ ...base, RATE_HZ: '0' }, [])).toThrow(/RATE_HZ/);
    expect(() => loadEmulatorConfig({ ...base, MQTT_URL: 'http://x' }, [])).toThrow(/MQTT_URL/);
    expect(() => loadEmulatorConfig(base, ['--bogus', '1'])).toThrow(/unknown flag --bogus/);
    expect(() => loadEmulatorConfig({ MQTT_USERNAME: 'emu', MQTT_PASSWORD: '' }, [])).toThrow(/MQTT_PASSWORD/);
    const secret = 'hunter2-very-secret';
    expect(() => loadEmulatorConfig({ ...base, MQTT_PASSWORD: secret, DROPOUT_PERIOD_S: '10', DROPOUT_DURATION_S: '10' }, [])).toThrow(
      /^invalid sensor-emulator settings: DROPOUT_DURATION_S: DROPOUT_DURATION_S must be shorter than DROPOUT_PERIOD_S$/,
    );
    expect(() => loadEmulatorConfig({ ...base, MQTT_PASSWORD: secret, SITES: secret }, [])).not.toThrow(new RegExp(secret));
  });

  it('lays out N sensors on M sites with all three kinds', () => {
    const sensors = buildSensors(loadEmulatorConfig({ ...base, SITES: '2', SENSORS_PER_SITE: '3' }, []), 0);
    expect(sensors.map((s) => `${s.site}/${s.sensor}:${s.kind}`)).toEqual([
      'site-1/s01:temperature',
      'site-1/s02:humidity',
      'site-1/s03:air_quality',
      'site-2/s01:temperature',
      'site-2/s02:humidity',
      'site-2/s03:air_quality',
    ]);
    expect(sensors.filter((s) => s.dropsOut).map((s) => s.sensor)).toEqual(['s03']);
  });
});

describe('reading schema', () => {
  const good = { site: 'site-1', sensor: 's01', kind: 'temperature', unit: 'degC', ts: '2026-01-01T00:00:00.123Z', value: 1.5, seq: 0 };

  it('accepts a reading whose topic names its site and sensor', () => {
    expect(parseReading('sensors/site-1/s01', JSON.stringify(good))).toEqual({ ok: true, reading: good });
  });

  it.each([
    ['json', 'sensors/site-1/s01', '{not json'],
    ['schema', 'sensors/site-1/s01', JSON.stringify({ ...good, value: 'hot' })],
    ['schema', 'sensors/site-1/s01', JSON.stringify({ ...good, extra: 1 })],
    ['topic', 'sensors/site-2/s01', JSON.stringify(good)],
    ['topic', 'sensors/site-1', JSON.stringify(good)],
  ])('rejects with reason %s', (reason, topic, payload) => {
    expect(parseReading(topic, payload)).toEqual({ ok: false, reason });
  });

  it('keys a reading by site, sensor and instant', () => {
    expect(readingKey({ ...good, ts: '2026-01-01T01:00:00.123+01:00' })).toBe('site-1/s01/2026-01-01T00:00:00.123Z');
  });
});
