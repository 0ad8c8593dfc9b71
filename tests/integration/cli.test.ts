import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, Browser, eventually, HubProcess, LABHUB, runLabhub, xsrfFromHtml } from '../helpers/hub.js';
import { freePort } from '../helpers/ports.js';
import { main } from '../../hub/main.js';

/**
 * The `labhub` command (issue 2, Operations): the real bin (dist/hub/main.js) run as a child process, against
 * throwaway data dirs and, where a command's effect must be seen by a hub, a running `labhub start`. Checks that
 * need many commands call `main()` in this process instead (see `cli`).
 */

const tmpDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'labhub-cli-test-'));
  tmpDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

/** The test runner's environment without any LABHUB_* or CONFIGPROXY_* variable, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('LABHUB_') && !k.startsWith('CONFIGPROXY_')) env[k] = v;
  }
  return { ...env, ...extra };
}

/** `labhub <args>` with its own data dir (LABHUB_DATA_DIR) unless env says otherwise. */
function labhub(args: string[], env: Record<string, string>, stdin?: string) {
  return runLabhub(args, cleanEnv(env), stdin);
}

/**
 * The same command run in this process through `main()` (hub/main.ts), the function the bin calls before
 * `process.exit(status)`. Each child process costs ~0.6 s of imports, so the many users/token/db checks below run
 * here; the bin itself is exercised by every other test.
 */
async function cli(args: string[], env: Record<string, string>, stdin?: string): Promise<{ status: number; stdout: string; stderr: string }> {
  // Writable calls write() synchronously here, so everything main() wrote is collected when it returns.
  const sink = () => {
    const chunks: string[] = [];
    const stream = new Writable({ write(chunk: Buffer | string, _encoding, done) { chunks.push(String(chunk)); done(); } });
    return { stream, text: () => chunks.join('') };
  };
  const stdout = sink();
  const stderr = sink();
  let status: number;
  let unexpected = '';
  try {
    status = await main(args, cleanEnv(env), { stdout: stdout.stream, stderr: stderr.stream, stdin: Readable.from(stdin === undefined ? [] : [stdin]) });
  } catch (e) {
    // The bin logs these as fatal and exits 1.
    unexpected = `unexpected error: ${(e as Error).stack ?? String(e)}\n`;
    status = 1;
  }
  return { status, stdout: stdout.text(), stderr: stderr.text() + unexpected };
}

/**
 * `labhub <args>` for a command that might not return (start): waits for it to exit, or kills it after `timeoutMs`
 * and reports `status: null`.
 */
function runUntilExit(args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [LABHUB, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ status: killed ? null : code, stdout, stderr });
    });
  });
}

