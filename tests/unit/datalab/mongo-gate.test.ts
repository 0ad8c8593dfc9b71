import { Binary, Long } from 'bson';
import { describe, expect, it } from 'vitest';
import { backendAddress, loadGateConfig } from '../../../datalab/mongo-gate/config.js';
import { scramUser } from '../../../datalab/mongo-gate/gate.js';
import { parseGrant } from '../../../datalab/mongo-gate/grants.js';
import { authorize, type Session } from '../../../datalab/mongo-gate/policy.js';
import { encodeMsg, FrameReader, parseMsg, WireError } from '../../../datalab/mongo-gate/wire.js';

const session: Session = {
  user: 'labhub-ada-1',
  grants: { read: new Set(['sensors']), write: new Set(['home_ada']) },
  ownsCursor: (id) => id === '77',
};
const run = (body: Record<string, unknown>, s: Session = session, sequences: Array<{ identifier: string; documents: Buffer }> = []) =>
  authorize({ body, sequences }, s);

describe('mongo-gate policy', () => {
  it.each([
    [{ find: 'readings', $db: 'sensors' }],
    [{ find: 'notes', $db: 'home_ada' }],
    [{ insert: 'notes', $db: 'home_ada' }],
    [{ aggregate: 'notes', pipeline: [{ $match: {} }, { $lookup: { from: 'other', localField: 'a', foreignField: 'b', as: 'c' } }], cursor: {}, $db: 'home_ada' }],
    [{ aggregate: 'readings', pipeline: [{ $group: { _id: '$sensor' } }, { $out: { db: 'home_ada', coll: 'copy' } }], cursor: {}, $db: 'sensors' }],
    [{ getMore: Long.fromNumber(77), collection: 'notes', $db: 'home_ada' }],
    [{ explain: { find: 'readings' }, $db: 'sensors' }],
    [{ renameCollection: 'home_ada.a', to: 'home_ada.b', $db: 'admin' }],
    [{ listDatabases: 1, $db: 'admin' }],
    [{ hello: 1, $db: 'admin' }],
  ])('allows %j', (body) => {
    expect(run(body)).toEqual({ ok: true });
  });

  it.each([
    [{ find: 'notes', $db: 'home_bob' }, /not authorized on home_bob/],
    [{ insert: 'readings', $db: 'sensors' }, /not authorized on sensors/],
    [{ find: 'system.users', $db: 'admin' }, /not authorized on admin/],
    [{ find: 'grants', $db: 'labhub_gate' }, /not authorized on labhub_gate/],
    [{ dropDatabase: 1, $db: 'home_ada' }, /not allowed/],
    [{ createUser: 'x', pwd: 'y', roles: [], $db: 'admin' }, /not allowed/],
    [{ find: 1, $db: 'home_ada' }, /must name a collection/],
    [{ find: 'notes' }, /\$db/],
    [{ aggregate: 1, pipeline: [{ $currentOp: {} }], cursor: {}, $db: 'admin' }, /must name a collection/],
    [{ aggregate: 'n', pipeline: [{ $currentOp: {} }], cursor: {}, $db: 'home_ada' }, /\$currentOp is not allowed/],
    [{ aggregate: 'n', pipeline: [{ $match: {}, $out: 'x' }], cursor: {}, $db: 'home_ada' }, /exactly one field/],
    [{ aggregate: 'readings', pipeline: [{ $out: 'copy' }], cursor: {}, $db: 'sensors' }, /not authorized on sensors/],
    [{ aggregate: 'n', pipeline: [{ $merge: { into: { db: 'home_bob', coll: 'x' } } }], cursor: {}, $db: 'home_ada' }, /home_bob/],
    [{ aggregate: 'n', pipeline: [{ $lookup: { from: { db: 'home_bob', coll: 'x' }, as: 'y', pipeline: [] } }], cursor: {}, $db: 'home_ada' }, /same|this database/],
    [{ aggregate: 'n', pipeline: [{ $facet: { a: [{ $unionWith: { coll: 'x', pipeline: [{ $out: { db: 'home_bob', coll: 'y' } }] } }] } }], cursor: {}, $db: 'home_ada' }, /home_bob/],
    [{ create: 'v', viewOn: 'notes', pipeline: [{ $out: 'x' }], $db: 'home_ada' }, /a view may not write/],
    [{ getMore: Long.fromNumber(78), collection: 'notes', $db: 'home_ada' }, /cursor not found/],
    [{ killCursors: 'notes', cursors: [Long.fromNumber(77), Long.fromNumber(78)], $db: 'home_ada' }, /cursor not found/],
    [{ explain: { find: 'notes' }, $db: 'home_bob' }, /home_bob/],
    [{ explain: { find: 'notes', $db: 'home_bob' }, $db: 'home_ada' }, /its own database/],
    [{ explain: { getMore: Long.fromNumber(77), collection: 'notes' }, $db: 'home_ada' }, /cursor not found/],
    [{ explain: { hello: 1 }, $db: 'home_ada' }, /not allowed/],
    [{ renameCollection: 'home_ada.a', to: 'home_bob.b', $db: 'admin' }, /another database/],
    [{ renameCollection: 'home_bob.a', to: 'home_bob.b', $db: 'admin' }, /not authorized on home_bob/],
    [{ listDatabases: 1, $db: 'home_ada' }, /runs on admin/],
  ])('refuses %j', (body, reason) => {
    const verdict = run(body);
    expect(verdict.ok).toBe(false);
    expect(!verdict.ok && verdict.reason).toMatch(reason);
  });

  it('refuses all but the handshake before authentication, and everything without a grant', () => {
    const anonymous: Session = { ownsCursor: () => false };
    expect(run({ hello: 1, $db: 'admin' }, anonymous)).toEqual({ ok: true });
    expect(run({ find: 'readings', $db: 'sensors' }, anonymous)).toMatchObject({ ok: false, reason: expect.stringMatching(/requires authentication/) });
    expect(run({ find: 'readings', $db: 'sensors' }, { user: 'x', ownsCursor: () => false })).toMatchObject({ ok: false });
  });

  it('takes only the document sequence a write command defines, and never one that repeats a field', () => {
    const docs = { identifier: 'documents', documents: Buffer.alloc(0) };
    expect(run({ insert: 'notes', $db: 'home_ada' }, session, [docs])).toEqual({ ok: true });
    expect(run({ find: 'notes', $db: 'home_ada' }, session, [{ identifier: '$db', documents: Buffer.alloc(0) }]).ok).toBe(false);
    expect(run({ insert: 'notes', $db: 'home_ada' }, session, [{ identifier: 'updates', documents: Buffer.alloc(0) }]).ok).toBe(false);
    expect(run({ insert: 'notes', documents: [], $db: 'home_ada' }, session, [docs]).ok).toBe(false);
  });
});

