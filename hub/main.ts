#!/usr/bin/env node
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig } from './config/load.js';
import { forgetRunningHub, linkOrigin, recordRunningHub } from './running-hub.js';
import type { ShutdownRequest } from './context.js';
import type { LabHubConfig } from './config/schema.js';
import { DatabaseTooNewError } from './db/database.js';
import { createStore } from './db/index.js';
import { openStateDatabase, sqlitePathOf } from './db/open-state.js';
import { backupSqlite } from './db/backup.js';
import { COOKIE_SECRET_FILE } from './secrets.js';
import { createInvitation, invitationUrl } from './auth/one-time-links.js';
import { BY_HUB } from './audit/record.js';
import { VERSION } from './version.js';
import { createLogger } from './log.js';
import { TokenService } from './auth/token-service.js';
import { hashPassword, passwordRejection } from './auth/passwords.js';
import { normalizeUsername, validateUsername } from './auth/usernames.js';
import { scopeProblem } from './auth/scopes.js';

const USAGE = `labhub ${VERSION}: a multi-user notebook hub

Usage: labhub [command] [options]

Commands:
  start                     run the hub and its proxy (the default)
  proxy [proxy options]     run only the proxy (configurable-http-proxy compatible; see labhub proxy --help)
  users add <name> [--admin] [--password-stdin]
  users invite <name>... [--admin]
                            print a one-time link (valid 7 days) where each user sets a password,
                            creating accounts that do not exist; several names: "name<TAB>link" lines
  users passwd <name> --password-stdin
                            set a native account's password; its sessions and one-time links end
  users list
  users remove <name>
  token <name> [--scopes a,b] [--expires-in SECONDS] [--note TEXT]
                            print a new API token for a user
  db upgrade                apply pending migrations to the state DB
  db backup <file>          a consistent copy of the SQLite state DB, also while the hub runs

Options (every command but proxy):
  --config FILE             YAML config file (env LABHUB_CONFIG)
  --data-dir DIR            state DB and generated secrets (env LABHUB_DATA_DIR; default ./data)
  --port N                  public port (env LABHUB_PORT; default 8000)
  --log-level LEVEL         trace, debug, info, warn, error or fatal (env LABHUB_LOG_LEVEL)
  -h, --help                show this help

Every config key can also be set as LABHUB_<KEY> (nested keys joined with __); see docs/config.md.
`;

const COMMON: ParseArgsConfig['options'] = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  port: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  admin: { type: 'boolean' },
  'password-stdin': { type: 'boolean' },
  scopes: { type: 'string' },
  'expires-in': { type: 'string' },
  note: { type: 'string' },
};

/** Wrong words on the command line: exit 2. */
class UsageError extends Error {}
/** A well-formed command that cannot be carried out (user exists, no such user): exit 1. */
class CliError extends Error {}

interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
}

