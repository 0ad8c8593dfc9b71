/**
 * LocalSpawner: runs each notebook server as a local process (JupyterHub's LocalProcessSpawner).
 *
 * Two ways to run a server:
 * - **system user** (hub runs as root and a system account with the user's name exists, uid >= minUid): the server
 *   runs as that account (uid, gid and, with `setpriv`, its supplementary groups), HOME/USER/LOGNAME/SHELL set, in
 *   its home directory. Output goes to `<dataDir>/logs/@<uid>/labhub[-<server>].log` (hub-owned, so a user
 *   cannot point it somewhere else with a symlink).
 * - **hub user** (otherwise): the server runs as the hub's own account in `<dataDir>/users/@<uid>` (created 0700),
 *   named from the account's immutable uid so a later account of the same name starts empty; an account from before
 *   uids keeps `<dataDir>/users/<escaped name>` (escapeName never makes `@`). HOME is set to that directory. Output goes to `.labhub[-<server>].log` in it. When that account is
 *   root this needs `allowRoot` (and jupyter's `--allow-root`, added automatically): every user's code would run as
 *   root on the hub's machine.
 *
 * Each server runs detached in its own session/process group with its output in a file, so a hub crash or restart
 * does not take it down and `stop` can signal the whole group. Everything needed to find it again is in the state:
 * `{pid, port, startTime}` (startTime = field 22 of /proc/<pid>/stat, which guards against pid reuse).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fsp, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkedUid } from '../hub/db/user-uid.js';
import { HttpError } from '../hub/errors.js';
import { createLogger, type Logger } from '../hub/log.js';
import type { PollResult, ServerStats, SpawnRequest, SpawnResult, Spawner, SpawnerState, UserKey } from './spawner.js';
import { freePort } from './free-port.js';
import { redactedTail } from './redact.js';
import { SECRETS_DIR_ENV, secretFileEntries } from './secret-files.js';

/** Secret files of servers that run as system accounts (see secretsDirOf). */
const SYSTEM_SECRETS_ROOT = '/run/labhub-secrets';

export const DEFAULT_ENV_KEEP = [
  'PATH', 'LANG', 'LC_ALL', 'LD_LIBRARY_PATH', 'PYTHONPATH', 'VIRTUAL_ENV', 'CONDA_ROOT', 'CONDA_DEFAULT_ENV',
];

