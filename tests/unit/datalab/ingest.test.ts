import { describe, expect, it } from 'vitest';
import type { Collection } from 'mongodb';
import { BoundedBuffer } from '../../../datalab/sensor-ingest/buffer.js';
import { loadIngestConfig } from '../../../datalab/sensor-ingest/config.js';
import { insertNew, toDocument, type ReadingDocument } from '../../../datalab/sensor-ingest/mongo-sink.js';
import { distinctReadings } from '../../../datalab/sensor-ingest/sink.js';
import { accountCommands, emulatorAccount, ingesterAccount } from '../../../datalab/mqtt-accounts.js';
import type { Reading } from '../../../datalab/readings.js';

const reading = (sensor: string, ts: string, value = 1): Reading => ({
  site: 'site-1',
  sensor,
  kind: 'temperature',
  unit: 'degC',
  ts,
  value,
  seq: 0,
});

describe('BoundedBuffer', () => {
  it('makes a producer wait while full and lets it in when written items are dropped', async () => {
    const buffer = new BoundedBuffer<number>(2);
    await buffer.push(1);
    await buffer.push(2);
    let third = false;
    const pending = buffer.push(3).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(third).toBe(false);
    expect(buffer.peek(5)).toEqual([1, 2]);
    buffer.drop(1);
    await pending;
    expect(buffer.peek(5)).toEqual([2, 3]);
  });

  it('waits for a full batch or the flush interval, whichever first', async () => {
    const buffer = new BoundedBuffer<number>(10);
    const t0 = Date.now();
    await buffer.waitFor(3, 30);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    const waiting = buffer.waitFor(2, 5000);
    await buffer.push(1);
    await buffer.push(2);
    await waiting;
    expect(buffer.size).toBe(2);
  });
});

describe('idempotent writes', () => {
  it('keeps each (site, sensor, instant) once, whatever the offset notation', () => {
    const rs = [reading('s01', '2026-01-01T00:00:00.000Z', 1), reading('s01', '2026-01-01T01:00:00.000+01:00', 2), reading('s02', '2026-01-01T00:00:00.000Z')];
    expect(distinctReadings(rs).map((r) => [r.sensor, r.value])).toEqual([
      ['s01', 1],
      ['s02', 1],
    ]);
  });

  it('inserts into MongoDB only the documents not stored yet, and treats duplicate-key errors as stored', async () => {
    const stored = new Map<string, ReadingDocument>([['site-1/s01/2026-01-01T00:00:00.000Z', toDocument(reading('s01', '2026-01-01T00:00:00.000Z'))]]);
    const inserted: string[] = [];
    const fake = {
      find: (filter: { _id: { $in: string[] } }) => ({
        toArray: async () => filter._id.$in.filter((id) => stored.has(id)).map((_id) => ({ _id })),
      }),
      insertMany: async (docs: ReadingDocument[]) => {
        inserted.push(...docs.map((d) => d._id));
        return { insertedCount: docs.length };
      },
    } as unknown as Collection<ReadingDocument>;
    const docs = [reading('s01', '2026-01-01T00:00:00.000Z'), reading('s02', '2026-01-01T00:00:00.000Z')].map(toDocument);
    expect(await insertNew(fake, docs)).toBe(1);
    expect(inserted).toEqual(['site-1/s02/2026-01-01T00:00:00.000Z']);
    expect(docs[1]).toMatchObject({ ts: new Date('2026-01-01T00:00:00.000Z'), meta: { site: 'site-1', sensor: 's02', kind: 'temperature' } });
  });
});

describe('sensor-ingest settings', () => {
  const base = { MQTT_USERNAME: 'ingest', MQTT_PASSWORD: 'pw', POSTGRES_URL: 'postgres://u@db/lab' };

  it('has safe defaults and takes flags', () => {
    const c = loadIngestConfig(base, ['--batch-size', '100']);
    expect(c).toMatchObject({ MQTT_CLIENT_ID: 'sensor-ingest', BATCH_SIZE: 100, BUFFER_SIZE: 20_000, DEAD_LETTER_TOPIC: 'deadletter/sensors' });
    expect(c.MONGODB_URL).toBeUndefined();
  });

  it('rejects a batch larger than the buffer, bad URLs and wildcard dead-letter topics', () => {
    expect(() => loadIngestConfig({ ...base, BUFFER_SIZE: '10', BATCH_SIZE: '20' }, [])).toThrow(/BATCH_SIZE/);
    expect(() => loadIngestConfig({ ...base, POSTGRES_URL: 'mysql://x' }, [])).toThrow(/POSTGRES_URL/);
    expect(() => loadIngestConfig({ ...base, MONGODB_URL: 'http://x' }, [])).toThrow(/MONGODB_URL/);
    expect(() => loadIngestConfig({ ...base, DEAD_LETTER_TOPIC: 'dead/#' }, [])).toThrow(/DEAD_LETTER_TOPIC/);
  });
});

describe('service accounts', () => {
  it('gives the emulator publish on sensors/# only and the ingester subscribe plus the dead-letter topic', () => {
    const emu = accountCommands(emulatorAccount('e', 'p'));
    expect(emu.map((c) => c.command)).toEqual(['deleteClient', 'deleteRole', 'createRole', 'createClient']);
    expect(emu[2]).toMatchObject({ acls: [{ acltype: 'publishClientSend', topic: 'sensors/#', allow: true }] });
    expect(accountCommands(ingesterAccount('i', 'p'))[2]).toMatchObject({
      acls: [
        { acltype: 'subscribePattern', topic: 'sensors/#' },
        { acltype: 'publishClientSend', topic: 'deadletter/sensors' },
      ],
    });
  });
});