/** An environment for `labhub start` on free ports, so a start that should fail but does not harms nothing. */
async function startEnv(dataDir: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const [port, hubPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  return cleanEnv({
    LABHUB_DATA_DIR: dataDir, LABHUB_PORT: String(port), LABHUB_IP: '127.0.0.1', LABHUB_HUB__PORT: String(hubPort),
    LABHUB_PROXY__API_URL: `http://127.0.0.1:${apiPort}`, LABHUB_SPAWNER__KIND: 'instant', ...extra,
  });
}

describe('usage', () => {
  it('labhub --help exits 0 and lists every command and common flag', async () => {
    const { status, stdout, stderr } = await labhub(['--help'], {});
    expect(status, stderr).toBe(0);
    for (const word of ['start', 'proxy', 'users add', 'users list', 'users remove', 'token', 'db upgrade',
      '--config', '--data-dir', '--port', '--password-stdin', '--scopes', '--expires-in', '--note', '--admin']) {
      expect(stdout).toContain(word);
    }
    expect((await labhub(['-h'], {})).stdout).toBe(stdout);
  });

  it('--help works after every command', async () => {
    const results = await Promise.all([['users', 'add'], ['token'], ['db', 'upgrade']]
      .map((cmd) => labhub([...cmd, '--help'], { LABHUB_DATA_DIR: tempDir() })));
    for (const r of results) {
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('users add');
    }
  });

  it('labhub proxy --help exits 0 and shows the proxy flags', async () => {
    const { status, stdout } = await labhub(['proxy', '--help'], {});
    expect(status).toBe(0);
    for (const flag of ['--ip', '--port', '--api-ip', '--api-port', '--default-target', '--error-target']) expect(stdout).toContain(flag);
  });

  it('labhub proxy --help names the command it documents (labhub proxy)', async () => {
    const { stdout } = await labhub(['proxy', '--help'], {});
    expect(stdout.split('\n')[0]).toContain('labhub proxy');
  });

  it('an unknown command exits 2 and names it', async () => {
    const { status, stderr } = await labhub(['frobnicate'], { LABHUB_DATA_DIR: tempDir() });
    expect(status).toBe(2);
    expect(stderr).toContain('frobnicate');
  });

  it('an unknown subcommand exits 2', async () => {
    const [users, db] = await Promise.all([
      labhub(['users', 'frob'], { LABHUB_DATA_DIR: tempDir() }),
      labhub(['db', 'downgrade'], { LABHUB_DATA_DIR: tempDir() }),
    ]);
    expect(users.status).toBe(2);
    expect(users.stderr).toMatch(/users takes .*add.*list.*remove/);
    expect(db.status).toBe(2);
    expect(db.stderr).toContain('upgrade');
  });

  it('an unknown flag exits 2 and names it', async () => {
    const { status, stderr } = await labhub(['users', 'list', '--frobnicate'], { LABHUB_DATA_DIR: tempDir() });
    expect(status).toBe(2);
    expect(stderr).toContain('--frobnicate');
  });

  it('--port abc exits 2 with a message naming --port', async () => {
    const dataDir = tempDir();
    const { status, stderr } = await runUntilExit(['start', '--port', 'abc'], await startEnv(dataDir));
    expect(status).toBe(2);
    expect(stderr).toContain('--port');
    expect(stderr).toContain('abc');
    expect(existsSync(join(dataDir, 'labhub.sqlite'))).toBe(false);
  });

  it('--port 70000 and --log-level loud are refused by the config check (exit 1, naming the key)', async () => {
    const [port, level] = await Promise.all([
      runUntilExit(['start', '--port', '70000'], await startEnv(tempDir())),
      runUntilExit(['start', '--log-level', 'loud'], await startEnv(tempDir())),
    ]);
    expect(port.status).toBe(1);
    expect(port.stderr).toMatch(/\bport: .*65535/);
    expect(level.status).toBe(1);
    expect(level.stderr).toMatch(/log_level: /);
  });
});

describe('bad configuration stops start-up', () => {
  it('LABHUB_SPAWNER__START_TIMEOUT=soon: exit 1, message names the key, nothing is created', async () => {
    const dataDir = join(tempDir(), 'data');
    const { status, stderr, stdout } = await runUntilExit(['start'], await startEnv(dataDir, { LABHUB_SPAWNER__START_TIMEOUT: 'soon' }));
    expect(status).toBe(1);
    expect(stderr).toContain('spawner.start_timeout');
    expect(stderr).toMatch(/expected number/);
    expect(stdout + stderr).not.toContain('LabHub is running');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('a config file with a typo (--config): exit 1, message names the file and the key', async () => {
    const dir = tempDir();
    const file = join(dir, 'labhub.yaml');
    writeFileSync(file, 'spawnr:\n  start_timeout: 90\n');
    const { status, stderr } = await runUntilExit(['start', '--config', file], await startEnv(join(dir, 'data')));
    expect(status).toBe(1);
    expect(stderr).toContain('spawnr: unknown key');
    expect(stderr).toContain(file);
  });

  it('a config file that does not exist (LABHUB_CONFIG): exit 1', async () => {
    const dir = tempDir();
    const { status, stderr } = await runUntilExit(['start'], await startEnv(join(dir, 'data'), { LABHUB_CONFIG: join(dir, 'missing.yaml') }));
    expect(status).toBe(1);
    expect(stderr).toContain('missing.yaml');
  });
});

describe('users, data dir, db upgrade (no hub running)', () => {
  it('users add, list, remove', async () => {
    const env = { LABHUB_DATA_DIR: tempDir() };
    const added = await labhub(['users', 'add', 'alice'], env);
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toContain('alice');
    const admin = await labhub(['users', 'add', 'root-admin', '--admin'], env);
    expect(admin.status, admin.stderr).toBe(0);
    expect((await labhub(['users', 'add', 'Bob'], env)).status).toBe(0);

    const list = await labhub(['users', 'list'], env);
    expect(list.status, list.stderr).toBe(0);
    // Sorted by name, admins marked, names normalized (Bob -> bob).
    expect(list.stdout).toBe('alice\nbob\nroot-admin\tadmin\n');

    const removed = await labhub(['users', 'remove', 'bob'], env);
    expect(removed.status, removed.stderr).toBe(0);
    expect((await labhub(['users', 'list'], env)).stdout).toBe('alice\nroot-admin\tadmin\n');
  });

  it('users add: a duplicate is an error and changes nothing', async () => {
    const env = { LABHUB_DATA_DIR: tempDir() };
    expect((await cli(['users', 'add', 'alice'], env)).status).toBe(0);
    const again = await cli(['users', 'add', 'alice', '--admin'], env);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/alice already exists/);
    const upper = await cli(['users', 'add', 'ALICE'], env);
    expect(upper.status).not.toBe(0);
    expect((await cli(['users', 'list'], env)).stdout).toBe('alice\n');
  });

  it('users add: invalid names are refused with the reason', async () => {
    const env = { LABHUB_DATA_DIR: tempDir() };
    const [slash, long, dots, missing] = await Promise.all([
      cli(['users', 'add', 'a/b'], env),
      cli(['users', 'add', 'x'.repeat(300)], env),
      cli(['users', 'add', '..'], env),
      cli(['users', 'add'], env),
    ]);
    expect(slash.status).not.toBe(0);
    expect(slash.stderr).toMatch(/invalid username: .*'\/'/);
    expect(long.status).not.toBe(0);
    expect(long.stderr).toMatch(/invalid username: .*at most 64/);
    expect(long.stderr.length).toBeLessThan(500);
    expect(dots.status).not.toBe(0);
    expect(dots.stderr).toContain('invalid username');
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/username is required/);
    expect((await cli(['users', 'list'], env)).stdout).toBe('');
  });

  it('extra arguments are refused, not silently ignored (`jupyterhub token a b`: "Must specify exactly one username")', async () => {
    const env = { LABHUB_DATA_DIR: tempDir() };
    const add = await cli(['users', 'add', 'alice', 'bob'], env);
    expect(add.status).not.toBe(0);
    expect(add.stderr).toContain('bob');
    expect((await cli(['users', 'add', 'alice'], env)).status).toBe(0);
    const token = await cli(['token', 'alice', 'bob'], env);
    expect(token.status).not.toBe(0);
    expect(token.stdout).toBe('');
    expect((await cli(['users', 'list'], env)).stdout).toBe('alice\n');
  });

  it('users remove: a missing user is an error', async () => {
    const env = { LABHUB_DATA_DIR: tempDir() };
    const { status, stderr } = await cli(['users', 'remove', 'ghost'], env);
    expect(status).not.toBe(0);
    expect(stderr).toMatch(/no such user: ghost/);
  });

  it('users add --password-stdin refuses a too-short or blank password and creates no user', async () => {
    const env = { LABHUB_DATA_DIR: tempDir() };
    const [short, blank] = await Promise.all([
      cli(['users', 'add', 'carol', '--admin', '--password-stdin'], env, 'short\n'),
      cli(['users', 'add', 'dave', '--password-stdin'], env, '          \n'),
    ]);
    expect(short.status).not.toBe(0);
    expect(short.stderr).toMatch(/password refused: at least 8 characters/);
    expect(blank.status).not.toBe(0);
    expect(blank.stderr).toMatch(/password refused/);
    expect((await cli(['users', 'list'], env)).stdout).toBe('');
    // The minimum follows authenticator.minimum_password_length.
    const longer = await cli(['users', 'add', 'carol', '--password-stdin'], { ...env, LABHUB_AUTHENTICATOR__MINIMUM_PASSWORD_LENGTH: '12' }, 'eleven-char\n');
    expect(longer.status).not.toBe(0);
    expect(longer.stderr).toMatch(/at least 12 characters/);
  });

  it('--data-dir is respected and wins over LABHUB_DATA_DIR', async () => {
    const flagDir = join(tempDir(), 'from-flag');
    const envDir = join(tempDir(), 'from-env');
    const added = await labhub(['users', 'add', 'erin', '--data-dir', flagDir], { LABHUB_DATA_DIR: envDir });
    expect(added.status, added.stderr).toBe(0);
    expect(existsSync(join(flagDir, 'labhub.sqlite'))).toBe(true);
    expect(existsSync(join(envDir, 'labhub.sqlite'))).toBe(false);
    expect((await cli(['users', 'list', '--data-dir', flagDir], {})).stdout).toBe('erin\n');
    expect((await cli(['users', 'list', `--data-dir=${flagDir}`], {})).stdout).toBe('erin\n');
  });

  it('--config FILE is read (here: data_dir and db_url from the file)', async () => {
    const dir = tempDir();
    const file = join(dir, 'labhub.yaml');
    writeFileSync(file, `data_dir: ${join(dir, 'state')}\ndb_url: sqlite:hub-state.db\n`);
    const added = await cli(['users', 'add', 'frank', '--config', file], {});
    expect(added.status, added.stderr).toBe(0);
    expect(existsSync(join(dir, 'state', 'hub-state.db'))).toBe(true);
  });

  it('token_expires_in_max_seconds does not apply to labhub token (docs/config.md; as `jupyterhub token`)', async () => {
    const env = { LABHUB_DATA_DIR: tempDir(), LABHUB_TOKEN_EXPIRES_IN_MAX_SECONDS: '3600' };
    expect((await cli(['users', 'add', 'ivy'], env)).status).toBe(0);
    const longer = await cli(['token', 'ivy', '--expires-in', '7200'], env);
    expect(longer.status, longer.stderr).toBe(0);
    expect(longer.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    const plain = await cli(['token', 'ivy'], env);
    expect(plain.status, plain.stderr).toBe(0);
    const db = new SQLite(join(env.LABHUB_DATA_DIR, 'labhub.sqlite'), { readonly: true });
    try {
      const rows = db.prepare('SELECT expires_at FROM api_tokens ORDER BY id').all() as Array<{ expires_at: string | null }>;
      expect(rows).toHaveLength(2);
      expect(Date.parse(rows[0]!.expires_at!)).toBeGreaterThan(Date.now() + 7000 * 1000);
      expect(rows[1]!.expires_at).toBeNull();
    } finally {
      db.close();
    }
  });

  it('db upgrade creates and migrates the state DB, and is idempotent', async () => {
    const dataDir = tempDir();
    const first = await cli(['db', 'upgrade'], { LABHUB_DATA_DIR: dataDir });
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/up to date/);
    expect(existsSync(join(dataDir, 'labhub.sqlite'))).toBe(true);
    const second = await cli(['db', 'upgrade'], { LABHUB_DATA_DIR: dataDir });
    expect(second.status, second.stderr).toBe(0);
    const db = new SQLite(join(dataDir, 'labhub.sqlite'), { readonly: true });
    try {
      const names = db.prepare('SELECT name FROM labhub_migrations ORDER BY name').all() as Array<{ name: string }>;
      expect(names.length).toBeGreaterThan(0);
      expect(new Set(names.map((n) => n.name)).size).toBe(names.length);
    } finally {
      db.close();
    }
  });

  it('a DB newer than the code (unknown migration 999-future): start and db upgrade refuse and say so', async () => {
    const dataDir = tempDir();
    expect((await cli(['users', 'add', 'gina'], { LABHUB_DATA_DIR: dataDir })).status).toBe(0);
    const db = new SQLite(join(dataDir, 'labhub.sqlite'));
    try {
      db.prepare('INSERT INTO labhub_migrations (name, timestamp) VALUES (?, ?)').run('999-future', new Date().toISOString());
    } finally {
      db.close();
    }

    const upgrade = await labhub(['db', 'upgrade'], { LABHUB_DATA_DIR: dataDir });
    expect(upgrade.status).toBe(1);
    expect(upgrade.stderr).toMatch(/newer/);
    expect(upgrade.stderr).toContain('999-future');
    expect(upgrade.stdout).not.toMatch(/up to date/);

    const start = await runUntilExit(['start'], await startEnv(dataDir));
    expect(start.status).toBe(1);
    expect(start.stderr).toMatch(/newer/);
    expect(start.stdout + start.stderr).not.toContain('LabHub is running');

    // The other commands refuse the DB too, rather than writing to it.
    const add = await cli(['users', 'add', 'henry'], { LABHUB_DATA_DIR: dataDir });
    expect(add.status).not.toBe(0);
    expect(add.stderr).toMatch(/newer/);
  });
});

describe('token, against a running hub (instant spawner, dummy auth)', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant', LABHUB_AUTHENTICATOR__KIND: 'dummy' } });
  let adminToken = '';

  beforeAll(async () => {
    await hub.start();
    for (const args of [['alice'], ['bob'], ['root-admin', '--admin']]) {
      const r = await cli(['users', 'add', ...args], hub.env);
      expect(r.status, r.stderr).toBe(0);
    }
    adminToken = (await cli(['token', 'root-admin'], hub.env)).stdout.trim();
  });
  afterAll(async () => {
    await api(hub.url, adminToken, 'DELETE', '/users/alice/server').catch(() => undefined);
    await hub.cleanup();
  });

  it('labhub token prints one token that works on GET /hub/api/user', async () => {
    const { status, stdout, stderr } = await hub.cli(['token', 'alice']);
    expect(status, stderr).toBe(0);
    expect(stdout).toMatch(/^[A-Za-z0-9_-]{32,}\n$/);
    const token = stdout.trim();
    const me = await api(hub.url, token, 'GET', '/user');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ kind: 'user', name: 'alice', admin: false });
    // Default: the token inherits its owner's permissions, like `jupyterhub token`.
    expect((await api(hub.url, token, 'GET', '/users/alice/tokens')).status).toBe(200);
    expect((await api(hub.url, 'not-a-token-at-all-0000000000000', 'GET', '/user')).status).toBe(403);
    // Two calls, two different tokens.
    expect((await cli(['token', 'alice'], hub.env)).stdout.trim()).not.toBe(token);
  });

  it('an admin token from labhub token administers', async () => {
    const users = await api(hub.url, adminToken, 'GET', '/users');
    expect(users.status).toBe(200);
    expect((users.body as Array<{ name: string }>).map((u) => u.name).sort()).toEqual(['alice', 'bob', 'root-admin']);
  });

  it('--scopes limits the token to those scopes, filters included', async () => {
    const { status, stdout, stderr } = await cli(['token', 'alice', '--scopes', 'read:users:name!user=alice,read:users:activity!user=alice'], hub.env);
    expect(status, stderr).toBe(0);
    const token = stdout.trim();
    const me = await api(hub.url, token, 'GET', '/user');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ name: 'alice' });
    const scopes = (me.body as { scopes: string[] }).scopes;
    expect(scopes).toContain('read:users:activity!user=alice');
    expect(scopes).not.toContain('read:tokens!user=alice');
    // Outside the scopes: alice's own tokens, and everything about bob.
    expect((await api(hub.url, token, 'GET', '/users/alice/tokens')).status).toBe(403);
    expect([403, 404]).toContain((await api(hub.url, token, 'GET', '/users/bob')).status);
    expect((await api(hub.url, token, 'POST', '/users/alice/server')).status).toBe(403);
  });

  it('GET /hub/api/user lists a --scopes token\'s scopes plus the identify scopes every token has (as JupyterHub 5)', async () => {
    // JupyterHub's get_scopes_for() adds identify_scopes(owner) to every token, and /hub/api/user lists them.
    const identify = ['read:users:groups!user=alice', 'read:users:name!user=alice'];
    for (const given of ['read:users:activity!user=alice', 'read:users:name!user=alice,read:users:activity!user=alice']) {
      const token = (await cli(['token', 'alice', '--scopes', given], hub.env)).stdout.trim();
      const me = await api(hub.url, token, 'GET', '/user');
      expect((me.body as { scopes: string[] }).scopes, given).toEqual(['read:users:activity!user=alice', ...identify]);
    }
  });

  it('--scopes cannot give a token more than its owner holds', async () => {
    const r = await cli(['token', 'alice', '--scopes', 'admin:users,list:users'], hub.env);
    if (r.status === 0) {
      const token = r.stdout.trim();
      expect([403, 404]).toContain((await api(hub.url, token, 'GET', '/users/bob')).status);
      expect((await api(hub.url, token, 'POST', '/users/mallory')).status).toBe(403);
      expect((await api(hub.url, token, 'DELETE', '/users/bob')).status).toBe(403);
    } else {
      expect(r.stderr).toMatch(/admin:users/);
    }
    expect((await api(hub.url, adminToken, 'GET', '/users/bob')).status).toBe(200);
    expect((await api(hub.url, adminToken, 'GET', '/users/mallory')).status).toBe(404);
  });

  it('--expires-in and --note are recorded on the token', async () => {
    const before = Date.now();
    const { status, stdout, stderr } = await cli(['token', 'alice', '--expires-in', '60', '--note', 'nightly report script'], hub.env);
    expect(status, stderr).toBe(0);
    const token = stdout.trim();
    const me = await api(hub.url, token, 'GET', '/user');
    expect(me.status).toBe(200);
    const id = (me.body as { token_id: string }).token_id;
    const model = await api(hub.url, adminToken, 'GET', `/users/alice/tokens/${id}`);
    expect(model.status).toBe(200);
    const { expires_at: expiresAt, note } = model.body as { expires_at: string; note: string };
    expect(note).toBe('nightly report script');
    const expires = Date.parse(expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 55_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 65_000);

    // Without --expires-in: no expiry, and a default note.
    const plain = (await cli(['token', 'alice'], hub.env)).stdout.trim();
    const plainId = ((await api(hub.url, plain, 'GET', '/user')).body as { token_id: string }).token_id;
    const plainModel = (await api(hub.url, adminToken, 'GET', `/users/alice/tokens/${plainId}`)).body as { expires_at: string | null; note: string };
    expect(plainModel.expires_at).toBeNull();
    expect(plainModel.note).toBeTruthy();
  });

  it('a token from --expires-in stops working when it expires', async () => {
    const token = (await cli(['token', 'alice', '--expires-in', '1'], hub.env)).stdout.trim();
    expect((await api(hub.url, token, 'GET', '/user')).status).toBe(200);
    await eventually(async () => (await api(hub.url, token, 'GET', '/user')).status === 403, 10_000, 250);
  });

  it('bad --scopes and --expires-in values are errors that name the flag', async () => {
    const [scope, zero, word, negative] = await Promise.all([
      cli(['token', 'alice', '--scopes', 'read:users,no-such-scope'], hub.env),
      cli(['token', 'alice', '--expires-in', '0'], hub.env),
      cli(['token', 'alice', '--expires-in', 'soon'], hub.env),
      cli(['token', 'alice', '--expires-in=-5'], hub.env),
    ]);
    expect(scope.status).not.toBe(0);
    expect(scope.stderr).toContain('--scopes');
    expect(scope.stderr).toContain('no-such-scope');
    expect(scope.stdout).toBe('');
    for (const r of [zero, word, negative]) {
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('--expires-in');
      expect(r.stdout).toBe('');
    }
  });

  it('token for a missing user is an error and prints no token', async () => {
    const { status, stdout, stderr } = await cli(['token', 'ghost'], hub.env);
    expect(status).not.toBe(0);
    expect(stderr).toMatch(/no such user: ghost/);
    expect(stdout).toBe('');
    expect((await cli(['token'], hub.env)).status).not.toBe(0);
  });

  it('users remove refuses a user whose server runs, and works once it is stopped', async () => {
    const start = await api(hub.url, adminToken, 'POST', '/users/alice/server');
    expect([201, 202]).toContain(start.status);
    await eventually(async () => {
      const u = await api(hub.url, adminToken, 'GET', '/users/alice');
      return (u.body as { server: string | null }).server !== null;
    }, 15_000);
    const refused = await cli(['users', 'remove', 'alice'], hub.env);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/running servers/);
    const stop = await api(hub.url, adminToken, 'DELETE', '/users/alice/server');
    expect([202, 204]).toContain(stop.status);
    await eventually(async () => {
      const u = await api(hub.url, adminToken, 'GET', '/users/alice');
      return (u.body as { server: string | null; pending: string | null }).server === null && (u.body as { pending: string | null }).pending === null;
    }, 15_000);
    const removed = await cli(['users', 'remove', 'alice'], hub.env);
    expect(removed.status, removed.stderr).toBe(0);
    expect((await api(hub.url, adminToken, 'GET', '/users/alice')).status).toBe(404);
  });
});

