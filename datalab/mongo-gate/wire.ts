/**
 * The parts of MongoDB's wire protocol the gate reads and writes: message framing, OP_MSG (every command of a
 * current driver) and OP_QUERY (only drivers' first `hello` of a connection). Commands are decoded into plain BSON
 * values and encoded again before they go on, so the server executes exactly the document the gate checked: no
 * duplicate key, stray section or odd encoding can mean one thing to the gate and another to the server.
 */
import { BSON, type Document } from 'bson';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

const HEADER = 16;
/** MongoDB's own limit on a message (maxMessageSizeBytes). */
export const MAX_MESSAGE = 48_000_000;

export const FLAG_CHECKSUM = 1 << 0;
export const FLAG_MORE_TO_COME = 1 << 1;
export const FLAG_EXHAUST_ALLOWED = 1 << 16;

/** Values stay as BSON types (Int32, Long, Double) so encoding them again gives back the same bytes' meaning. */
const DECODE = { promoteValues: false, promoteBuffers: false, promoteLongs: false, bsonRegExp: true, validation: { utf8: true } } as const;

export class WireError extends Error {}

export interface Frame {
  requestId: number;
  responseTo: number;
  opCode: number;
  /** The whole message, header included. */
  bytes: Buffer;
}

/** Splits a byte stream into whole messages. */
export class FrameReader {
  private buffered: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): Frame[] {
    this.buffered.push(chunk);
    this.size += chunk.length;
    const frames: Frame[] = [];
    let data = Buffer.concat(this.buffered, this.size);
    while (data.length >= 4) {
      const length = data.readInt32LE(0);
      if (length < HEADER || length > MAX_MESSAGE) throw new WireError(`message length ${length} out of bounds`);
      if (data.length < length) break;
      const bytes = data.subarray(0, length);
      frames.push({ requestId: bytes.readInt32LE(4), responseTo: bytes.readInt32LE(8), opCode: bytes.readInt32LE(12), bytes });
      data = data.subarray(length);
    }
    this.buffered = data.length ? [data] : [];
    this.size = data.length;
    return frames;
  }
}

export interface DocumentSequence {
  identifier: string;
  /** The documents' bytes as sent: data, which the gate does not interpret. */
  documents: Buffer;
}

export interface Msg {
  flags: number;
  body: Document;
  sequences: DocumentSequence[];
}

function decodeDocument(buffer: Buffer, at: number): { doc: Document; end: number } {
  if (at + 4 > buffer.length) throw new WireError('truncated document');
  const size = buffer.readInt32LE(at);
  if (size < 5 || at + size > buffer.length) throw new WireError('document length out of bounds');
  try {
    return { doc: BSON.deserialize(buffer.subarray(at, at + size), DECODE), end: at + size };
  } catch (err) {
    throw new WireError(`malformed document: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function cString(buffer: Buffer, at: number): { value: string; end: number } {
  const nul = buffer.indexOf(0, at);
  if (nul === -1) throw new WireError('unterminated string');
  return { value: buffer.toString('utf8', at, nul), end: nul + 1 };
}

export function parseMsg(frame: Frame): Msg {
  const b = frame.bytes;
  if (b.length < HEADER + 5) throw new WireError('OP_MSG too short');
  const flags = b.readUInt32LE(HEADER);
  const end = flags & FLAG_CHECKSUM ? b.length - 4 : b.length;
  let at = HEADER + 4;
  let body: Document | undefined;
  const sequences: DocumentSequence[] = [];
  while (at < end) {
    const kind = b[at++];
    if (kind === 0) {
      if (body) throw new WireError('two body sections');
      const decoded = decodeDocument(b, at);
      body = decoded.doc;
      at = decoded.end;
    } else if (kind === 1) {
      if (at + 4 > end) throw new WireError('truncated document sequence');
      const size = b.readInt32LE(at);
      const stop = at + size;
      if (size < 5 || stop > end) throw new WireError('document sequence length out of bounds');
      const id = cString(b, at + 4);
      if (id.end > stop) throw new WireError('document sequence identifier overruns it');
      for (let d = id.end; d < stop; d = decodeDocument(b.subarray(0, stop), d).end);
      sequences.push({ identifier: id.value, documents: b.subarray(id.end, stop) });
      at = stop;
    } else {
      throw new WireError(`unknown section kind ${kind}`);
    }
  }
  if (!body) throw new WireError('OP_MSG without a body');
  return { flags, body, sequences };
}

function header(length: number, requestId: number, responseTo: number, opCode: number): Buffer {
  const h = Buffer.alloc(HEADER);
  h.writeInt32LE(length, 0);
  h.writeInt32LE(requestId, 4);
  h.writeInt32LE(responseTo, 8);
  h.writeInt32LE(opCode, 12);
  return h;
}

export function encodeMsg(requestId: number, responseTo: number, msg: Msg): Buffer {
  const parts: Buffer[] = [];
  const flags = Buffer.alloc(4);
  flags.writeUInt32LE(msg.flags >>> 0, 0);
  parts.push(flags, Buffer.from([0]), Buffer.from(BSON.serialize(msg.body)));
  for (const s of msg.sequences) {
    const id = Buffer.from(`${s.identifier}\0`, 'utf8');
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + id.length + s.documents.length, 0);
    parts.push(Buffer.from([1]), size, id, s.documents);
  }
  const payload = Buffer.concat(parts);
  if (HEADER + payload.length > MAX_MESSAGE) throw new WireError('message too large');
  return Buffer.concat([header(HEADER + payload.length, requestId, responseTo, OP_MSG), payload]);
}

export interface Query {
  flags: number;
  collection: string;
  skip: number;
  limit: number;
  query: Document;
}

/** OP_QUERY; a field selector after the query, which no handshake sends, is refused. */
export function parseQuery(frame: Frame): Query {
  const b = frame.bytes;
  if (b.length < HEADER + 4) throw new WireError('OP_QUERY too short');
  const flags = b.readInt32LE(HEADER);
  const name = cString(b, HEADER + 4);
  if (name.end + 8 > b.length) throw new WireError('OP_QUERY truncated');
  const skip = b.readInt32LE(name.end);
  const limit = b.readInt32LE(name.end + 4);
  const decoded = decodeDocument(b, name.end + 8);
  if (decoded.end !== b.length) throw new WireError('OP_QUERY with a field selector');
  return { flags, collection: name.value, skip, limit, query: decoded.doc };
}

export function encodeQuery(requestId: number, q: Query): Buffer {
  const name = Buffer.from(`${q.collection}\0`, 'utf8');
  const fixed = Buffer.alloc(8);
  fixed.writeInt32LE(q.skip, 0);
  fixed.writeInt32LE(q.limit, 4);
  const flags = Buffer.alloc(4);
  flags.writeInt32LE(q.flags, 0);
  const payload = Buffer.concat([flags, name, fixed, Buffer.from(BSON.serialize(q.query))]);
  return Buffer.concat([header(HEADER + payload.length, requestId, 0, OP_QUERY), payload]);
}

/** The first document of an OP_REPLY (a handshake's answer). */
export function parseReplyDocument(frame: Frame): Document {
  return decodeDocument(frame.bytes, HEADER + 20).doc;
}

/** A command's name: its first key, the one the server dispatches on. */
export function commandName(body: Document): string {
  return Object.keys(body)[0] ?? '';
}
