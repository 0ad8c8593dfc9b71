import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Long } from 'bson';
import { MongoClient, MongoServerError } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoAdmin, MongoBroker, type MongoAdmin } from '../../hub/credentials/mongodb.js';
import { newUserUid } from '../../hub/db/user-uid.js';
import { encodeMsg } from '../../datalab/mongo-gate/wire.js';
import { ferretdbAvailable, startFerretDb, type FerretDbServer } from '../helpers/ferretdb.js';
import { requireService } from '../helpers/jupyter.js';
import { bodyWithDuplicateDb, RawMongo, startMongoGate, type GateProcess } from '../helpers/mongo-gate.js';

/**
 * The mongo-gate in front of a real FerretDB 1.24, which authenticates leases but authorizes nothing: each lease
 * made by the hub's own broker (authorization: gate) reaches exactly its grant through the gate, whatever a client
 * puts on the wire, and a revoked lease's open connection is cut.
 */
const available = requireService('FerretDB (scripts/setup-credentials.sh)', ferretdbAvailable());
const NOTEBOOK_IMAGE = 'labhub/notebook-debian:latest';

interface Lease { account: string; password: string; database: string }

describe.runIf(available)('mongo-gate in front of FerretDB', () => {
  let ferret: FerretDbServer;
  let gate: GateProcess;
  let admin: MongoAdmin;
  let broker: MongoBroker;
  let a: Lease;
  let b: Lease;
  const clients: MongoClient[] = [];

  /** A lease as the hub issues it: the broker writes the grant and creates the FerretDB user. */
  async function lease(name: string): Promise<Lease> {
    const owner = { name, uid: newUserUid() };
    const plan = broker.plan(owner);
    const password = randomBytes(12).toString('hex');
    const policy = { mqtt: { subscribe: [], publish: [] }, postgres: { read_schemas: [], own_schema: false, connection_limit: 1 }, mongodb: { read_databases: ['sensors'], own_database: true } };
    await broker.issue({ ...plan, user: name, password, expiresAt: new Date(Date.now() + 3_600_000), policy });
    return { account: plan.account, password, database: (plan.revokeData as { database: string }).database };
  }

  const through = async (l: Lease, port = gate.port): Promise<MongoClient> => {
    const client = new MongoClient(`mongodb://${l.account}:${l.password}@127.0.0.1:${port}/?authSource=admin`, { serverSelectionTimeoutMS: 5000 });
    clients.push(client);
    await client.connect();
    return client;
  };
  const refusal = async (work: Promise<unknown>): Promise<string> => {
    const err = await work.then(() => null, (e: unknown) => e);
    expect(err, 'expected a refusal').toBeInstanceOf(MongoServerError);
    expect((err as MongoServerError).code).toBe(13);
    return (err as MongoServerError).message;
  };

  beforeAll(async () => {
    ferret = await startFerretDb();
    gate = await startMongoGate(ferret.adminUrl, 300);
    admin = mongoAdmin(ferret.adminUrl, 10_000);
    broker = new MongoBroker(admin, { connectUrl: gate.url, authorization: 'gate' });
    const root = new MongoClient(ferret.adminUrl);
    await root.db('sensors').collection('readings').insertMany([{ sensor: 't1', value: 20.5 }, { sensor: 't2', value: 21 }]);
    await root.close();
    [a, b] = await Promise.all([lease('ada'), lease('bob')]);
    const bob = await through(b);
    await bob.db(b.database).collection('notes').insertMany([{ text: 'B\'s note' }, { text: 'B\'s second' }, { text: 'B\'s third' }]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await admin?.close();
    await gate?.stop();
    await ferret?.stop();
  });

  it('lets a lease read the shared database and read and write its own, with the official driver', async () => {
    const ada = await through(a);
    await ada.db(a.database).collection('notes').insertOne({ text: 'A\'s note' });
    expect(await ada.db(a.database).collection('notes').countDocuments()).toBe(1);
    expect(await ada.db('sensors').collection('readings').find({}, { batchSize: 1 }).toArray()).toHaveLength(2);
    const listed = await ada.db('admin').admin().listDatabases();
    expect(listed.databases.map((d) => d.name).sort()).toEqual([a.database, 'sensors'].sort());
  });

  it('refuses another lease\'s database, writes to the shared one and the system databases', async () => {
    const ada = await through(a);
    expect(await refusal(ada.db(b.database).collection('notes').find().toArray())).toMatch(`not authorized on ${b.database}`);
    await refusal(ada.db(b.database).collection('notes').insertOne({ text: 'from A' }));
    await refusal(ada.db('sensors').collection('readings').insertOne({ sensor: 'fake' }));
    await refusal(ada.db('sensors').collection('readings').deleteMany({}));
    await refusal(ada.db('admin').collection('system.users').find().toArray());
    await refusal(ada.db('labhub_gate').collection('grants').find().toArray());
    await refusal(ada.db('labhub_gate').collection('grants').updateOne({ _id: a.account as never }, { $set: { write: [b.database] } }));
    await refusal(ada.db(a.database).dropDatabase());
    await refusal(ada.db('admin').command({ dropUser: b.account }));
    await refusal(ada.db('admin').command({ createUser: 'mine', pwd: 'x', roles: [] }));
    await refusal(ada.db('admin').command({ renameCollection: `${a.database}.notes`, to: `${b.database}.stolen` }));
    await refusal(ada.db(b.database).command({ explain: { find: 'notes' } }));
    const bobNotes = await (await through(b)).db(b.database).collection('notes').countDocuments();
    expect(bobNotes).toBe(3);
  });

  it('refuses pipelines that reach or write another database', async () => {
    const ada = await through(a);
    const notes = ada.db(a.database).collection('notes');
    await refusal(notes.aggregate([{ $lookup: { from: { db: b.database, coll: 'notes' }, localField: 'x', foreignField: 'x', as: 'y' } } as never]).toArray());
    await refusal(notes.aggregate([{ $out: { db: b.database, coll: 'planted' } }]).toArray());
    await refusal(notes.aggregate([{ $merge: { into: { db: b.database, coll: 'planted' } } }]).toArray());
    await refusal(notes.aggregate([{ $unionWith: { coll: 'notes', pipeline: [{ $out: { db: b.database, coll: 'x' } }] } }]).toArray());
    await refusal(notes.aggregate([{ $facet: { x: [{ $lookup: { from: { db: b.database, coll: 'notes' }, pipeline: [], as: 'y' } }] } } as never]).toArray());
    await refusal(ada.db('admin').aggregate([{ $currentOp: {} }]).toArray());
    await refusal(ada.db('sensors').collection('readings').aggregate([{ $out: 'copied' }]).toArray());
    expect(await notes.aggregate([{ $match: {} }, { $count: 'n' }]).toArray()).toEqual([{ n: 1 }]);
  });

  it('holds against messages no driver sends: stray sections, a key twice, foreign cursors, other opcodes, other mechanisms', async () => {
    const raw = await RawMongo.open(gate.port);
    expect(await raw.command({ find: 'notes', $db: b.database })).toMatchObject({ ok: 0, code: 13, errmsg: expect.stringMatching(/requires authentication/) });
    await raw.login(a.account, a.password);
    expect(await raw.command({ find: 'notes', $db: a.database })).toMatchObject({ ok: 1 });

    // A document sequence named `$db` would be merged into the command by the server after the gate had checked it.
    const stray = await raw.command({ find: 'notes', $db: a.database }, [{ identifier: '$db', documents: Buffer.alloc(0) }]);
    expect(stray).toMatchObject({ ok: 0, code: 13 });
    // `$db` twice: whichever value the gate keeps is the only one the server sees.
    for (const [first, second] of [[a.database, b.database], [b.database, a.database]] as const) {
      const reply = await raw.commandBytes(bodyWithDuplicateDb({ find: 'notes' }, first, second));
      const batch = ((reply?.cursor as { firstBatch?: Array<{ text: string }> } | undefined)?.firstBatch ?? []).map((d) => d.text);
      expect(batch.some((t) => t.startsWith('B\'s')), `read B's notes with $db ${first} then ${second}`).toBe(false);
    }

    // B's open cursor, continued or killed from A's connection.
    const bobRaw = await RawMongo.open(gate.port);
    await bobRaw.login(b.account, b.password);
    const opened = await bobRaw.command({ find: 'notes', batchSize: 1, $db: b.database });
    const cursorId = (opened?.cursor as { id: Long }).id;
    expect(cursorId.isZero()).toBe(false);
    expect(await raw.command({ getMore: cursorId, collection: 'notes', $db: b.database })).toMatchObject({ ok: 0, code: 13 });
    expect(await raw.command({ getMore: cursorId, collection: 'notes', $db: a.database })).toMatchObject({ ok: 0, code: 13 });
    expect(await raw.command({ killCursors: 'notes', cursors: [cursorId], $db: b.database })).toMatchObject({ ok: 0, code: 13 });
    expect(await bobRaw.command({ getMore: cursorId, collection: 'notes', batchSize: 5, $db: b.database })).toMatchObject({ ok: 1 });
    bobRaw.close();

    expect(await raw.command({ saslStart: 1, mechanism: 'SCRAM-SHA-256', payload: Buffer.from('n,,n=x,r=y'), $db: 'admin' }))
      .toMatchObject({ ok: 0, errmsg: expect.stringMatching(/already authenticated/) });
    // A login as A may not be swapped for B's name half-way: one conversation, continued under its own id.
    const swap = await RawMongo.open(gate.port);
    const started = await swap.command({ saslStart: 1, mechanism: 'SCRAM-SHA-256', payload: Buffer.from(`n,,n=${a.account},r=abcdefgh`), $db: 'admin' });
    expect(started).toMatchObject({ ok: 1 });
    expect(await swap.command({ saslStart: 1, mechanism: 'SCRAM-SHA-256', payload: Buffer.from(`n,,n=${b.account},r=abcdefgh`), $db: 'admin' }))
      .toMatchObject({ ok: 0, errmsg: expect.stringMatching(/already in progress/) });
    expect(await swap.command({ saslContinue: 1, conversationId: Number(started!.conversationId) + 1, payload: Buffer.from('c=biws'), $db: 'admin' }))
      .toMatchObject({ ok: 0, errmsg: expect.stringMatching(/not the authentication in progress/) });
    swap.close();
    const plain = await RawMongo.open(gate.port);
    expect(await plain.command({ saslStart: 1, mechanism: 'PLAIN', payload: Buffer.from(`\0${a.account}\0${a.password}`), $db: 'admin' }))
      .toMatchObject({ ok: 0, code: 13 });
    plain.close();

    // OP_COMPRESSED (and any opcode but OP_MSG and the handshake's OP_QUERY) ends the connection.
    const compressed = encodeMsg(99, 0, { flags: 0, body: { find: 'notes', $db: b.database }, sequences: [] });
    compressed.writeInt32LE(2012, 12);
    expect(await raw.sendRaw(compressed, 99)).toBeNull();
    expect(raw.closed).toBe(true);
  });

  it('cuts a revoked lease\'s open connection at its next command, and refuses new logins', async () => {
    const carol = await lease('carol');
    const client = await through(carol);
    await client.db(carol.database).collection('notes').insertOne({ text: 'before' });
    await broker.revoke({ account: carol.account, revokeData: { database: carol.database } });
    await new Promise((r) => setTimeout(r, 400));
    await expect(client.db(carol.database).collection('notes').find().toArray()).rejects.toThrow();
    await expect(through(carol)).rejects.toThrow(/Authentication failed|auth/i);
    expect(gate.output()).toMatch(/the lease was revoked/);
  });

  it('logs no password and no SCRAM payload', () => {
    for (const l of [a, b]) expect(gate.output()).not.toContain(l.password);
    expect(gate.output()).not.toMatch(/n,,n=|c=biws/);
  });

  it('shows why it exists: FerretDB on its own lets one lease read another\'s database', async () => {
    const direct = await through(a, ferret.port);
    expect(await direct.db(b.database).collection('notes').countDocuments()).toBe(3);
  });

  const imagePresent = (() => {
    try {
      execFileSync('docker', ['image', 'inspect', NOTEBOOK_IMAGE], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  it.runIf(requireService(NOTEBOOK_IMAGE, imagePresent))('works for pymongo in the notebook image, refusing the same', async () => {
    const script = [
      'import pymongo, sys',
      `c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)`,
      `print(c["${a.database}"].notes.count_documents({}), len(list(c.sensors.readings.find())))`,
      'try:',
      `    list(c["${b.database}"].notes.find()); print("read B")`,
      'except pymongo.errors.OperationFailure as e:',
      '    print("refused", e.code)',
    ].join('\n');
    const url = `mongodb://${a.account}:${a.password}@127.0.0.1:${gate.port}/?authSource=admin`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile('docker', ['run', '--rm', '--network', 'host', NOTEBOOK_IMAGE, 'python3', '-c', script, url], { timeout: 60_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    });
    expect(out.trim().split('\n')).toEqual(['1 2', 'refused 13']);
  }, 90_000);
});
