import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { freePort } from './ports.js';
import { loadConfig } from '../../hub/config/load.js';
import { sqlitePathOf } from '../../hub/db/open-state.js';
import { PROXY_TOKEN_FILE } from '../../hub/secrets.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const LABHUB = join(REPO, 'dist/hub/main.js');

export interface HubProcessOptions {
  /** Extra LABHUB_* (or other) environment for the hub. */
  env?: Record<string, string>;
  dataDir?: string;
}

/** A real `labhub start` in its own process, on free ports, with its own data dir. */
export class HubProcess {
  child: ChildProcess | null = null;
  output = '';
  readonly dataDir: string;
  port = 0;
  hubPort = 0;
  apiPort = 0;

  constructor(private readonly options: HubProcessOptions = {}) {
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'labhub-test-'));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get env(): Record<string, string> {
    return {
      ...(process.env as Record<string, string>),
      LABHUB_DATA_DIR: this.dataDir,
      LABHUB_PORT: String(this.port),
      LABHUB_IP: '127.0.0.1',
      LABHUB_HUB__PORT: String(this.hubPort),
      LABHUB_PROXY__API_URL: `http://127.0.0.1:${this.apiPort}`,
      LABHUB_PROXY__CHECK_INTERVAL: '1',
      LABHUB_LOG_LEVEL: 'debug',
      ...this.options.env,
    };
  }

  /** The SQLite state DB this hub's config names, as the hub computes it. */
  get sqlitePath(): string {
    const path = sqlitePathOf(loadConfig({ env: this.env }));
    if (!path) throw new Error('this hub keeps its state in PostgreSQL');
    return path;
  }

  /** The token of the proxy's API that the hub generated into its data dir. */
  proxyToken(): string {
    return readFileSync(join(this.dataDir, PROXY_TOKEN_FILE), 'utf8').trim();
  }

  /** Starts (or restarts, on the same ports and data) and waits until the hub answers through the proxy. */
  async start(): Promise<void> {
    if (!this.port) [this.port, this.hubPort, this.apiPort] = [await freePort(), await freePort(), await freePort()];
    // Only this start's output counts: after a restart the earlier "LabHub is running" line is still in `output`.
    const from = this.output.length;
    const child = spawn(process.execPath, [LABHUB, 'start'], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`labhub exited with ${child.exitCode}:\n${this.output.slice(-3000)}`);
      const ok = await fetch(`${this.url}/hub/api/`).then((r) => r.ok, () => false);
      if (ok && this.output.includes('LabHub is running', from)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`labhub did not start:\n${this.output.slice(-3000)}`);
  }

  /**
   * The first-admin setup link this hub printed at start. It is printed after "LabHub is running", which start()
   * waits for, so it may still be on its way; null if none comes (an admin exists).
   */
  async setupLink(timeoutMs = 5000): Promise<string | null> {
    const find = () => /(https?:\/\/\S+\/hub\/setup\?code=[A-Za-z0-9_-]+)/.exec(this.output)?.[1] ?? null;
    const deadline = Date.now() + timeoutMs;
    while (!find() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return find();
  }

  /** Runs another `labhub` command against the same data dir (users add, token, …). */
  async cli(args: string[], stdin?: string): Promise<{ status: number; stdout: string; stderr: string }> {
    return runLabhub(args, this.env, stdin);
  }

  kill9(): void {
    this.child?.kill('SIGKILL');
  }

  /** Stops the hub with SIGTERM; it stops the proxy it started. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
  }

  /**
   * Everything this hub left behind: processes listening on its ports, servers still running in its data dir
   * (a hub's shutdown deliberately leaves servers running, and a failed test may not have stopped them), the dir.
   */
  async cleanup(): Promise<void> {
    await this.stop();
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        continue;
      }
      if (cwd === this.dataDir || cwd.startsWith(`${this.dataDir}/`)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const port of [this.port, this.apiPort]) {
      if (port) spawn('fuser', ['-k', '-TERM', `${port}/tcp`], { stdio: 'ignore' });
    }
    await new Promise((r) => setTimeout(r, 300));
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** The hub's SQLite state DB and its WAL and journal files, as they exist now. */
export function sqliteFiles(hub: HubProcess): string[] {
  const main = hub.sqlitePath;
  return [main, `${main}-wal`, `${main}-journal`].filter((f) => existsSync(f));
}

export function runLabhub(args: string[], env: Record<string, string>, stdin?: string): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [LABHUB, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(stdin ?? '');
    child.on('exit', (status) => resolvePromise({ status: status ?? -1, stdout, stderr }));
  });
}

interface Cookie {
  name: string;
  value: string;
  path: string;
}

/**
 * A browser stand-in for one origin: keeps cookies by path, follows redirects by hand (so tests see each hop),
 * and reads XSRF tokens from forms.
 */
export class Browser {
  private cookies: Cookie[] = [];
  readonly visited: string[] = [];

  constructor(private readonly origin: string) {}

