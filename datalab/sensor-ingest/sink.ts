import { readingKey, type Reading } from '../readings.js';

/** A store for readings whose writes are idempotent: writing a reading twice stores it once. */
export interface ReadingSink {
  readonly name: 'postgres' | 'mongodb';
  /** Creates what the sink needs (schema, tables, collection); safe to run on every start. */
  prepare(): Promise<void>;
  /** Stores the readings; returns how many were new. */
  write(readings: readonly Reading[]): Promise<number>;
  close(): Promise<void>;
}

/** The readings with each (site, sensor, instant) once, first delivery kept. */
export function distinctReadings(readings: readonly Reading[]): Reading[] {
  const seen = new Set<string>();
  const out: Reading[] = [];
  for (const r of readings) {
    const key = readingKey(r);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out;
}
