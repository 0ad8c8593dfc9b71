/**
 * Publishes the readings of SITES × SENSORS_PER_SITE virtual sensors, each RATE_HZ times a second, with QoS 1
 * on `sensors/<site>/<sensor>`. One timer drives every sensor (thousands of timers would drift and cost more).
 * A persistent session (clean: false, fixed client id) and MQTT.js's offline queue carry readings across a broker
 * restart: they are resent on reconnect, so a reading may arrive twice but is never silently dropped.
 */
import type { MqttClient } from 'mqtt';
import { firstConnect, loginFrom, persistentClient } from '../mqtt-session.js';
import { KINDS, UNITS, topicFor, type Kind, type Reading } from '../readings.js';
import { dropoutSensor, sensorId, siteId, type EmulatorConfig } from './config.js';
import { isDroppedOut, nextValue, seededRandom, type Random, type SignalState, type SiteClimate } from './signals.js';

interface VirtualSensor {
  site: string;
  sensor: string;
  kind: Kind;
  climate: SiteClimate;
  state: SignalState;
  random: Random;
  dropsOut: boolean;
  nextAt: number;
  lastTs: number;
  seq: number;
}

export interface EmulatorCounts {
  /** Readings handed to the MQTT client. */
  published: number;
  /** Readings the broker acknowledged (PUBACK). */
  acknowledged: number;
  /** Scheduled readings a dropped-out sensor did not send. */
  silent: number;
}

export interface EmulatorEvents {
  onPublished?: (reading: Reading) => void;
  onConnectionChange?: (connected: boolean) => void;
}

export function buildSensors(config: EmulatorConfig, now: number): VirtualSensor[] {
  const flaky = dropoutSensor(config);
  const sensors: VirtualSensor[] = [];
  for (let s = 0; s < config.SITES; s++) {
    const climate = { meanTemperature: 9 + 3 * s, amplitude: 4 + (s % 3) };
    for (let n = 0; n < config.SENSORS_PER_SITE; n++) {
      const site = siteId(s);
      const sensor = sensorId(n);
      sensors.push({
        site,
        sensor,
        kind: KINDS[n % KINDS.length]!,
        climate,
        state: { drift: 0, spike: 0 },
        random: seededRandom(config.SEED * 7919 + s * 1009 + n),
        dropsOut: flaky === `${site}/${sensor}`,
        // Spread the sensors over one period so their messages don't all leave in the same tick.
        nextAt: now + ((s * config.SENSORS_PER_SITE + n) / (config.SITES * config.SENSORS_PER_SITE)) * (1000 / config.RATE_HZ),
        lastTs: 0,
        seq: 0,
      });
    }
  }
  return sensors;
}

export class SensorEmulator {
  readonly counts: EmulatorCounts = { published: 0, acknowledged: 0, silent: 0 };
  private readonly sensors: VirtualSensor[];
  private readonly periodMs: number;
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private resolveFinished!: () => void;
  /** Resolves once LIMIT readings were published and acknowledged (never when LIMIT is 0). */
  readonly finished = new Promise<void>((resolve) => (this.resolveFinished = resolve));

  constructor(
    private readonly config: EmulatorConfig,
    private readonly events: EmulatorEvents = {},
  ) {
    this.periodMs = 1000 / config.RATE_HZ;
    this.sensors = buildSensors(config, Date.now());
  }

  get sensorCount(): number {
    return this.sensors.length;
  }

  /** Connects and starts publishing; resolves on the first CONNACK, rejects if the broker refuses the login. */
  async start(): Promise<void> {
    const login = loginFrom(this.config);
    const client = persistentClient(login);
    this.client = client;
    client.on('connect', () => this.events.onConnectionChange?.(true));
    client.on('close', () => this.events.onConnectionChange?.(false));
    // Later errors (a broker going away) are handled by reconnecting.
    await firstConnect(client, login, () => undefined);
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.client?.endAsync();
  }

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    let next = Infinity;
    for (const sensor of this.sensors) {
      while (sensor.nextAt <= now && !this.limitReached()) {
        this.emit(sensor, sensor.nextAt);
        sensor.nextAt += this.periodMs;
      }
      next = Math.min(next, sensor.nextAt);
    }
    if (this.limitReached()) return;
    this.timer = setTimeout(() => this.tick(), Math.max(0, next - Date.now()));
  }

  private limitReached(): boolean {
    return this.config.LIMIT > 0 && this.counts.published >= this.config.LIMIT;
  }

  private emit(sensor: VirtualSensor, scheduledAt: number): void {
    const { DROPOUT_PERIOD_S, DROPOUT_DURATION_S } = this.config;
    if (sensor.dropsOut && isDroppedOut(scheduledAt, DROPOUT_PERIOD_S * 1000, DROPOUT_DURATION_S * 1000)) {
      this.counts.silent++;
      return;
    }
    // Readings are keyed by sensor and millisecond: keep each sensor's timestamps strictly increasing.
    const ts = Math.max(Math.round(scheduledAt), sensor.lastTs + 1);
    sensor.lastTs = ts;
    const reading: Reading = {
      site: sensor.site,
      sensor: sensor.sensor,
      kind: sensor.kind,
      unit: UNITS[sensor.kind],
      ts: new Date(ts).toISOString(),
      value: nextValue(sensor.kind, ts, sensor.climate, sensor.state, sensor.random, {
        spikeProbability: this.config.SPIKE_PROBABILITY,
      }),
      seq: sensor.seq++,
    };
    this.counts.published++;
    this.client!.publish(topicFor(reading.site, reading.sensor), JSON.stringify(reading), { qos: 1 }, (err) => {
      if (err) return;
      this.counts.acknowledged++;
      if (this.limitReached() && this.counts.acknowledged >= this.config.LIMIT) this.resolveFinished();
    });
    this.events.onPublished?.(reading);
  }
}