describe('mongo-gate wire and settings', () => {
  it('reassembles messages split anywhere and refuses impossible lengths', () => {
    const a = encodeMsg(1, 0, { flags: 0, body: { ping: 1, $db: 'admin' }, sequences: [] });
    const b = encodeMsg(2, 0, { flags: 0, body: { insert: 'n', $db: 'x' }, sequences: [{ identifier: 'documents', documents: Buffer.from([5, 0, 0, 0, 0]) }] });
    const reader = new FrameReader();
    const both = Buffer.concat([a, b]);
    const frames = [...reader.push(both.subarray(0, 7)), ...reader.push(both.subarray(7, a.length + 3)), ...reader.push(both.subarray(a.length + 3))];
    expect(frames.map((f) => f.requestId)).toEqual([1, 2]);
    expect(parseMsg(frames[1]!).sequences).toEqual([{ identifier: 'documents', documents: Buffer.from([5, 0, 0, 0, 0]) }]);
    const huge = Buffer.alloc(16);
    huge.writeInt32LE(64 * 1024 * 1024, 0);
    expect(() => new FrameReader().push(huge)).toThrow(WireError);
    const truncated = Buffer.from(a);
    truncated.writeInt32LE(40, 21);
    expect(() => parseMsg({ requestId: 1, responseTo: 0, opCode: 2013, bytes: truncated })).toThrow(WireError);
  });

  it('reads the SCRAM user name only when it is plain', () => {
    const payload = (s: string) => new Binary(Buffer.from(s));
    expect(scramUser(payload('n,,n=labhub-ada-x2,r=abc'))).toBe('labhub-ada-x2');
    expect(scramUser(payload('n,,n=a=2Cb,r=abc'))).toBeUndefined();
    expect(scramUser(payload('n,a=admin,n=ada,r=abc'))).toBeUndefined();
    expect(scramUser('n,,n=ada,r=abc')).toBeUndefined();
  });

  it('treats a malformed grant as no grant', () => {
    expect(parseGrant({ _id: 'x', read: ['sensors'], write: [] })).toEqual({ read: new Set(['sensors']), write: new Set() });
    expect(parseGrant({ read: ['sensors'] })).toBeNull();
    expect(parseGrant({ read: ['a.b'], write: [] })).toBeNull();
    expect(parseGrant(null)).toBeNull();
  });

  it('checks its settings without echoing them', () => {
    expect(loadGateConfig({ MONGODB_URL: 'mongodb://u:p@ferret:27018/?authSource=admin' }, [])).toMatchObject({ LISTEN_PORT: 27017, GRANTS_MAX_AGE_MS: 2000 });
    expect(backendAddress('mongodb://u:p@ferret:27018/')).toEqual({ host: 'ferret', port: 27018 });
    expect(() => loadGateConfig({ MONGODB_URL: 'mongodb://u:secretpw@a:1,b:2/' }, [])).toThrow(/MONGODB_URL/);
    expect(() => loadGateConfig({ MONGODB_URL: 'mongodb://u:secretpw@a/' }, ['--listen-port', '70000'])).toThrow(/LISTEN_PORT/);
    try {
      loadGateConfig({ MONGODB_URL: 'http://u:secretpw@a/' }, []);
    } catch (err) {
      expect((err as Error).message).not.toContain('secretpw');
    }
  });
});
