/**
 * The gate: a MongoDB-wire endpoint in front of a server that authenticates but does not authorize (FerretDB 1.x).
 * Each client connection gets its own connection to the server, so the server checks the lease's password itself
 * (SCRAM passes through untouched); the gate reads the user name the conversation names, loads that lease's grant,
 * and lets through only what the grant allows (policy.ts). A grant deleted by the hub cuts the lease's open
 * connections at their next command.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Document } from 'bson';
import {
  commandName, encodeMsg, encodeQuery, FLAG_CHECKSUM, FLAG_EXHAUST_ALLOWED, FLAG_MORE_TO_COME, FrameReader, OP_MSG, OP_QUERY, OP_REPLY,
  parseMsg, parseQuery, WireError, type Frame, type Msg,
} from './wire.js';
import { authorize, cursorKey, RESERVED_DATABASES, type Grants } from './policy.js';

/** A lease's grant, or null when there is none (revoked, or never a lease). */
export type GrantLookup = (user: string) => Promise<Grants | null>;

export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface GateOptions {
  backend: { host: string; port: number };
  grants: GrantLookup;
  /** How old a connection's copy of its grant may get before the next command reloads it. */
  grantsMaxAgeMs: number;
  log: LogFn;
}

export interface RunningGate {
  port: number;
  close(): Promise<void>;
}

const HANDSHAKE_QUERIES = new Set(['hello', 'isMaster', 'ismaster']);
const CURSOR_COMMANDS = new Set(['find', 'aggregate', 'listCollections', 'listIndexes', 'getMore']);
const SCRAM = new Set(['SCRAM-SHA-256', 'SCRAM-SHA-1']);
/** Lease names are plain: no SCRAM escapes, so the gate and the server cannot read one name two ways. */
const USER_NAME = /^[A-Za-z0-9._-]{1,128}$/;
/** OP_MSG flag bits 2..15 are "required": a receiver that does not know one must refuse the message. */
const UNKNOWN_REQUIRED_FLAGS = 0xfffc;
const QUEUED_FRAMES_BEFORE_PAUSE = 16;
const QUERY_SECONDARY_OK = 1 << 2;

const EMPTY: Grants = { read: new Set(), write: new Set() };

/** Fields of `hello` the gate does not carry: compression and speculative authentication would bypass it. */
function plainHello(doc: Document): Document {
  const { speculativeAuthenticate: _s, compression: _c, ...rest } = doc;
  return rest;
}

/** The user name of a SCRAM client-first message: `n,,n=<user>,r=<nonce>`. */
export function scramUser(payload: unknown): string | undefined {
  const bytes = (payload as { _bsontype?: string; buffer?: Uint8Array } | null)?._bsontype === 'Binary' ? (payload as { buffer: Uint8Array }).buffer : undefined;
  if (!bytes) return undefined;
  const match = /^n,,n=([^,]*),r=/.exec(Buffer.from(bytes).toString('utf8'));
  return match && USER_NAME.test(match[1]!) ? match[1] : undefined;
}

const number = (v: unknown): number => (typeof v === 'number' ? v : Number((v as { valueOf(): unknown } | null)?.valueOf()));

interface Pending {
  name: string;
  /** getMore's cursor: forgotten when the server says it is exhausted. */
  cursor?: string;
}

class GateConnection {
  private readonly backend: Socket;
  private readonly fromClientFrames = new FrameReader();
  private readonly fromBackendFrames = new FrameReader();
  private clientWork: Promise<void> = Promise.resolve();
  private backendWork: Promise<void> = Promise.resolve();
  private queued = 0;
  private closed = false;
  private user: string | undefined;
  private grants: Grants = EMPTY;
  private grantsLoadedAt = 0;
  private hadGrant = false;
  private conversationUser: string | undefined;
  /** The server's id for that conversation, once it has answered saslStart. */
  private conversationId: unknown;
  private readonly cursors = new Set<string>();
  private readonly pending = new Map<number, Pending>();
  private nextReplyId = 1;