/** Runs one `labhub` command; resolves with the process exit status. */
export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  if (argv[0] === 'proxy') {
    const { runProxyCli } = await import('../proxy/main.js');
    return runProxyCli(argv.slice(1), env, io);
  }
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: COMMON, allowPositionals: true, strict: true }) as {
      values: Record<string, string | boolean | undefined>; positionals: string[];
    });
  } catch (err) {
    io.stderr.write(`labhub: ${(err as Error).message}\nRun labhub --help for usage.\n`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const [command = 'start', ...rest] = positionals;
  try {
    const config = loadConfig({ file: values.config as string | undefined, env, overrides: flagOverrides(values) });
    switch (command) {
      case 'start': return await start(config, io);
      case 'users': return await users(config, rest, values, io);
      case 'token': return await token(config, rest, values, io);
      case 'db':
        if (rest[0] === 'upgrade' && rest.length === 1) return await dbUpgrade(config, io);
        if (rest[0] === 'backup' && rest.length === 2) return await dbBackup(config, rest[1]!, io);
        throw new UsageError('db takes a subcommand: upgrade, or backup <file>');
      default: throw new UsageError(`unknown command ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof CliError || err instanceof ConfigError || err instanceof DatabaseTooNewError) {
      io.stderr.write(`labhub: ${err.message}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
    throw err;
  }
}

function flagOverrides(values: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (values['data-dir'] !== undefined) out.data_dir = values['data-dir'];
  if (values['log-level'] !== undefined) out.log_level = values['log-level'];
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!/^\d+$/.test(String(values.port))) throw new UsageError(`--port: expected a number from 1 to 65535, got ${String(values.port)}`);
    out.port = port;
  }
  return out;
}

async function start(config: LabHubConfig, io: Io): Promise<number> {
  // Handlers go in before anything starts: a signal that arrives mid-start-up must still shut down cleanly,
  // or the detached proxy would outlive the hub and keep the public port.
  // A signal stops the hub and the proxy it started; POST /shutdown says what to stop.
  let requestStop: (request?: ShutdownRequest) => void = () => undefined;
  const stopRequested = new Promise<ShutdownRequest | undefined>((resolve) => (requestStop = resolve));
  const onSignal = () => requestStop();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    // Loaded here so that the other commands do not pay for the whole hub's start-up.
    const { startHub } = await import('./app.js');
    const hub = await startHub(config, { onShutdownRequest: (request) => requestStop(request) });
    recordRunningHub(config);
    if (hub.setupUrl) {
      io.stdout.write(`\nNo admin account yet. Create the first one with this one-time link (valid 24 h):\n\n  ${hub.setupUrl}\n\n`);
    }
    const { proxy = true, servers = false } = (await stopRequested) ?? {};
    if (servers) {
      hub.ctx.log.info('shutting down; stopping every server first');
      await hub.ctx.servers.stopAll(30_000);
    } else {
      hub.ctx.log.info('shutting down; running servers keep running');
    }
    forgetRunningHub(config);
    await hub.close({ stopProxy: proxy });
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function withStore<T>(config: LabHubConfig, work: (store: ReturnType<typeof createStore>) => Promise<T>): Promise<T> {
  const db = await openStateDatabase(config);
  try {
    return await work(createStore(db.db));
  } finally {
    await db.close();
  }
}

function checkedName(raw: string | undefined): string {
  if (!raw) throw new UsageError('a username is required');
  const name = normalizeUsername(raw);
  const problem = validateUsername(name);
  if (problem) throw new UsageError(`invalid username: ${problem}`);
  return name;
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  let data = '';
  for await (const chunk of stdin) {
    data += String(chunk);
    if (data.length > 4096) throw new UsageError('password too long');
  }
  return data.replace(/\r?\n$/, '');
}

/** Refuses arguments a command does not take, instead of silently dropping them. */
function expectArgs(args: string[], count: number, command: string): void {
  if (args.length > count) throw new UsageError(`${command} takes ${count === 1 ? 'one argument' : `${count} arguments`}; unexpected ${JSON.stringify(args[count])}`);
}

async function users(config: LabHubConfig, args: string[], values: Record<string, string | boolean | undefined>, io: Io): Promise<number> {
  const [sub, raw] = args;
  // invite takes several names (a class at once); the others one.
  if (sub !== 'invite') expectArgs(args, sub === 'list' ? 1 : 2, `users ${sub ?? ''}`.trim());
  if (sub === 'list') {
    return withStore(config, async (store) => {
      const { rows } = await store.users.list({ offset: 0, limit: 1_000_000, sort: 'name', descending: false });
      for (const u of rows) io.stdout.write(`${u.name}${u.admin ? '\tadmin' : ''}\n`);
      return 0;
    });
  }
  const passwordFromStdin = async (): Promise<string> => {
    const password = await readStdin(io.stdin);
    if (passwordRejection(password) || password.length < config.authenticator.minimum_password_length) {
      throw new UsageError(`password refused: at least ${config.authenticator.minimum_password_length} characters, not blank`);
    }
    return hashPassword(password);
  };
  if (sub === 'passwd') {
    const name = checkedName(raw);
    if (!values['password-stdin']) throw new UsageError('users passwd reads the new password from standard input: add --password-stdin');
    const passwordHash = await passwordFromStdin();
    return withStore(config, async (store) => {
      const user = await store.users.byName(name);
      if (!user) throw new CliError(`no such user: ${name}`);
      // Also revokes the account's one-time links (UserRepository.update).
      await store.users.update(user.id, { passwordHash });
      await store.users.rotateCookieId(user.id);
      io.stdout.write(`password of ${name} set; its sessions and one-time links have ended\n`);
      return 0;
    });
  }
  if (sub === 'add') {
    const name = checkedName(raw);
    const passwordHash = values['password-stdin'] ? await passwordFromStdin() : null;
    return withStore(config, async (store) => {
      if (await store.users.byName(name)) throw new CliError(`user ${name} already exists`);
      await store.users.create(name, { admin: Boolean(values.admin), passwordHash });
      io.stdout.write(`added ${name}${values.admin ? ' (admin)' : ''}\n`);
      return 0;
    });
  }
  if (sub === 'invite') {
    const names = [...new Set(args.slice(1).map(checkedName))];
    if (!names.length) throw new UsageError('users invite takes at least one name');
    return withStore(config, async (store) => {
      const found = await Promise.all(names.map((name) => store.users.byName(name)));
      // The link sets a password and nothing else: admin rights are the account's, given when it is created here.
      const demoted = names.filter((_, i) => values.admin && found[i] && !found[i]!.admin);
      if (demoted.length) throw new CliError(`${demoted.join(', ')} exist${demoted.length === 1 ? 's' : ''} and ${demoted.length === 1 ? 'is' : 'are'} not an admin; --admin only applies to new accounts`);
      const origin = linkOrigin(config);
      for (const [i, name] of names.entries()) {
        const code = await createInvitation(store, found[i] ?? await store.users.create(name, { admin: Boolean(values.admin) }), BY_HUB);
        const url = invitationUrl(origin, code);
        // One name: the link alone, for scripts; several: name and link per line, tab-separated.
        io.stdout.write(names.length === 1 ? `${url}\n` : `${name}\t${url}\n`);
      }
      return 0;
    });
  }
  if (sub === 'remove') {
    const name = checkedName(raw);
    return withStore(config, async (store) => {
      const user = await store.users.byName(name);
      if (!user) throw new CliError(`no such user: ${name}`);
      const active = ((await store.servers.forUsers([user.id])).get(user.id) ?? []).filter((s) => s.status !== 'stopped');
      if (active.length) throw new CliError(`${name} has running servers; stop them first (DELETE /hub/api/users/${name}/server)`);
      await store.users.delete(user.id);
      io.stdout.write(`removed ${name}\n`);
      return 0;
    });
  }
  throw new UsageError('users takes add, invite, passwd, list or remove');
}

async function token(config: LabHubConfig, args: string[], values: Record<string, string | boolean | undefined>, io: Io): Promise<number> {
  expectArgs(args, 1, 'token');
  const name = checkedName(args[0]);
  const scopes = typeof values.scopes === 'string' ? values.scopes.split(',').map((s) => s.trim()).filter(Boolean) : ['inherit'];
  for (const s of scopes) {
    const problem = scopeProblem(s);
    if (problem) throw new UsageError(`--scopes: ${problem}`);
  }
  let expiresIn: number | null = null;
  if (values['expires-in'] !== undefined) {
    if (!/^\d{1,9}$/.test(String(values['expires-in'])) || Number(values['expires-in']) === 0) throw new UsageError('--expires-in: expected a positive number of seconds');
    expiresIn = Number(values['expires-in']);
  }
  return withStore(config, async (store) => {
    const user = await store.users.byName(name);
    if (!user) throw new CliError(`no such user: ${name}`);
    const { token: value } = await new TokenService(store).issue({
      owner: { userId: user.id }, scopes, note: typeof values.note === 'string' ? values.note.slice(0, 1000) : 'Requested via labhub token', expiresIn,
    });
    io.stdout.write(`${value}\n`);
    return 0;
  });
}

async function dbUpgrade(config: LabHubConfig, io: Io): Promise<number> {
  const db = await openStateDatabase(config);
  await db.close();
  io.stdout.write('state DB is up to date\n');
  return 0;
}

async function dbBackup(config: LabHubConfig, target: string, io: Io): Promise<number> {
  const source = sqlitePathOf(config);
  if (!source || source === ':memory:') throw new CliError('db backup copies a SQLite state DB; for PostgreSQL use pg_dump');
  if (!existsSync(source)) throw new CliError(`no state DB at ${source}`);
  const file = resolve(target);
  try {
    await backupSqlite(source, file);
  } catch (err) {
    throw new CliError(`backup failed: ${(err as Error).message}`);
  }
  io.stdout.write(`state DB copied to ${file}; keep ${join(config.data_dir, COOKIE_SECRET_FILE)} with it\n`);
  return 0;
}

function isEntryPoint(): boolean {
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1] ?? '')).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }).then(
    (status) => process.exit(status),
    (err: unknown) => {
      createLogger('labhub').fatal({ err }, 'labhub stopped on an unexpected error');
      process.exit(1);
    },
  );
}