export interface SystemAccount {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface LocalSpawnerOptions {
  /** Command that starts a server; default `['jupyterhub-singleuser']` (looked up in the kept PATH). */
  cmd?: string[];
  args?: string[];
  /** Address servers bind; default 127.0.0.1. `0.0.0.0`/`''`/`::` bind everywhere, the hub connects over loopback. */
  ip?: string;
  /** Hub data directory: per-user directories go under `<dataDir>/users/`, system users' logs under `<dataDir>/logs/`. */
  dataDir: string;
  /** Hub environment variables copied to servers; default DEFAULT_ENV_KEEP. */
  envKeep?: string[];
  /** Extra environment, highest priority (admin configuration). */
  environment?: Record<string, string>;
  logger?: Logger;
  /** When the hub runs as root, run servers as the system account of the same name; default true. */
  runAsSystemUsers?: boolean;
  /** Permit a server to run as uid 0 (hub-user mode under a root hub, or a system account with uid 0); default false. */
  allowRoot?: boolean;
  /** System accounts below this uid (daemons such as `postgres`) are never used for servers; default 1000. */
  minUid?: number;
  /** Time between SIGTERM and SIGKILL on stop; default 5000 ms. */
  stopGraceMs?: number;
  /** A server that exits within this time fails the start with its exit code and output; default 300 ms. */
  startupCheckMs?: number;
  /** Test seams: the account database and the hub's uid. */
  lookupAccount?: (name: string) => Promise<SystemAccount | null>;
  hubUid?: number;
  /** `setpriv` used to set supplementary groups for system users; default /usr/bin/setpriv if present, null = never. */
  setprivPath?: string | null;
}

export interface LocalState {
  pid: number;
  port: number;
  /** Process start time in clock ticks since boot (/proc/<pid>/stat field 22); null where /proc is unavailable. */
  startTime: number | null;
  /** The directory of the server's secret files, removed at stop. */
  secretsDir?: string;
}

/** What start() will run; exposed for tests and diagnostics. */
export interface LaunchPlan {
  mode: 'system-user' | 'hub-user';
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  logFile: string;
  /** Set when spawn() itself must switch user (system-user mode without setpriv). */
  uid?: number;
  gid?: number;
  /** Where the request's secret files were written, if it had any. */
  secretsDir?: string;
}

/**
 * A collision-free file name for a user or server name: bytes of the UTF-8 encoding in [a-z0-9_.] are kept (a
 * leading `.` is escaped so `.` and `..` never appear), every other byte (including `-` and upper case) becomes
 * `-xx` (lower-case hex). Decoding is unambiguous, so different names give different results. Results longer than
 * 200 characters become the first 150 characters + `--` + 32 hex digits of the name's SHA-256: `--` never occurs in
 * an unshortened result, so the two forms cannot collide either.
 */
export function escapeName(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  if (name.length === 0 || bytes.toString('utf8') !== name) throw new Error('name must be a non-empty, well-formed string');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const safe = (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x5f || (b === 0x2e && i > 0);
    out += safe ? String.fromCharCode(b) : `-${b.toString(16).padStart(2, '0')}`;
  }
  if (out.length > 200) out = `${out.slice(0, 150)}--${createHash('sha256').update(name).digest('hex').slice(0, 32)}`;
  return out;
}

/** `@<uid>`: the file name of an account's directories (logs, secrets); `@` never occurs in an escaped name. */
export function uidDirName(user: UserKey): string {
  return `@${checkedUid(user.uid)}`;
}

/** The file name of an account's home under `<dataDir>/users/`: `@<uid>`, or the escaped legacy name it was created under. */
export function homeDirName(user: UserKey): string {
  return user.legacyName ? escapeName(user.legacyName) : uidDirName(user);
}

/** Validates a state read back from the DB; null if it does not describe a process this spawner could own. */
export function parseLocalState(state: SpawnerState | null | undefined): LocalState | null {
  if (!state || typeof state !== 'object') return null;
  const { pid, port, startTime } = state as Record<string, unknown>;
  // pid 1 is init and kill(-1) would signal every process: never accept it, nor the hub itself.
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid < 2 || pid === process.pid) return null;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  if (startTime !== undefined && startTime !== null && (typeof startTime !== 'number' || !Number.isSafeInteger(startTime) || startTime < 0)) {
    return null;
  }
  const { secretsDir } = state as Record<string, unknown>;
  const secrets = typeof secretsDir === 'string' && path.isAbsolute(secretsDir) && path.normalize(secretsDir) === secretsDir ? { secretsDir } : {};
  return { pid, port, startTime: typeof startTime === 'number' ? startTime : null, ...secrets };
}

interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  startTime: number;
}

/** /proc/<pid>/stat; null if there is no such process, undefined if /proc cannot tell (not Linux). */
async function readProcStat(pid: number): Promise<ProcStat | null | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') {
      return (await procAvailable()) ? null : undefined;
    }
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces and ')': split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const num = (i: number) => Number(fields[i - 3]);
  const stat = { state: fields[0] ?? '', ppid: num(4), pgrp: num(5), startTime: num(22) };
  return Number.isSafeInteger(stat.startTime) ? stat : undefined;
}

/**
 * Start time of a child this process just spawned. Read synchronously, before the event loop runs again: until then
 * libuv cannot reap the child, so its /proc entry exists even if it already exited.
 */
function readStartTimeSync(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const value = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isSafeInteger(value) ? value : null;
  } catch {
    return null;
  }
}