describe('first start with native accounts', () => {
  const hub = new HubProcess({ env: { LABHUB_SPAWNER__KIND: 'instant' } });
  let setupLink = '';

  beforeAll(async () => {
    await hub.start();
  });
  afterAll(async () => {
    await hub.cleanup();
  });

  it('prints a one-time setup link on the hub\'s public address', async () => {
    const link = await hub.setupLink();
    expect(link, hub.output.slice(-2000)).not.toBeNull();
    setupLink = link!;
    expect(new URL(setupLink).origin).toBe(hub.url);
    expect(hub.output.match(/\/hub\/setup\?code=/g)).toHaveLength(1);
  });

  it('following it creates the first admin, who is then logged in', async () => {
    const link = new URL(setupLink);
    const browser = new Browser(hub.url);
    const page = await browser.navigate(link.pathname + link.search);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('name="password2"');
    const post = (fields: Record<string, string>, xsrf: string) => browser.navigate(link.pathname + link.search, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, _xsrf: xsrf }).toString(),
    });

    // A mistake does not use the link up.
    const mismatch = await post({ username: 'first-admin', password: 'correct-horse-battery', password2: 'correct-horse-batterx' }, xsrfFromHtml(html));
    expect(mismatch.status).toBe(400);
    const retryHtml = await mismatch.text();
    expect(retryHtml).toMatch(/differ/);

    const done = await post({ username: 'first-admin', password: 'correct-horse-battery', password2: 'correct-horse-battery' }, xsrfFromHtml(retryHtml));
    expect(done.status, browser.visited.join(' -> ')).toBe(200);
    expect(browser.visited.at(-1)).toBe('/hub/home');
    expect(await done.text()).toContain('first-admin');

    const list = await cli(['users', 'list'], hub.env);
    expect(list.stdout).toBe('first-admin\tadmin\n');

    // The password chosen there logs in.
    const again = new Browser(hub.url);
    const home = await again.login('first-admin', 'correct-horse-battery');
    expect(home.status).toBe(200);
    expect(again.visited.at(-1)).toBe('/hub/home');
  });

  it('the link cannot be used twice', async () => {
    const link = new URL(setupLink);
    const browser = new Browser(hub.url);
    const page = await browser.navigate(link.pathname + link.search);
    expect(page.status).toBe(404);
    const login = await browser.navigate('/hub/login');
    const reuse = await browser.navigate(link.pathname + link.search, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'second-admin', password: 'another-password', password2: 'another-password', _xsrf: xsrfFromHtml(await login.text()) }).toString(),
    });
    expect(reuse.status).toBe(404);
    expect((await cli(['users', 'list'], hub.env)).stdout).toBe('first-admin\tadmin\n');
  });

  it('users add --admin --password-stdin creates an admin who can log in', async () => {
    const added = await hub.cli(['users', 'add', 'Second-Admin', '--admin', '--password-stdin'], 'a-long-enough-password\n');
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/second-admin.*admin/);
    expect((await cli(['users', 'list'], hub.env)).stdout).toBe('first-admin\tadmin\nsecond-admin\tadmin\n');
    const browser = new Browser(hub.url);
    const home = await browser.login('second-admin', 'a-long-enough-password');
    expect(home.status).toBe(200);
    expect(browser.visited.at(-1)).toBe('/hub/home');
    const wrong = await new Browser(hub.url).login('second-admin', 'a-long-enough-passwore');
    expect(wrong.status).toBe(403);
  });

  it('a restart with an admin present prints no setup link', async () => {
    await hub.stop();
    const before = hub.output.length;
    await hub.start();
    expect(hub.output.slice(before)).not.toContain('/hub/setup?code=');
  });
});
