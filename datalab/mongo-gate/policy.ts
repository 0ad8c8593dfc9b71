/**
 * What a lease may run through the gate: MongoDB's `read` and `readWrite` roles on the databases its grant names,
 * decided from the command the server will execute. Anything not known to be harmless is refused: an allowlist of
 * commands and aggregation stages, never a blocklist.
 */
import type { Document } from 'bson';
import { GATE_GRANTS } from '../../hub/credentials/mongodb.js';
import { commandName, type DocumentSequence } from './wire.js';

/** Where the hub's broker writes each lease's grant: one name, the broker's. */
export const GRANTS_DATABASE = GATE_GRANTS.database;
export const GRANTS_COLLECTION = GATE_GRANTS.collection;

/** Never granted, whatever a grant says: users' password hashes live in `admin`, the grants in labhub_gate. */
export const RESERVED_DATABASES: ReadonlySet<string> = new Set(['admin', 'config', 'local', GRANTS_DATABASE]);

export interface Grants {
  read: ReadonlySet<string>;
  write: ReadonlySet<string>;
}

export type Verdict = { ok: true } | { ok: false; reason: string };

/** Allowed before authentication, and after it on any database. */
export const HANDSHAKE_COMMANDS: ReadonlySet<string> = new Set([
  'hello', 'isMaster', 'ismaster', 'ping', 'buildInfo', 'buildinfo', 'saslStart', 'saslContinue', 'endSessions',
]);
const ABOUT_ME = new Set(['connectionStatus', 'whatsmyuri']);
const READ_COMMANDS = new Set(['find', 'count', 'distinct', 'aggregate', 'listCollections', 'listIndexes', 'collStats', 'dbStats', 'getMore', 'killCursors', 'explain']);
const WRITE_COMMANDS = new Set(['insert', 'update', 'delete', 'findAndModify', 'findandmodify', 'create', 'drop', 'createIndexes', 'dropIndexes']);
/** Commands whose first value names a collection of `$db`. */
const ON_A_COLLECTION = new Set(['find', 'count', 'distinct', 'aggregate', 'listIndexes', 'collStats', 'insert', 'update', 'delete', 'findAndModify', 'findandmodify', 'create', 'drop', 'createIndexes', 'dropIndexes', 'killCursors']);
/** The one document sequence each write command takes; any other would merge into the command as a field. */
const SEQUENCE_OF: Record<string, string> = { insert: 'documents', update: 'updates', delete: 'deletes' };

const STAGES = new Set([
  '$match', '$project', '$addFields', '$set', '$unset', '$group', '$sort', '$limit', '$skip', '$unwind', '$count', '$sortByCount',
  '$bucket', '$bucketAuto', '$facet', '$replaceRoot', '$replaceWith', '$sample', '$lookup', '$graphLookup', '$unionWith', '$redact',
  '$geoNear', '$densify', '$fill', '$setWindowFields', '$collStats', '$indexStats', '$documents', '$out', '$merge',
]);
const MAX_PIPELINE_DEPTH = 16;

export interface Request {
  body: Document;
  sequences: readonly DocumentSequence[];
}

export interface Session {
  /** The lease this connection authenticated as; undefined before. */
  user?: string;
  grants?: Grants;
  /** Cursors this connection opened: the only ones it may continue or kill. */
  ownsCursor(id: string): boolean;
}

const refuse = (reason: string): Verdict => ({ ok: false, reason });
const OK: Verdict = { ok: true };

const isDocument = (v: unknown): v is Document => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v as { _bsontype?: unknown })._bsontype;

/** A cursor id as the gate keys it (a BSON Long or a plain number). */
export function cursorKey(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return String(v);
  if (typeof v === 'object' && v !== null && (v as { _bsontype?: unknown })._bsontype === 'Long') return (v as { toString(): string }).toString();
  return undefined;
}

function mayUse(grants: Grants | undefined, db: string, access: 'read' | 'write'): boolean {
  if (!grants || RESERVED_DATABASES.has(db)) return false;
  return grants.write.has(db) || (access === 'read' && grants.read.has(db));
}