let procChecked: Promise<boolean> | undefined;
function procAvailable(): Promise<boolean> {
  procChecked ??= fsp.access('/proc/self/stat').then(() => true, () => false);
  return procChecked;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function threadCount(pid: number): Promise<number> {
  try {
    return (await fsp.readdir(`/proc/${pid}/task`)).length;
  } catch {
    return 0;
  }
}

/** Is the process described by the state alive (and still the same process, not a reused pid)? */
async function isAlive(s: LocalState): Promise<boolean> {
  const stat = await readProcStat(s.pid);
  if (stat === null) return false;
  if (stat) {
    if (s.startTime !== null && stat.startTime !== s.startTime) return false;
    if (stat.state === 'X') return false;
    // A zombie has exited, but a multi-threaded process shows its leader as a zombie while its other threads are
    // still exiting and still hold its files (the listening socket): gone only once the leader is the last thread.
    if (stat.state === 'Z') return (await threadCount(s.pid)) > 1;
    return true;
  }
  try {
    process.kill(s.pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/** Every live descendant of pid (kernels run in their own sessions, so signalling the group misses them). */
async function descendants(pid: number): Promise<{ pid: number; startTime: number }[]> {
  let entries: string[];
  try {
    entries = (await fsp.readdir('/proc')).filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  const children = new Map<number, { pid: number; startTime: number }[]>();
  await Promise.all(
    entries.map(async (e) => {
      const stat = await readProcStat(Number(e));
      if (!stat) return;
      const list = children.get(stat.ppid) ?? [];
      list.push({ pid: Number(e), startTime: stat.startTime });
      children.set(stat.ppid, list);
    }),
  );
  const out: { pid: number; startTime: number }[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/** Linux reports process times in USER_HZ, which the kernel's ABI fixes at 100 on every architecture Node runs on. */
const USER_HZ = 100;

/**
 * One process's CPU seconds (its own, and those of children it has reaped, so a kernel that exited still counts) and
 * resident memory; null when it is gone.
 */
async function processUsage(pid: number): Promise<{ cpuSeconds: number; rssBytes: number } | null> {
  try {
    const [stat, status] = await Promise.all([fsp.readFile(`/proc/${pid}/stat`, 'utf8'), fsp.readFile(`/proc/${pid}/status`, 'utf8')]);
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14–17 (utime, stime, cutime, cstime); the slice starts at field 3.
    const ticks = [14, 15, 16, 17].reduce((n, i) => n + Number(fields[i - 3]), 0);
    const rssKb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
    return Number.isFinite(ticks) ? { cpuSeconds: ticks / USER_HZ, rssBytes: rssKb * 1024 } : null;
  } catch {
    return null;
  }
}

const hostForUrl = (ip: string) => (ip.includes(':') ? `[${ip}]` : ip);

/** Where the hub and proxy connect: loopback when the server binds every interface. */
function connectHost(ip: string): string {
  if (ip === '' || ip === '0.0.0.0') return '127.0.0.1';
  if (ip === '::' || ip === '[::]') return '[::1]';
  return hostForUrl(ip);
}

async function defaultLookupAccount(name: string): Promise<SystemAccount | null> {
  const out = await new Promise<string | null>((resolve, reject) => {
    execFile('getent', ['passwd', '--', name], { timeout: 5000, encoding: 'utf8' }, (err, stdout) => {
      if (!err) return resolve(stdout);
      // getent exits 2 when the key is not found; no getent at all means no account database to ask.
      if ((err as { code?: unknown }).code === 2 || errnoCode(err) === 'ENOENT') return resolve(null);
      reject(new Error(`getent passwd failed: ${err.message}`));
    });
  });
  if (!out) return null;
  for (const line of out.split('\n')) {
    const [user, , uid, gid, , home, shell] = line.split(':');
    // `getent passwd 1000` answers for uid 1000: only an exact name match is this user's account.
    if (user === name && uid !== undefined && gid !== undefined && home) {
      return { name, uid: Number(uid), gid: Number(gid), home, shell: shell ?? '/bin/sh' };
    }
  }
  return null;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('Server start was cancelled');
}

const LOG_ROTATE_BYTES = 5 * 1024 * 1024;

export class LocalSpawner implements Spawner {
  readonly kind = 'local';
  private readonly cmd: string[];
  private readonly args: string[];
  private readonly ip: string;
  private readonly dataDir: string;
  private readonly envKeep: string[];
  private readonly environment: Record<string, string>;
  private readonly log: Logger;
  private readonly runAsSystemUsers: boolean;
  private readonly allowRoot: boolean;
  private readonly minUid: number;
  private readonly stopGraceMs: number;
  private readonly startupCheckMs: number;
  private readonly lookupAccount: (name: string) => Promise<SystemAccount | null>;
  private readonly hubUid: number | undefined;
  private readonly setprivOption: string | null | undefined;
  private setprivFound: Promise<string | null> | undefined;
  /** Exit codes of servers this hub process started, by `pid:startTime` (bounded). */
  private readonly exitCodes = new Map<string, number | null>();

  constructor(options: LocalSpawnerOptions) {
    if (!options.dataDir) throw new Error('LocalSpawner needs a dataDir');
    this.cmd = options.cmd?.length ? [...options.cmd] : ['jupyterhub-singleuser'];
    this.args = [...(options.args ?? [])];
    this.ip = options.ip ?? '127.0.0.1';
    this.dataDir = path.resolve(options.dataDir);
    this.envKeep = [...(options.envKeep ?? DEFAULT_ENV_KEEP)];
    this.environment = { ...(options.environment ?? {}) };
    this.log = options.logger ?? createLogger('spawner.local');
    this.runAsSystemUsers = options.runAsSystemUsers ?? true;
    this.allowRoot = options.allowRoot ?? false;
    this.minUid = options.minUid ?? 1000;
    this.stopGraceMs = options.stopGraceMs ?? 5000;
    this.startupCheckMs = options.startupCheckMs ?? 300;
    this.lookupAccount = options.lookupAccount ?? defaultLookupAccount;
    this.hubUid = options.hubUid ?? process.getuid?.();
    this.setprivOption = options.setprivPath;
  }

  private setpriv(): Promise<string | null> {
    if (this.setprivOption !== undefined) return Promise.resolve(this.setprivOption);
    this.setprivFound ??= fsp.access('/usr/bin/setpriv', fsConstants.X_OK).then(() => '/usr/bin/setpriv', () => null);
    return this.setprivFound;
  }

  /** cmd + args; Jupyter refuses to run as root without `--allow-root`, so it is added when the server will be root. */
  private command(asRoot: boolean): string[] {
    const argv = [...this.cmd, ...this.args];
    if (asRoot && !argv.includes('--allow-root')) argv.push('--allow-root');
    return argv;
  }

  /** Refuses a user this hub cannot start a server for as it is set up, before the hub writes any state. */
  async checkUser(user: SpawnRequest['user']): Promise<void> {
    const isRoot = this.hubUid === 0;
    this.checkAccount(user.name, isRoot && this.runAsSystemUsers ? await this.lookupAccount(user.name) : null, isRoot);
  }

  /**
   * Under a root hub a server runs as the user's system account and never as root unless allowed. A refusal is the
   * hub's setup, not the request, so it is a 500 whose message tells the admin what to change.
   */
  private checkAccount(name: string, account: SystemAccount | null, isRoot: boolean): void {
    if (account) {
      if (account.uid === 0 && !this.allowRoot) {
        throw new HttpError(500, `Refusing to run the server of ${name} as root (system account with uid 0). An admin can fix this: give ${name} an ordinary account, or use the Docker spawner (spawner.kind: docker).`);
      }
      if (account.uid !== 0 && account.uid < this.minUid) {
        throw new HttpError(500, `Refusing to run the server of ${name} as system account uid ${account.uid} (below ${this.minUid}). An admin can fix this: give ${name} an ordinary account (uid ${this.minUid} or above).`);
      }
      return;
    }
    if (isRoot && !this.allowRoot) {
      throw new HttpError(
        500,
        `There is no system account named ${name}. LabHub runs as root, so it runs each server as the system account of the same name, never as root. ` +
          `An admin can fix this: create the account (useradd --create-home ${name}), run LabHub as an ordinary user, or use the Docker spawner (spawner.kind: docker).`,
      );
    }
  }

  /** Decides how a server runs and prepares its directories; does not start anything. */
  async prepareLaunch(request: SpawnRequest, port: number): Promise<LaunchPlan> {
    const { user, serverName, prefix } = request;
    if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new Error(`invalid prefix ${JSON.stringify(prefix)}`);
    const logName = serverName ? `labhub-${escapeName(serverName)}.log` : 'labhub.log';
    const bindIp = this.ip === '' ? '0.0.0.0' : this.ip;
    const serviceUrl = `http://${hostForUrl(bindIp)}:${port}${prefix}`;
    const isRoot = this.hubUid === 0;

    const account = isRoot && this.runAsSystemUsers ? await this.lookupAccount(user.name) : null;
    const env: Record<string, string> = {};
    for (const key of this.envKeep) {
      const value = process.env[key];
      if (value !== undefined) env[key] = value;
    }
    let plan: Omit<LaunchPlan, 'env'>;
    this.checkAccount(user.name, account, isRoot);
    if (account) {
      const home = await fsp.stat(account.home).catch(() => null);
      if (!home?.isDirectory()) {
        throw new HttpError(500, `The home directory of ${user.name} (${account.home}) does not exist.`);
      }
      const logDir = this.logDirOf(user);
      await fsp.mkdir(logDir, { recursive: true, mode: 0o700 });
      Object.assign(env, { HOME: account.home, USER: account.name, LOGNAME: account.name, SHELL: account.shell });
      const setpriv = await this.setpriv();
      const command = this.command(account.uid === 0);
      plan = setpriv
        ? {
            mode: 'system-user',
            argv: [setpriv, `--reuid=${account.uid}`, `--regid=${account.gid}`, '--init-groups', '--', ...command],
            cwd: account.home,
            logFile: path.join(logDir, logName),
          }
        : { mode: 'system-user', argv: command, cwd: account.home, logFile: path.join(logDir, logName), uid: account.uid, gid: account.gid };
    } else {
      const dir = this.homeDirOf(user);
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      const st = await fsp.lstat(dir);
      if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
      await fsp.chmod(dir, 0o700);
      let hubUser = '';
      try {
        hubUser = userInfo().username;
      } catch {
        // No passwd entry for the hub's uid (some containers): leave USER unset.
      }
      Object.assign(env, { HOME: dir }, hubUser ? { USER: hubUser, LOGNAME: hubUser } : {});
      plan = { mode: 'hub-user', argv: this.command(isRoot), cwd: dir, logFile: path.join(dir, `.${logName}`) };
    }
    const secretsDir = await this.writeSecretFiles(request, account);
    Object.assign(env, request.env, { JUPYTERHUB_SERVICE_URL: serviceUrl }, secretsDir ? { [SECRETS_DIR_ENV]: secretsDir } : {}, this.environment);
    return { ...plan, env, ...(secretsDir ? { secretsDir } : {}) };
  }

  /** The home of a server run as the hub's account. */
  private homeDirOf(user: UserKey): string {
    return path.join(this.dataDir, 'users', homeDirName(user));
  }

  private logDirOf(user: UserKey): string {
    return path.join(this.dataDir, 'logs', uidDirName(user));
  }

  /**
   * When an admin purges a deleted account: its home under the data directory and its log directory. A system
   * account's own home is the system's, never removed here.
   */
  async removeUserData(user: UserKey & { name: string }): Promise<string[]> {
    const removed: string[] = [];
    for (const dir of [this.homeDirOf(user), this.logDirOf(user)]) {
      if (!(await fsp.lstat(dir).catch(() => null))) continue;
      await fsp.rm(dir, { recursive: true, force: true });
      removed.push(`directory ${dir}`);
    }
    this.log.info({ user: user.name, removed }, 'removed the data of a deleted user');
    return removed;
  }

  /**
   * Where a server's secret files go: under the hub's data directory when the server runs as the hub's account;
   * under SYSTEM_SECRETS_ROOT for a system account, which cannot traverse the hub's 0700 data directory.
   */
  private secretsDirOf(user: UserKey, server: string, account: SystemAccount | null): string {
    const leaf = `${uidDirName(user)}--${server ? `server-${escapeName(server)}` : 'default'}`;
    return path.join(account ? SYSTEM_SECRETS_ROOT : path.join(this.dataDir, 'secrets'), leaf);
  }

  private ownsSecretsDir(dir: string): boolean {
    return [SYSTEM_SECRETS_ROOT, path.join(this.dataDir, 'secrets')].some((root) => path.dirname(dir) === root);
  }

  /**
   * Writes the request's secret files afresh: 0600 files in a 0700 directory, all created by the hub and only then
   * handed to the server's account, so the account has nothing to swap for a symlink while the hub writes.
   */
  private async writeSecretFiles(request: Pick<SpawnRequest, 'user' | 'serverName' | 'secretFiles'>, account: SystemAccount | null): Promise<string | null> {
    const entries = secretFileEntries(request.secretFiles);
    if (!entries.length) return null;
    const dir = this.secretsDirOf(request.user, request.serverName, account);
    await fsp.mkdir(path.dirname(dir), { recursive: true, mode: account ? 0o711 : 0o700 });
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.mkdir(dir, { mode: 0o700 });
    for (const [name, content] of entries) {
      const file = path.join(dir, name);
      await fsp.writeFile(file, content, { mode: 0o600, flag: 'wx' });
      if (account) await fsp.chown(file, account.uid, account.gid);
    }
    if (account) await fsp.chown(dir, account.uid, account.gid);
    return dir;
  }

  async start(request: SpawnRequest): Promise<SpawnResult> {
    const { signal } = request;
    if (signal.aborted) throw abortReason(signal);
    const port = await freePort(this.ip);
    const plan = await this.prepareLaunch(request, port);
    if (signal.aborted) throw abortReason(signal);
    const program = path.basename(this.cmd[0]!);
    request.progress({ progress: 20, message: `Starting ${program}` });

    const { fd, offset } = await this.openLog(plan.logFile, plan.argv);
    let child: ChildProcess;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let spawnError: Error | undefined;
    let exitedNow: Promise<void>;
    let startTime: number | null = null;
    try {
      child = spawn(plan.argv[0]!, plan.argv.slice(1), {
        cwd: plan.cwd,
        env: plan.env,
        detached: true,
        stdio: ['ignore', fd.fd, fd.fd],
        ...(plan.uid !== undefined ? { uid: plan.uid, gid: plan.gid } : {}),
      });
      if (child.pid !== undefined) startTime = readStartTimeSync(child.pid);
      // Listen before anything else runs: 'error' (command not found) and 'exit' may come on the next tick.
      exitedNow = new Promise<void>((resolve) => {
        child.once('exit', (code, sig) => {
          exited = { code, signal: sig };
          resolve();
        });
        child.on('error', (err) => {
          spawnError ??= err;
          resolve();
        });
      });
    } finally {
      await fd.close();
    }
    const pid = child.pid;
    if (pid === undefined) {
      await exitedNow;
      const code = errnoCode(spawnError);
      this.log.warn({ user: request.user.name, server: request.serverName, code }, 'server command could not be started');
      throw new HttpError(500, `Could not start ${program}: ${code === 'ENOENT' ? 'command not found' : (code ?? 'unknown error')}.`);
    }
    const state: LocalState = { pid, port, startTime, ...(plan.secretsDir ? { secretsDir: plan.secretsDir } : {}) };
    const key = `${pid}:${state.startTime}`;
    if (exited) this.rememberExit(key, exited.code);
    else child.once('exit', (code) => this.rememberExit(key, code));
    child.unref();
    this.log.info({ user: request.user.name, server: request.serverName, serverPid: pid, port, mode: plan.mode }, 'server process started');

    const kill = async () => {
      await this.stop({ ...state }, { now: true }).catch((err: unknown) => this.log.error({ err, serverPid: pid }, 'could not kill server'));
    };
    try {
      await request.saveState({ ...state });
    } catch (err) {
      await kill();
      throw err;
    }
    if (signal.aborted) {
      await kill();
      throw abortReason(signal);
    }
    request.progress({ progress: 40, message: `Server process ${pid} started, waiting for it to come up` });

    let onAbort: (() => void) | undefined;
    const aborted = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal.addEventListener('abort', onAbort, { once: true });
    });
    await Promise.race([exitedNow, aborted, sleep(this.startupCheckMs)]);
    if (onAbort) signal.removeEventListener('abort', onAbort);
    if (signal.aborted) {
      await kill();
      throw abortReason(signal);
    }
    if (exited) {
      const output = redactedTail(await this.readLog(plan.logFile, offset), plan.env);
      const how = exited.code !== null ? `exited with code ${exited.code}` : `was killed by ${exited.signal}`;
      this.log.warn({ user: request.user.name, server: request.serverName, serverPid: pid, ...exited }, 'server exited during startup');
      throw new HttpError(500, `${program} ${how} while starting.${output ? `\nLast output:\n${output}` : ''}`);
    }
    return { url: `http://${connectHost(this.ip)}:${port}`, state: { ...state } };
  }

  async poll(state: SpawnerState): Promise<PollResult> {
    const s = parseLocalState(state);
    if (!s) return { running: false, exitCode: null };
    if (await isAlive(s)) return { running: true };
    const key = `${s.pid}:${s.startTime}`;
    return { running: false, exitCode: this.exitCodes.has(key) ? this.exitCodes.get(key)! : null };
  }

  /** CPU time and resident memory of the server and every process under it (its kernels, their children). */
  async stats(state: SpawnerState): Promise<ServerStats | undefined> {
    const s = parseLocalState(state);
    if (!s || !(await isAlive(s))) return undefined;
    const tree = [s.pid, ...(await descendants(s.pid)).map((d) => d.pid)];
    const each = await Promise.all(tree.map(processUsage));
    const known = each.filter((u): u is { cpuSeconds: number; rssBytes: number } => u !== null);
    if (!known.length) return undefined;
    return { cpuSecondsTotal: known.reduce((n, u) => n + u.cpuSeconds, 0), memBytes: known.reduce((n, u) => n + u.rssBytes, 0) };
  }

  async stop(state: SpawnerState, options: { now?: boolean } = {}): Promise<void> {
    const s = parseLocalState(state);
    if (!s) return;
    await this.stopProcess(s, options);
    if (s.secretsDir && this.ownsSecretsDir(s.secretsDir)) await fsp.rm(s.secretsDir, { recursive: true, force: true });
  }

  private async stopProcess(s: LocalState, options: { now?: boolean }): Promise<void> {
    if (!(await isAlive(s))) return;
    const stat = await readProcStat(s.pid);
    // A detached server leads its own process group; if the pid no longer does, signal only that process.
    const group = stat ? stat.pgrp === s.pid : true;
    const tree = await descendants(s.pid);
    if (!options.now && this.stopGraceMs > 0) {
      this.signal(s.pid, group, 'SIGTERM');
      if (await this.waitGone(s, this.stopGraceMs)) {
        await this.killLeftovers(tree);
        return;
      }
      this.log.warn({ serverPid: s.pid }, 'server did not stop within the grace period; killing it');
    }
    tree.push(...(await descendants(s.pid)));
    this.signal(s.pid, group, 'SIGKILL');
    await this.killLeftovers(tree);
    if (!(await this.waitGone(s, 5000))) throw new Error(`server process ${s.pid} did not exit after SIGKILL`);
  }

  private signal(pid: number, group: boolean, sig: NodeJS.Signals): void {
    try {
      process.kill(group ? -pid : pid, sig);
    } catch (err) {
      if (errnoCode(err) !== 'ESRCH') throw err;
      try {
        process.kill(pid, sig);
      } catch (err2) {
        if (errnoCode(err2) !== 'ESRCH') throw err2;
      }
    }
  }

  /** Kills descendants that outlived the server (kernels run in their own sessions), if they are still the same processes. */
  private async killLeftovers(tree: { pid: number; startTime: number }[]): Promise<void> {
    const killed: LocalState[] = [];
    for (const p of tree) {
      const stat = await readProcStat(p.pid);
      if (!stat || stat.startTime !== p.startTime || stat.state === 'Z') continue;
      try {
        process.kill(p.pid, 'SIGKILL');
        killed.push({ pid: p.pid, port: 1, startTime: p.startTime });
      } catch {
        // Gone meanwhile.
      }
    }
    if (killed.length) this.log.info({ serverPids: killed.map((k) => k.pid) }, 'killed processes the server left behind');
    // SIGKILL is not instantaneous: wait, so that "stopped" means the kernels are gone too.
    await Promise.all(killed.map((k) => this.waitGone(k, 5000)));
  }

  private async waitGone(s: LocalState, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (!(await isAlive(s))) return true;
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(50, Math.max(1, deadline - Date.now())));
    }
  }

  private rememberExit(key: string, code: number | null): void {
    this.exitCodes.set(key, code);
    if (this.exitCodes.size > 1000) this.exitCodes.delete(this.exitCodes.keys().next().value!);
  }

  /** Opens the server's log for appending without following symlinks; returns where this run's output starts. */
  private async openLog(file: string, argv: string[]): Promise<{ fd: fsp.FileHandle; offset: number }> {
    const existing = await fsp.lstat(file).catch(() => null);
    if (existing?.isFile() && existing.size > LOG_ROTATE_BYTES) await fsp.rename(file, `${file}.1`);
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW;
    const fd = await fsp.open(file, flags, 0o600);
    try {
      const st = await fd.stat();
      if (!st.isFile()) throw new Error(`${file} is not a regular file`);
      await fd.write(`[labhub] ${new Date().toISOString()} starting ${argv.map((a) => JSON.stringify(a)).join(' ')}\n`);
      return { fd, offset: (await fd.stat()).size };
    } catch (err) {
      await fd.close();
      throw err;
    }
  }

  private async readLog(file: string, offset: number): Promise<string> {
    let handle: fsp.FileHandle | undefined;
    try {
      handle = await fsp.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
      const size = (await handle.stat()).size;
      const start = Math.max(offset, size - 16384);
      const buf = Buffer.alloc(Math.max(0, size - start));
      await handle.read(buf, 0, buf.length, start);
      return buf.toString('utf8');
    } catch {
      return '';
    } finally {
      await handle?.close();
    }
  }
}