  constructor(private readonly client: Socket, private readonly options: GateOptions) {
    this.backend = createConnection(options.backend);
    this.backend.setNoDelay(true);
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.receive(chunk, this.fromClientFrames, 'client'));
    this.backend.on('data', (chunk: Buffer) => this.receive(chunk, this.fromBackendFrames, 'backend'));
    for (const socket of [client, this.backend]) {
      socket.on('error', () => this.close());
      socket.on('close', () => this.close());
    }
  }

  private receive(chunk: Buffer, reader: FrameReader, side: 'client' | 'backend'): void {
    let frames: Frame[];
    try {
      frames = reader.push(chunk);
    } catch (err) {
      this.drop(side, err);
      return;
    }
    for (const frame of frames) {
      if (side === 'client') {
        if (++this.queued > QUEUED_FRAMES_BEFORE_PAUSE) this.client.pause();
        this.clientWork = this.clientWork.then(() => this.fromClient(frame)).catch((err: unknown) => this.drop(side, err)).finally(() => {
          if (--this.queued <= QUEUED_FRAMES_BEFORE_PAUSE && !this.closed) this.client.resume();
        });
      } else {
        this.backendWork = this.backendWork.then(() => this.fromBackend(frame)).catch((err: unknown) => this.drop(side, err));
      }
    }
  }

  private drop(side: string, err: unknown): void {
    if (this.closed) return;
    this.options.log(err instanceof WireError ? 'info' : 'warn', 'connection dropped', { side, user: this.user, reason: err instanceof Error ? err.message : String(err) });
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.backend.destroy();
  }

  private async fromClient(frame: Frame): Promise<void> {
    if (this.closed) return;
    if (frame.opCode === OP_QUERY) return this.handshakeQuery(frame);
    if (frame.opCode !== OP_MSG) throw new WireError(`opcode ${frame.opCode} is not accepted`);
    const msg = parseMsg(frame);
    if (msg.flags & UNKNOWN_REQUIRED_FLAGS) throw new WireError('unknown required OP_MSG flag');
    // The gate re-encodes the message, so a checksum would not match it; exhaust replies would bypass the reply path.
    msg.flags &= ~(FLAG_CHECKSUM | FLAG_EXHAUST_ALLOWED);
    const name = commandName(msg.body);
    if (HANDSHAKE_QUERIES.has(name)) msg.body = plainHello(msg.body);
    if (this.user !== undefined && !(await this.grantStillHeld())) {
      this.refuse(frame, msg, 'the lease was revoked');
      this.close();
      return;
    }
    const refusal = this.checkAuthentication(name, msg.body) ?? this.verdict(msg);
    if (refusal) {
      this.refuse(frame, msg, refusal);
      return;
    }
    // A reused id would let one command's answer be read as another's, a login's above all.
    if (this.pending.has(frame.requestId)) throw new WireError('request id already in flight');
    const pending: Pending = { name };
    if (name === 'getMore') pending.cursor = cursorKey(msg.body.getMore);
    if (name === 'killCursors') for (const id of msg.body.cursors as unknown[]) this.cursors.delete(cursorKey(id)!);
    if (name === 'saslStart') this.conversationUser = scramUser(msg.body.payload);
    if (!(msg.flags & FLAG_MORE_TO_COME)) this.pending.set(frame.requestId, pending);
    this.backend.write(encodeMsg(frame.requestId, 0, msg));
  }

  /** Drivers open a connection with a legacy `hello` over OP_QUERY; nothing else is accepted that way. */
  private handshakeQuery(frame: Frame): void {
    const query = parseQuery(frame);
    if (!query.collection.endsWith('.$cmd') || !HANDSHAKE_QUERIES.has(commandName(query.query))) {
      throw new WireError('OP_QUERY is accepted only for the handshake');
    }
    if (this.pending.has(frame.requestId)) throw new WireError('request id already in flight');
    this.pending.set(frame.requestId, { name: 'hello' });
    // Only SecondaryOk is carried: an exhaust or tailable flag would make the server answer more than once.
    this.backend.write(encodeQuery(frame.requestId, { ...query, flags: query.flags & QUERY_SECONDARY_OK, query: plainHello(query.query) }));
  }

  /**
   * One SCRAM conversation at a time, for a plainly named user, continued only under the id the server gave it: the
   * user whose grant the gate loads is then the one whose password the server checked.
   */
  private checkAuthentication(name: string, body: Document): string | undefined {
    if (name === 'saslStart') {
      if (this.user !== undefined) return 'this connection is already authenticated';
      if (this.conversationUser !== undefined) return 'an authentication is already in progress';
      if (typeof body.mechanism !== 'string' || !SCRAM.has(body.mechanism)) return 'only SCRAM-SHA-256 and SCRAM-SHA-1 are accepted';
      if (!scramUser(body.payload)) return 'the SCRAM message names no acceptable user';
    } else if (name === 'saslContinue') {
      if (this.user !== undefined || this.conversationUser === undefined || this.conversationId === undefined) return 'no authentication in progress';
      if (number(body.conversationId) !== number(this.conversationId)) return 'not the authentication in progress';
    }
    return undefined;
  }

  private verdict(msg: Msg): string | undefined {
    const verdict = authorize(msg, { user: this.user, grants: this.grants, ownsCursor: (id) => this.cursors.has(id) });
    return verdict.ok ? undefined : verdict.reason;
  }

  private async grantStillHeld(): Promise<boolean> {
    if (Date.now() - this.grantsLoadedAt < this.options.grantsMaxAgeMs) return true;
    await this.loadGrants(this.user!);
    return this.grants !== EMPTY || !this.hadGrant;
  }

  private async loadGrants(user: string): Promise<void> {
    const grants = await this.options.grants(user);
    this.grants = grants ?? EMPTY;
    this.hadGrant ||= grants !== null;
    this.grantsLoadedAt = Date.now();
  }

  /** MongoDB's answer to an unauthorized command, so drivers raise their usual error. */
  private refuse(frame: Frame, msg: Msg, reason: string): void {
    this.options.log('info', 'refused', { user: this.user, command: commandName(msg.body), db: typeof msg.body.$db === 'string' ? msg.body.$db : undefined, reason });
    if (msg.flags & FLAG_MORE_TO_COME) return;
    const body = { ok: 0, errmsg: reason, code: 13, codeName: 'Unauthorized' };
    this.client.write(encodeMsg(this.nextReplyId++, frame.requestId, { flags: 0, body, sequences: [] }));
  }

  private async fromBackend(frame: Frame): Promise<void> {
    if (this.closed) return;
    const pending = this.pending.get(frame.responseTo);
    this.pending.delete(frame.responseTo);
    if (!pending || frame.opCode === OP_REPLY || frame.opCode !== OP_MSG) {
      this.client.write(frame.bytes);
      return;
    }
    const { name } = pending;
    if (name === 'saslStart' || name === 'saslContinue') {
      const { body } = parseMsg(frame);
      if (number(body.ok) !== 1) {
        this.conversationUser = undefined;
        this.conversationId = undefined;
      } else if (name === 'saslStart') {
        this.conversationId = body.conversationId;
      }
      if (number(body.ok) === 1 && body.done === true && this.conversationUser !== undefined) {
        await this.loadGrants(this.conversationUser);
        this.user = this.conversationUser;
        this.options.log('debug', 'authenticated', { user: this.user });
      }
    } else if (CURSOR_COMMANDS.has(name)) {
      const cursor = (parseMsg(frame).body.cursor ?? {}) as Document;
      const id = cursorKey(cursor.id);
      if (id !== undefined && id !== '0') this.cursors.add(id);
      if (name === 'getMore' && id === '0' && pending.cursor) this.cursors.delete(pending.cursor);
    } else if (name === 'listDatabases') {
      const msg = parseMsg(frame);
      this.client.write(encodeMsg(frame.requestId, frame.responseTo, { ...msg, body: this.visibleDatabases(msg.body) }));
      return;
    }
    this.client.write(frame.bytes);
  }

  /** listDatabases shows a lease only the databases it may read; the totals would tell the rest's size. */
  private visibleDatabases(body: Document): Document {
    const { totalSize: _t, totalSizeMb: _m, ...rest } = body;
    if (!Array.isArray(rest.databases)) return rest;
    const readable = (db: string) => !RESERVED_DATABASES.has(db) && (this.grants.read.has(db) || this.grants.write.has(db));
    return { ...rest, databases: rest.databases.filter((d: Document) => typeof d.name === 'string' && readable(d.name)) };
  }
}

export function startGate(listen: { host: string; port: number }, options: GateOptions): Promise<RunningGate> {
  const connections = new Set<GateConnection>();
  const server: Server = createServer((socket) => {
    const connection = new GateConnection(socket, options);
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : listen.port,
        close: () => new Promise((done) => {
          for (const c of connections) c.close();
          server.close(() => done());
        }),
      });
    });
  });
}