/** Databases a pipeline reads beyond its own and writes to, or why it is refused. */
function pipelineEffects(pipeline: unknown, db: string, depth: number, writes: Set<string>): string | undefined {
  if (depth > MAX_PIPELINE_DEPTH) return 'pipeline nested too deep';
  if (!Array.isArray(pipeline)) return 'pipeline must be an array';
  for (const stage of pipeline) {
    if (!isDocument(stage)) return 'each pipeline stage must be a document';
    const keys = Object.keys(stage);
    if (keys.length !== 1) return 'each pipeline stage must have exactly one field';
    const name = keys[0]!;
    if (!STAGES.has(name)) return `pipeline stage ${name} is not allowed`;
    const spec: unknown = stage[name];
    const nested = (p: unknown) => (p === undefined ? undefined : pipelineEffects(p, db, depth + 1, writes));
    let problem: string | undefined;
    switch (name) {
      case '$lookup':
      case '$graphLookup':
        if (!isDocument(spec)) return `${name} must be a document`;
        if (spec.from !== undefined && typeof spec.from !== 'string') return `${name}.from must name a collection of this database`;
        problem = nested(spec.pipeline);
        break;
      case '$unionWith':
        if (typeof spec === 'string') break;
        if (!isDocument(spec) || (spec.coll !== undefined && typeof spec.coll !== 'string')) return '$unionWith must name a collection of this database';
        problem = nested(spec.pipeline);
        break;
      case '$facet':
        if (!isDocument(spec)) return '$facet must be a document';
        for (const sub of Object.values(spec)) if ((problem = nested(sub))) break;
        break;
      case '$out':
        if (typeof spec === 'string') writes.add(db);
        else if (isDocument(spec) && typeof spec.db === 'string' && typeof spec.coll === 'string') writes.add(spec.db);
        else return '$out must name a collection';
        break;
      case '$merge': {
        const into: unknown = typeof spec === 'string' ? spec : isDocument(spec) ? spec.into : undefined;
        if (typeof into === 'string') writes.add(db);
        else if (isDocument(into) && typeof into.db === 'string' && typeof into.coll === 'string') writes.add(into.db);
        else return '$merge must name a collection';
        if (isDocument(spec) && spec.whenMatched !== undefined && typeof spec.whenMatched !== 'string') problem = nested(spec.whenMatched);
        break;
      }
    }
    if (problem) return problem;
  }
  return undefined;
}

function splitNamespace(ns: unknown): { db: string; coll: string } | undefined {
  if (typeof ns !== 'string') return undefined;
  const dot = ns.indexOf('.');
  return dot > 0 && dot < ns.length - 1 ? { db: ns.slice(0, dot), coll: ns.slice(dot + 1) } : undefined;
}

export function authorize(request: Request, session: Session, nested = false): Verdict {
  const { body, sequences } = request;
  const name = commandName(body);
  const db: unknown = body.$db;
  if (typeof db !== 'string' || db === '') return refuse('a command must name its database ($db)');

  const allowedSequence = SEQUENCE_OF[name];
  for (const s of sequences) {
    if (s.identifier !== allowedSequence) return refuse(`document sequence ${JSON.stringify(s.identifier)} is not allowed with ${name}`);
    if (s.identifier in body) return refuse(`${s.identifier} given twice`);
  }

  if (HANDSHAKE_COMMANDS.has(name) && !nested) return OK;
  if (!session.user) return refuse(`command ${name} requires authentication`);
  if (ABOUT_ME.has(name) && !nested) return OK;
  if (name === 'listDatabases' && !nested) return db === 'admin' ? OK : refuse('listDatabases runs on admin');
  if (name === 'renameCollection' && !nested) {
    const from = splitNamespace(body.renameCollection);
    const to = splitNamespace(body.to);
    if (db !== 'admin' || !from || !to) return refuse('renameCollection needs two namespaces, on admin');
    if (from.db !== to.db) return refuse('renameCollection may not move a collection to another database');
    return mayUse(session.grants, from.db, 'write') ? OK : refuse(`not authorized on ${from.db} to execute command renameCollection`);
  }

  if (!READ_COMMANDS.has(name) && !WRITE_COMMANDS.has(name)) return refuse(`command ${name} is not allowed through the gate`);
  if (ON_A_COLLECTION.has(name) && typeof body[name] !== 'string') return refuse(`${name} must name a collection`);

  // An aggregation's `$out`/`$merge` needs a write grant on its target, not on the database it reads.
  const access: 'read' | 'write' = WRITE_COMMANDS.has(name) ? 'write' : 'read';
  const writes = new Set<string>();
  switch (name) {
    case 'aggregate': {
      const problem = pipelineEffects(body.pipeline, db, 0, writes);
      if (problem) return refuse(problem);
      break;
    }
    case 'create':
      if (body.pipeline !== undefined) {
        const problem = pipelineEffects(body.pipeline, db, 0, writes);
        if (problem) return refuse(problem);
        if (writes.size) return refuse('a view may not write');
      }
      if (body.viewOn !== undefined && typeof body.viewOn !== 'string') return refuse('viewOn must name a collection');
      break;
    case 'getMore': {
      const id = cursorKey(body.getMore);
      if (nested || !id || !session.ownsCursor(id) || typeof body.collection !== 'string') return refuse('cursor not found on this connection');
      break;
    }
    case 'killCursors': {
      const ids: unknown = body.cursors;
      if (nested || !Array.isArray(ids) || !ids.every((v) => { const id = cursorKey(v); return id !== undefined && session.ownsCursor(id); })) {
        return refuse('cursor not found on this connection');
      }
      break;
    }
    case 'explain': {
      if (nested || !isDocument(body.explain) || '$db' in body.explain) return refuse('explain takes one command, on its own database');
      const inner = authorize({ body: { ...body.explain, $db: db }, sequences: [] }, session, true);
      if (!inner.ok) return inner;
      break;
    }
  }
  if (!mayUse(session.grants, db, access)) return refuse(`not authorized on ${db} to execute command ${name}`);
  for (const target of writes) {
    if (!mayUse(session.grants, target, 'write')) return refuse(`not authorized on ${target} to write`);
  }
  return OK;
}
