/**
 * Per-minute aggregates in PostgreSQL: `shared.sensor_minute` (count, sum, min, max, and mean computed from
 * them), readable by the group role `lab_reader` that users' per-session roles belong to.
 *
 * Idempotence: every reading's key goes into `ingest.readings_seen` in the same statement that updates the
 * aggregates, and only keys that were not there yet count. A redelivered reading, or a whole batch retried after
 * a lost commit acknowledgement, therefore changes nothing. Keys older than the retention are pruned.
 */
import pg from 'pg';
import type { Reading } from '../readings.js';
import { distinctReadings, type ReadingSink } from './sink.js';

/** Serialises concurrent `prepare()`s of several ingesters: CREATE … IF NOT EXISTS can race otherwise. */
const SCHEMA_LOCK = 0x1ab5e9;

export const SCHEMA_SQL = `
CREATE SCHEMA IF NOT EXISTS shared;
CREATE SCHEMA IF NOT EXISTS ingest;
CREATE TABLE IF NOT EXISTS shared.sensor_minute (
  site    text NOT NULL,
  sensor  text NOT NULL,
  kind    text NOT NULL,
  unit    text NOT NULL,
  minute  timestamptz NOT NULL,
  count   bigint NOT NULL,
  sum     double precision NOT NULL,
  min     double precision NOT NULL,
  max     double precision NOT NULL,
  mean    double precision GENERATED ALWAYS AS (sum / count) STORED,
  PRIMARY KEY (site, sensor, minute)
);
CREATE INDEX IF NOT EXISTS sensor_minute_minute ON shared.sensor_minute (minute);
CREATE TABLE IF NOT EXISTS ingest.readings_seen (
  site   text NOT NULL,
  sensor text NOT NULL,
  ts     timestamptz NOT NULL,
  PRIMARY KEY (site, sensor, ts)
);
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lab_reader') THEN CREATE ROLE lab_reader NOLOGIN; END IF;
END $$;
GRANT USAGE ON SCHEMA shared TO lab_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA shared TO lab_reader;
`;

const WRITE_SQL = `
WITH incoming AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::float8[])
    AS t(site, sensor, kind, unit, ts, value)
), fresh AS (
  INSERT INTO ingest.readings_seen (site, sensor, ts) SELECT site, sensor, ts FROM incoming
  ON CONFLICT DO NOTHING
  RETURNING site, sensor, ts
), buckets AS (
  SELECT i.site, i.sensor, min(i.kind) AS kind, min(i.unit) AS unit, date_trunc('minute', i.ts) AS minute,
         count(*) AS count, sum(i.value) AS sum, min(i.value) AS min, max(i.value) AS max
  FROM incoming i JOIN fresh f USING (site, sensor, ts)
  GROUP BY i.site, i.sensor, date_trunc('minute', i.ts)
), upserted AS (
  INSERT INTO shared.sensor_minute AS m (site, sensor, kind, unit, minute, count, sum, min, max)
  SELECT site, sensor, kind, unit, minute, count, sum, min, max FROM buckets
  ON CONFLICT (site, sensor, minute) DO UPDATE SET
    count = m.count + excluded.count,
    sum = m.sum + excluded.sum,
    min = least(m.min, excluded.min),
    max = greatest(m.max, excluded.max)
  RETURNING 1
)
SELECT (SELECT count(*) FROM fresh)::int AS fresh, (SELECT count(*) FROM upserted)::int AS buckets`;

export class PostgresSink implements ReadingSink {
  readonly name = 'postgres';
  private readonly pool: pg.Pool;

  constructor(
    url: string,
    private readonly retentionHours: number,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 });
    // An idle client losing its server (a database restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  async prepare(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      await client.query(SCHEMA_SQL);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async write(readings: readonly Reading[]): Promise<number> {
    const rows = distinctReadings(readings);
    if (rows.length === 0) return 0;
    const result = await this.pool.query<{ fresh: number }>(WRITE_SQL, [
      rows.map((r) => r.site),
      rows.map((r) => r.sensor),
      rows.map((r) => r.kind),
      rows.map((r) => r.unit),
      rows.map((r) => r.ts),
      rows.map((r) => r.value),
    ]);
    return result.rows[0]?.fresh ?? 0;
  }

  /** Forgets reading keys older than the retention; a reading redelivered after that would count again. */
  async prune(): Promise<number> {
    const result = await this.pool.query(`DELETE FROM ingest.readings_seen WHERE ts < now() - make_interval(hours => $1)`, [
      this.retentionHours,
    ]);
    return result.rowCount ?? 0;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
