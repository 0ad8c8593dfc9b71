import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { expect } from 'vitest';
import { api, Browser, eventually, HubProcess, sqliteFiles } from './hub.js';
import { freePort } from './ports.js';

export const GENERIC_FAILURE = 'Invalid username or password.';

type ConfigFor = Record<string, unknown> | ((hubUrl: string) => Record<string, unknown>);

/**
 * A hub process started with a YAML config (for nested `auth:` settings) plus an admin API token. The config may
 * depend on the hub's public URL, which is fixed (ports chosen) before it is written.
 */
export async function startConfiguredHub(config: ConfigFor, env: Record<string, string> = {}): Promise<{ hub: HubProcess; adminToken: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'labhub-test-'));
  const file = join(dataDir, 'labhub.yaml');
  const hub = new HubProcess({ dataDir, env: { LABHUB_CONFIG: file, ...env } });
  [hub.port, hub.hubPort, hub.apiPort] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(file, stringify(typeof config === 'function' ? config(hub.url) : config));
  await hub.start();
  const added = await hub.cli(['users', 'add', 'root-admin', '--admin']);
  expect(added.status, added.stderr).toBe(0);
  const adminToken = (await hub.cli(['token', 'root-admin'])).stdout.trim();
  expect(adminToken).toMatch(/^[A-Za-z0-9_-]{40,}$/);
  return { hub, adminToken };
}

/** Posts the login form once in a fresh browser; returns the final response and the browser. */
export async function tryLogin(hub: HubProcess, username: string, password: string): Promise<{ res: Response; body: string; browser: Browser }> {
  const browser = new Browser(hub.url);
  const res = await browser.login(username, password);
  return { res, body: await res.text(), browser };
}

export async function userModel(hub: HubProcess, token: string, name: string): Promise<{ admin: boolean; groups: string[]; auth_state?: unknown }> {
  const { status, body } = await api(hub.url, token, 'GET', `/users/${encodeURIComponent(name)}`);
  expect(status).toBe(200);
  return body as { admin: boolean; groups: string[] };
}

/** A refused login: the login page again, 403, with the one generic message and no session. */
export function expectRefused(attempt: { res: Response; body: string; browser: Browser }): void {
  expect(attempt.res.status).toBe(403);
  expect(attempt.body).toContain(GENERIC_FAILURE);
  expect(attempt.browser.cookie('labhub-session', '/hub/')).toBeUndefined();
}

/** Whether any file of the hub's SQLite state DB (the main file, its WAL and journal) holds `text` in plain. */
export function stateDbContains(hub: HubProcess, text: string): boolean {
  return sqliteFiles(hub).some((f) => readFileSync(f).includes(Buffer.from(text)));
}

/**
 * The hub's output since `from`, once `pattern` has appeared `count` times in it: the hub's log reaches the test
 * through a pipe, possibly after the HTTP answer it belongs to.
 */
export async function logAfter(hub: HubProcess, from: number, pattern: RegExp, count = 1): Promise<string> {
  const global = new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`);
  return eventually(async () => {
    const text = hub.output.slice(from);
    return (text.match(global)?.length ?? 0) >= count ? text : null;
  }, 10_000, 50);
}
