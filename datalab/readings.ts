/**
 * The one message format of the DataLab: a sensor reading, published as JSON on `sensors/<site>/<sensor>`.
 * The emulator builds readings with it and the ingester validates every message against it, so the two can
 * never drift apart.
 */
import { z } from 'zod';

/** One MQTT topic level: no wildcards or separators, and short enough for a database key. */
export const idSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected lower-case letters, digits, _ or -');

export const KINDS = ['temperature', 'humidity', 'air_quality'] as const;
export type Kind = (typeof KINDS)[number];

export const UNITS: Record<Kind, string> = { temperature: 'degC', humidity: 'percent', air_quality: 'ug/m3' };

export const readingSchema = z.strictObject({
  site: idSchema,
  sensor: idSchema,
  kind: z.enum(KINDS),
  unit: z.string().min(1).max(16),
  /** When the sensor measured, ISO 8601 with milliseconds; together with site and sensor it identifies the reading. */
  ts: z.iso.datetime({ offset: true }),
  value: z.number().finite(),
  /** Per-sensor counter since the emulator started: lets a reader see gaps. */
  seq: z.number().int().nonnegative(),
});
export type Reading = z.infer<typeof readingSchema>;

export const TOPIC_ROOT = 'sensors';

export function topicFor(site: string, sensor: string): string {
  return `${TOPIC_ROOT}/${site}/${sensor}`;
}

export type ParsedReading = { ok: true; reading: Reading } | { ok: false; reason: string };

/** Validates a message: JSON, the schema, and a topic that names the same site and sensor as the payload. */
export function parseReading(topic: string, payload: Buffer | string): ParsedReading {
  const levels = topic.split('/');
  if (levels.length !== 3 || levels[0] !== TOPIC_ROOT) return { ok: false, reason: 'topic' };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString());
  } catch {
    return { ok: false, reason: 'json' };
  }
  const parsed = readingSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: 'schema' };
  if (parsed.data.site !== levels[1] || parsed.data.sensor !== levels[2]) return { ok: false, reason: 'topic' };
  return { ok: true, reading: parsed.data };
}

/** The key that makes a reading unique: a second delivery of the same reading has the same key. */
export function readingKey(r: Pick<Reading, 'site' | 'sensor' | 'ts'>): string {
  return `${r.site}/${r.sensor}/${new Date(r.ts).toISOString()}`;
}
