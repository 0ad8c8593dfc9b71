/**
 * Raw readings in a MongoDB time-series collection (`readings`: timeField `ts`, metaField `meta`).
 *
 * Idempotence: time-series collections take no unique index, so each document gets a deterministic `_id`
 * (site/sensor/instant), the batch skips ids already stored, and a duplicate-key error (servers that do enforce
 * `_id`, such as a regular collection) counts as "already there". One ingester writes a collection at a time,
 * so the check-then-insert does not race.
 */
import { MongoBulkWriteError, MongoClient, MongoServerError, type Collection } from 'mongodb';
import { readingKey, type Reading } from '../readings.js';
import { distinctReadings, type ReadingSink } from './sink.js';

export interface ReadingDocument {
  _id: string;
  ts: Date;
  meta: { site: string; sensor: string; kind: string; unit: string };
  value: number;
  seq: number;
}

export const COLLECTION = 'readings';
const NAMESPACE_EXISTS = 48;
const DUPLICATE_KEY = 11000;
const NOT_IMPLEMENTED = 238;

export function toDocument(r: Reading): ReadingDocument {
  return {
    _id: readingKey(r),
    ts: new Date(r.ts),
    meta: { site: r.site, sensor: r.sensor, kind: r.kind, unit: r.unit },
    value: r.value,
    seq: r.seq,
  };
}

/** Inserts the documents not yet in `collection`; returns how many were new. */
export async function insertNew(collection: Collection<ReadingDocument>, docs: ReadingDocument[]): Promise<number> {
  if (docs.length === 0) return 0;
  const times = docs.map((d) => d.ts.getTime());
  const existing = await collection
    .find(
      { _id: { $in: docs.map((d) => d._id) }, ts: { $gte: new Date(Math.min(...times)), $lte: new Date(Math.max(...times)) } },
      { projection: { _id: 1 } },
    )
    .toArray();
  const known = new Set(existing.map((d) => d._id));
  const fresh = docs.filter((d) => !known.has(d._id));
  if (fresh.length === 0) return 0;
  try {
    return (await collection.insertMany(fresh, { ordered: false })).insertedCount;
  } catch (err) {
    if (err instanceof MongoBulkWriteError) {
      const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
      if (errors.every((e) => e.code === DUPLICATE_KEY)) return err.insertedCount;
    }
    throw err;
  }
}

export class MongoSink implements ReadingSink {
  readonly name = 'mongodb';
  private readonly client: MongoClient;

  constructor(
    url: string,
    private readonly database: string,
  ) {
    this.client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
  }

  private get collection(): Collection<ReadingDocument> {
    return this.client.db(this.database).collection<ReadingDocument>(COLLECTION);
  }

  /** False when the server has no time-series collections (FerretDB 1.x) and readings went to a regular one. */
  timeSeries = true;

  async prepare(): Promise<void> {
    const db = this.client.db(this.database);
    try {
      await db.createCollection(COLLECTION, { timeseries: { timeField: 'ts', metaField: 'meta', granularity: 'seconds' } });
    } catch (err) {
      if (err instanceof MongoServerError && err.code === NAMESPACE_EXISTS) return;
      if (!(err instanceof MongoServerError && err.code === NOT_IMPLEMENTED)) throw err;
      // A MongoDB-wire server without time series still stores every reading once: `_id` is unique there.
      this.timeSeries = false;
      await db.createCollection(COLLECTION).catch((e: unknown) => {
        if (!(e instanceof MongoServerError && e.code === NAMESPACE_EXISTS)) throw e;
      });
      await db.collection(COLLECTION).createIndex({ 'meta.site': 1, 'meta.sensor': 1, ts: 1 });
    }
  }

  async write(readings: readonly Reading[]): Promise<number> {
    return insertNew(this.collection, distinctReadings(readings).map(toDocument));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
