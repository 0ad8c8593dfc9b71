/** The emulator's settings (env or flags, see ../settings.ts), checked before anything connects. */
import { z } from 'zod';
import { describeIssues, rawSettings } from '../settings.js';
import { idSchema } from '../readings.js';

const KEYS = [
  'MQTT_URL',
  'MQTT_USERNAME',
  'MQTT_PASSWORD',
  'MQTT_CLIENT_ID',
  'SITES',
  'SENSORS_PER_SITE',
  'RATE_HZ',
  'SEED',
  'SPIKE_PROBABILITY',
  'DROPOUT_SENSOR',
  'DROPOUT_PERIOD_S',
  'DROPOUT_DURATION_S',
  'LIMIT',
] as const;

const mqttUrl = z
  .string()
  .refine((s) => URL.canParse(s) && /^(mqtt|mqtts|ws|wss):$/.test(new URL(s).protocol), 'expected an mqtt://, mqtts://, ws:// or wss:// URL');

export const emulatorConfigSchema = z
  .strictObject({
    MQTT_URL: mqttUrl.default('mqtt://127.0.0.1:1883'),
    MQTT_USERNAME: z.string().min(1).max(128),
    MQTT_PASSWORD: z.string().min(1).max(512),
    MQTT_CLIENT_ID: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('sensor-emulator'),
    SITES: z.coerce.number().int().min(1).max(100).default(3),
    SENSORS_PER_SITE: z.coerce.number().int().min(1).max(1000).default(4),
    /** Readings per second per sensor. */
    RATE_HZ: z.coerce.number().min(0.001).max(1000).default(1),
    SEED: z.coerce.number().int().min(0).max(2 ** 32 - 1).default(1),
    SPIKE_PROBABILITY: z.coerce.number().min(0).max(1).default(0.002),
    /** `<site>/<sensor>` that drops out now and then; `none` for none. The default is the last sensor of site-1. */
    DROPOUT_SENSOR: z.union([z.literal('none'), z.string().regex(/^[a-z0-9][a-z0-9_-]*\/[a-z0-9][a-z0-9_-]*$/)]).optional(),
    DROPOUT_PERIOD_S: z.coerce.number().min(1).max(86_400).default(300),
    DROPOUT_DURATION_S: z.coerce.number().min(0).max(86_400).default(60),
    /** Stop after publishing this many readings in total (tests, benchmarks); 0 runs until stopped. */
    LIMIT: z.coerce.number().int().min(0).default(0),
  })
  .refine((c) => c.DROPOUT_DURATION_S < c.DROPOUT_PERIOD_S, {
    message: 'DROPOUT_DURATION_S must be shorter than DROPOUT_PERIOD_S',
    path: ['DROPOUT_DURATION_S'],
  });

export type EmulatorConfig = z.infer<typeof emulatorConfigSchema>;

export function loadEmulatorConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): EmulatorConfig {
  const parsed = emulatorConfigSchema.safeParse(rawSettings(KEYS, env, argv));
  if (!parsed.success) throw new Error(`invalid sensor-emulator settings: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

export interface SensorSpec {
  site: string;
  sensor: string;
}

export function siteId(index: number): string {
  return idSchema.parse(`site-${index + 1}`);
}

export function sensorId(index: number): string {
  return `s${String(index + 1).padStart(2, '0')}`;
}

/** `<site>/<sensor>` of the sensor that drops out, or null. */
export function dropoutSensor(config: EmulatorConfig): string | null {
  if (config.DROPOUT_SENSOR === 'none') return null;
  return config.DROPOUT_SENSOR ?? `${siteId(0)}/${sensorId(config.SENSORS_PER_SITE - 1)}`;
}
