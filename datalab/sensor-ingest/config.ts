/** The ingester's settings (env or flags, see ../settings.ts), checked before anything connects. */
import { z } from 'zod';
import { describeIssues, rawSettings } from '../settings.js';
import { DEAD_LETTER_TOPIC } from '../mqtt-accounts.js';

const KEYS = [
  'MQTT_URL',
  'MQTT_USERNAME',
  'MQTT_PASSWORD',
  'MQTT_CLIENT_ID',
  'DEAD_LETTER_TOPIC',
  'POSTGRES_URL',
  'MONGODB_URL',
  'MONGODB_DATABASE',
  'BUFFER_SIZE',
  'BATCH_SIZE',
  'FLUSH_INTERVAL_MS',
  'SEEN_RETENTION_HOURS',
  'HTTP_HOST',
  'HTTP_PORT',
] as const;

const urlWith = (protocols: RegExp, what: string) =>
  z.string().refine((s) => URL.canParse(s) && protocols.test(new URL(s).protocol), `expected ${what}`);

export const ingestConfigSchema = z
  .strictObject({
    MQTT_URL: urlWith(/^(mqtt|mqtts|ws|wss):$/, 'an mqtt://, mqtts://, ws:// or wss:// URL').default('mqtt://127.0.0.1:1883'),
    MQTT_USERNAME: z.string().min(1).max(128),
    MQTT_PASSWORD: z.string().min(1).max(512),
    /** Fixed, so the broker keeps this ingester's session (and queues its messages) while it is away. */
    MQTT_CLIENT_ID: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('sensor-ingest'),
    DEAD_LETTER_TOPIC: z.string().regex(/^[^#+]{1,200}$/, 'expected a topic without wildcards').default(DEAD_LETTER_TOPIC),
    POSTGRES_URL: urlWith(/^postgres(ql)?:$/, 'a postgres:// URL'),
    /** Optional: without it raw readings are not kept, only the per-minute aggregates. */
    MONGODB_URL: urlWith(/^mongodb(\+srv)?:$/, 'a mongodb:// URL').optional(),
    MONGODB_DATABASE: z.string().regex(/^[A-Za-z0-9_-]{1,63}$/).default('sensors'),
    /** Readings held in memory at most; when full, the ingester stops reading from the broker, which queues. */
    BUFFER_SIZE: z.coerce.number().int().min(1).max(1_000_000).default(20_000),
    BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
    FLUSH_INTERVAL_MS: z.coerce.number().int().min(1).max(60_000).default(100),
    /** How long reading keys are remembered in PostgreSQL to recognise a second delivery. */
    SEEN_RETENTION_HOURS: z.coerce.number().min(1).max(24 * 365).default(72),
    HTTP_HOST: z.string().min(1).default('0.0.0.0'),
    /** Port of /metrics and /healthz; 0 picks a free one. */
    HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  })
  .refine((c) => c.BATCH_SIZE <= c.BUFFER_SIZE, { message: 'BATCH_SIZE must not exceed BUFFER_SIZE', path: ['BATCH_SIZE'] });

export type IngestConfig = z.infer<typeof ingestConfigSchema>;

export function loadIngestConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): IngestConfig {
  const parsed = ingestConfigSchema.safeParse(rawSettings(KEYS, env, argv));
  if (!parsed.success) throw new Error(`invalid sensor-ingest settings: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}
