/**
 * LabHub's mongo-gate as a process in front of a test FerretDB, and a raw MongoDB-wire client that can send what
 * no driver sends (stray sections, duplicate keys, foreign cursor ids) after a real SCRAM-SHA-256 login.
 */
import { spawn } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Binary, BSON, type Document } from 'bson';
import { encodeMsg, FrameReader, parseMsg, type DocumentSequence } from '../../datalab/mongo-gate/wire.js';
import { stopProcess } from './processes.js';

const REPO = join(import.meta.dirname, '..', '..');

export interface GateProcess {
  port: number;
  /** mongodb://127.0.0.1:<port>/ */
  url: string;
  output(): string;
  stop(): Promise<void>;
}

export async function startMongoGate(adminUrl: string, grantsMaxAgeMs = 2000): Promise<GateProcess> {
  const child = spawn(process.execPath, [join(REPO, 'dist/datalab/mongo-gate/main.js')], {
    env: { ...process.env, MONGODB_URL: adminUrl, LISTEN_HOST: '127.0.0.1', LISTEN_PORT: '0', GRANTS_MAX_AGE_MS: String(grantsMaxAgeMs), LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mongo-gate did not start: ${output.slice(-2000)}`)), 15_000);
    const read = (d: Buffer) => {
      output += d.toString();
      const m = /listening on (\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => reject(new Error(`mongo-gate exited ${code}: ${output.slice(-2000)}`)));
  });
  return { port, url: `mongodb://127.0.0.1:${port}/`, output: () => output, stop: () => stopProcess(child) };
}

/** One wire connection; `command` sends an OP_MSG and waits for its answer, or for the connection to close. */
export class RawMongo {
  private readonly frames = new FrameReader();
  private readonly waiting = new Map<number, (reply: Document | null) => void>();
  private nextId = 1;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.frames.push(chunk)) {
        // Numbers as plain numbers, cursor ids kept as Long so they go back to the server as they came.
        this.waiting.get(frame.responseTo)?.(BSON.deserialize(BSON.serialize(parseMsg(frame).body), { promoteLongs: false }));
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const done of this.waiting.values()) done(null);
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawMongo> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawMongo(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends bytes as they are (a hand-made message); resolves with the answer to `requestId`, or null on close. */
  sendRaw(bytes: Buffer, requestId: number): Promise<Document | null> {
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), 10_000);
      this.waiting.set(requestId, (reply) => {
        clearTimeout(timer);
        this.waiting.delete(requestId);
        resolve(reply);
      });
      this.socket.write(bytes);
    });
  }

  command(body: Document, sequences: DocumentSequence[] = []): Promise<Document | null> {
    const id = this.nextId++;
    return this.sendRaw(encodeMsg(id, 0, { flags: 0, body, sequences }), id);
  }

  /** An OP_MSG whose body is given as bytes, e.g. with a key twice. */
  commandBytes(body: Buffer): Promise<Document | null> {
    const id = this.nextId++;
    const flags = Buffer.alloc(4);
    const payload = Buffer.concat([flags, Buffer.from([0]), body]);
    const header = Buffer.alloc(16);
    header.writeInt32LE(16 + payload.length, 0);
    header.writeInt32LE(id, 4);
    header.writeInt32LE(2013, 12);
    return this.sendRaw(Buffer.concat([header, payload]), id);
  }

  /** SCRAM-SHA-256 as a driver does it (RFC 5802/7677). */
  async login(user: string, password: string): Promise<void> {
    const clientNonce = randomBytes(18).toString('base64');
    const firstBare = `n=${user},r=${clientNonce}`;
    const start = await this.command({
      saslStart: 1, mechanism: 'SCRAM-SHA-256', payload: new Binary(Buffer.from(`n,,${firstBare}`)), options: { skipEmptyExchange: true }, $db: 'admin',
    });
    if (!start || Number(start.ok) !== 1) throw new Error(`saslStart: ${JSON.stringify(start)}`);
    const serverFirst = Buffer.from((start.payload as Binary).buffer).toString('utf8');
    const fields = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
    const salted = pbkdf2Sync(password, Buffer.from(fields.s!, 'base64'), Number(fields.i), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${fields.r}`;
    const signature = createHmac('sha256', storedKey).update(`${firstBare},${serverFirst},${withoutProof}`).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!)).toString('base64');
    let reply = await this.command({
      saslContinue: 1, conversationId: start.conversationId, payload: new Binary(Buffer.from(`${withoutProof},p=${proof}`)), $db: 'admin',
    });
    while (reply && Number(reply.ok) === 1 && reply.done !== true) {
      reply = await this.command({ saslContinue: 1, conversationId: start.conversationId, payload: new Binary(Buffer.alloc(0)), $db: 'admin' });
    }
    if (!reply || Number(reply.ok) !== 1) throw new Error(`saslContinue: ${JSON.stringify(reply)}`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A BSON document with `$db` twice: the last value is the one a JavaScript decoder keeps. */
export function bodyWithDuplicateDb(command: Document, first: string, second: string): Buffer {
  const doc = Buffer.from(BSON.serialize({ ...command, $db: first }));
  const extra = Buffer.from(BSON.serialize({ $db: second })).subarray(4, -1);
  const out = Buffer.concat([doc.subarray(0, -1), extra, Buffer.from([0])]);
  out.writeInt32LE(out.length, 0);
  return out;
}