  cookieHeader(path: string): string {
    return this.cookies.filter((c) => path.startsWith(c.path)).sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }

  cookie(name: string, path = '/'): string | undefined {
    return this.cookies.filter((c) => c.name === name && path.startsWith(c.path)).sort((a, b) => b.path.length - a.path.length)[0]?.value;
  }

  private store(res: Response, requestPath: string): void {
    for (const header of res.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      let path = requestPath.replace(/[^/]*$/, '') || '/';
      let expired = false;
      for (const attr of attrs) {
        const [k, v = ''] = attr.trim().split('=');
        if (k!.toLowerCase() === 'path') path = v;
        if (k!.toLowerCase() === 'expires' && Date.parse(v) < Date.now()) expired = true;
        if (k!.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      this.cookies = this.cookies.filter((c) => !(c.name === name && c.path === path));
      if (!expired) this.cookies.push({ name, value, path });
    }
  }

  /**
   * One request, no redirect following. Sent with node:http rather than fetch: fetch adds its own
   * `Sec-Fetch-Mode: cors`, and servers rightly treat that differently from a browser navigation.
   */
  async request(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
    const url = new URL(path, this.origin);
    const headers: Record<string, string> = { ...init.headers };
    const cookie = this.cookieHeader(url.pathname);
    if (cookie) headers.cookie = cookie;
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
    const res = await new Promise<Response>((resolvePromise, reject) => {
      const req = httpRequest(url, { method: init.method ?? 'GET', headers }, (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (c: Buffer) => chunks.push(c));
        incoming.on('end', () => {
          const out = new Headers();
          for (const [k, v] of Object.entries(incoming.headers)) {
            for (const value of ([] as string[]).concat(v ?? [])) out.append(k, value);
          }
          const status = incoming.statusCode ?? 0;
          const body = [101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
          resolvePromise(new Response(body, { status, headers: out }));
        });
        incoming.on('error', reject);
      });
      req.on('error', reject);
      req.end(init.body);
    });
    this.store(res, url.pathname);
    return res;
  }

  /** A navigation: follows redirects (GET after each), as a browser does. */
  async navigate(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}, maxHops = 15): Promise<Response> {
    let res = await this.request(path, { ...init, headers: { 'sec-fetch-mode': 'navigate', ...init.headers } });
    let current = new URL(path, this.origin);
    this.visited.push(current.pathname + current.search);
    for (let hop = 0; hop < maxHops && [301, 302, 303, 307].includes(res.status); hop++) {
      current = new URL(res.headers.get('location')!, current);
      if (current.origin !== new URL(this.origin).origin) throw new Error(`redirected off-site to ${current.toString()}`);
      this.visited.push(current.pathname + current.search);
      await res.body?.cancel();
      res = await this.request(current.pathname + current.search, { headers: { 'sec-fetch-mode': 'navigate' } });
    }
    return res;
  }

  /** Logs in through the login form, as a person would. */
  async login(username: string, password: string, next = '/hub/home'): Promise<Response> {
    const page = await this.navigate(`/hub/login?next=${encodeURIComponent(next)}`);
    const xsrf = xsrfFromHtml(await page.text());
    return this.navigate(`/hub/login?next=${encodeURIComponent(next)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username, password, _xsrf: xsrf }).toString(),
    });
  }

  /** Posts a hub form (start, stop) with the XSRF token of the current session. */
  async postForm(path: string, fields: Record<string, string> = {}): Promise<Response> {
    const home = await this.navigate('/hub/home');
    const xsrf = xsrfFromHtml(await home.text());
    return this.navigate(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, _xsrf: xsrf }).toString(),
    });
  }
}

/**
 * Opens a notebook server's page as a logged-in browser does and checks it got there through the OAuth dance
 * (hub authorize, then the server's callback), then that the server's API accepts the resulting cookie.
 */
export async function landInServer(browser: Browser, prefix: string): Promise<void> {
  const landing = await browser.navigate(prefix);
  expect(landing.status, browser.visited.slice(-8).join(' -> ')).toBe(200);
  expect(browser.visited.some((p) => p.startsWith('/hub/api/oauth2/authorize'))).toBe(true);
  expect(browser.visited.some((p) => p.startsWith(`${prefix}oauth_callback`))).toBe(true);
  const status = await browser.request(`${prefix}api/status`);
  expect(status.status).toBe(200);
  expect(await status.json()).toHaveProperty('started');
}

export function xsrfFromHtml(html: string): string {
  const match = /name="_xsrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no _xsrf field in page');
  return match[1]!;
}

/** Calls the REST API with a token. */
export async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${base}/hub/api${path}`, {
    method,
    headers: { authorization: `token ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Waits until `check` returns a truthy value, polling; fails with the last value after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 30_000, intervalMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await check().catch(() => undefined as T);
    if (last) return last as NonNullable<T>;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms (last: ${JSON.stringify(last)?.slice(0, 300)})`);
}
