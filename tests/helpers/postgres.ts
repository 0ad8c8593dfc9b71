/**
 * Throwaway PostgreSQL 15 clusters for tests (Debian's `postgresql` package, installed by
 * scripts/setup-test-env.sh). A cluster lives in a temp dir owned by user `postgres` (PostgreSQL refuses to run
 * as root), listens on 127.0.0.1 on a free high port with trust auth, keeps its unix socket inside the temp dir,
 * and is tuned for speed, not durability (fsync off). `stop()` shuts it down and deletes the dir.
 *
 * One cluster is started per test run by tests/helpers/global-setup.ts; tests get its URL with
 * `inject('postgresUrl')` and make their own empty database with `createDatabase(url, name)`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants, chownSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';

const execFileAsync = promisify(execFile);

/** Where the server binaries are; override with LABHUB_PG_BIN. */
export const PG_BIN = process.env.LABHUB_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:PORT/labhub_test` */
  url: string;
  port: number;
  /** Temp dir holding data/, the unix socket and postgres.log. */
  dir: string;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Database created in the new cluster and named in `url` (default `labhub_test`). */
  database?: string;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** `null` when a cluster can be started here, else why not. */
export function postgresUnavailableReason(): string | null {
  for (const bin of ['initdb', 'pg_ctl', 'postgres']) {
    try {
      accessSync(join(PG_BIN, bin), constants.X_OK);
    } catch {
      return `${join(PG_BIN, bin)} not found (run scripts/setup-test-env.sh)`;
    }
  }
  if (isRoot) {
    try {
      postgresIds();
    } catch {
      return "no 'postgres' user to run the server as (run scripts/setup-test-env.sh)";
    }
  }
  return null;
}

let cachedIds: { uid: number; gid: number } | undefined;
function postgresIds(): { uid: number; gid: number } {
  cachedIds ??= {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  };
  return cachedIds;
}

/** argv that runs `bin args…` as user postgres when we are root, as ourselves otherwise. */
function asServerUser(bin: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, bin);
  return isRoot ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

async function run(bin: string, args: string[], cwd: string): Promise<string> {
  const [file, argv] = asServerUser(bin, args);
  try {
    const { stdout, stderr } = await execFileAsync(file, argv, {
      cwd,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    });
    return stdout + stderr;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${bin} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
      cause: err,
    });
  }
}

function assertIdentifier(name: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`invalid database name ${JSON.stringify(name)}: use [a-z_][a-z0-9_]*, at most 63 chars`);
  }
}

/** Clusters still running, stopped synchronously if the process exits without calling stop(). */
const running = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const dir of running) {
      try {
        const [file, argv] = asServerUser('pg_ctl', ['stop', '-D', join(dir, 'data'), '-m', 'immediate', '-w']);
        execFileSync(file, argv, { cwd: dir, stdio: 'ignore', timeout: 10_000 });
      } catch {
        // best effort
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** Starts a throwaway cluster; about 2-3 s. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresCluster> {
  const reason = postgresUnavailableReason();
  if (reason !== null) throw new Error(`cannot start PostgreSQL: ${reason}`);
  const database = options.database ?? 'labhub_test';
  assertIdentifier(database);

  // As root the server runs as `postgres`, which must reach the dir: use /tmp, not a TMPDIR that may sit under /root.
  const dir = mkdtempSync(join(isRoot ? '/tmp' : tmpdir(), 'labhub-pg-'));
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'sock');
  mkdirSync(socketDir);
  if (isRoot) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
    chownSync(socketDir, uid, gid);
  }
  running.add(dir);
  installExitHook();

  let port = 0;
  let started = false;
  try {
    await run(
      'initdb',
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions'],
      dir,
    );
    // The port can be taken between freePort() and the server binding it: try a few.
    let lastError: unknown;
    for (let attempt = 0; attempt < 3 && !started; attempt++) {
      port = await freePort();
      const serverOptions = [
        `-p ${port}`,
        `-k ${socketDir}`,
        '-c listen_addresses=127.0.0.1',
        '-c fsync=off',
        '-c synchronous_commit=off',
        '-c full_page_writes=off',
        '-c max_connections=200',
      ].join(' ');
      try {
        await run('pg_ctl', ['start', '-D', dataDir, '-l', join(dir, 'postgres.log'), '-w', '-t', '60', '-o', serverOptions], dir);
        started = true;
      } catch (err) {
        lastError = err;
      }
    }
    if (!started) throw lastError;

    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE "${database}"`);
    } finally {
      await admin.end();
    }
  } catch (err) {
    if (started) await run('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w'], dir).catch(() => undefined);
    running.delete(dir);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    port,
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await run('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30'], dir);
      } catch {
        await run('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w'], dir).catch(() => undefined);
      }
      running.delete(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `url` with its database replaced by `name`. */
export function databaseUrl(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * Creates an empty database `name` (dropped first if it exists) in the cluster that `url` points at, and
 * returns its URL. Use one name per test file (e.g. derived from the file name) so parallel files don't clash.
 */
export async function createDatabase(url: string, name: string): Promise<string> {
  assertIdentifier(name);
  const admin = new pg.Client({ connectionString: databaseUrl(url, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return databaseUrl(url, name);
}

/** Drops database `name` (closing its connections) in the cluster that `url` points at. */
export async function dropDatabase(url: string, name: string): Promise<void> {
  assertIdentifier(name);
  const admin = new pg.Client({ connectionString: databaseUrl(url, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
