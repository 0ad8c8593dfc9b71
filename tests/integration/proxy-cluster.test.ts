/**
 * The multi-worker proxy (`dist/proxy/main.js --workers 2`, built before tests): every worker applies a route
 * change before the API answers, a killed worker is replaced with the whole table, and last_activity and metrics
 * are gathered from all workers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { request, startBackend, type Backend, type Echo } from '../helpers/proxy.js';

const TOKEN = 'test-cluster-token-0123456789abcdef';
const auth = { authorization: `token ${TOKEN}` };
const mainJs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/proxy/main.js');
/** Fresh connections per check: the kernel spreads them over the workers. */
const PROBES = 16;

interface Cli {
  child: ChildProcess;
  proxy: string;
  api: string;
}

async function startCli(args: string[]): Promise<Cli> {
  const child = spawn(process.execPath, [mainJs, '--ip', '127.0.0.1', '--port', '0', '--api-port', '0', '--log-level', 'info', ...args], {
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: TOKEN },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  const urls = await new Promise<{ proxy: string; api: string }>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find((l) => l.includes('proxy listening'));
      if (line) resolve(JSON.parse(line) as { proxy: string; api: string });
    });
    child.once('exit', () => reject(new Error(`proxy exited early: ${output}`)));
  });
  return { child, ...urls };
}

/** The primary's child processes (Linux /proc). */
function workerPids(primary: number): number[] {
  return readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(probe: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await sleep(50);
  }
}

describe('proxy with several workers', () => {
  let alice: Backend;
  let bob: Backend;
  let cli: Cli;

  const api = (method: string, routePath: string, body?: unknown) =>
    request(cli.api, `/api/routes${routePath}`, { method, headers: { ...auth, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  /** The backend names PROBES fresh connections reach for `url` (`404` for the proxy's own 404). */
  const reached = async (url: string): Promise<Set<string>> => {
    const answers = await Promise.all(Array.from({ length: PROBES }, () => request(cli.proxy, url)));
    return new Set(answers.map((r) => (r.status === 200 ? (JSON.parse(r.body) as Echo).backend : String(r.status))));
  };

  beforeAll(async () => {
    [alice, bob] = await Promise.all([startBackend('alice'), startBackend('bob')]);
    cli = await startCli(['--workers', '2']);
  });

  afterAll(async () => {
    cli.child.kill('SIGKILL');
    await Promise.all([alice.close(), bob.close()]);
  });

  it('runs two workers under one primary', () => {
    expect(workerPids(cli.child.pid!)).toHaveLength(2);
  });

  it('routes by every change on every worker as soon as the API has answered', async () => {
    for (let i = 0; i < 20; i++) {
      const owner = i % 2 ? bob : alice;
      expect((await api('POST', `/user/u${i}`, { target: owner.url })).status).toBe(201);
      expect(await reached(`/user/u${i}/api`)).toEqual(new Set([i % 2 ? 'bob' : 'alice']));
    }
    // Re-pointing a route and deleting one are seen at once too.
    expect((await api('POST', '/user/u0', { target: bob.url })).status).toBe(201);
    expect(await reached('/user/u0/api')).toEqual(new Set(['bob']));
    expect((await api('DELETE', '/user/u1')).status).toBe(204);
    expect(await reached('/user/u1/api')).toEqual(new Set(['404']));
  });

  it('gathers last_activity from the workers that saw the traffic', async () => {
    expect((await api('POST', '/user/active', { target: alice.url })).status).toBe(201);
    const before = Date.parse((JSON.parse((await api('GET', '/user/active')).body) as { last_activity: string }).last_activity);
    await sleep(20);
    await reached('/user/active/api');
    const listed = JSON.parse((await api('GET', '')).body) as Record<string, { last_activity: string }>;
    expect(Date.parse(listed['/user/active']!.last_activity)).toBeGreaterThan(before);
    const recent = JSON.parse((await api('GET', `?inactive_since=${new Date(before + 10).toISOString()}`)).body) as Record<string, unknown>;
    expect(recent['/user/active']).toBeUndefined();
  });

  it('proxies websockets through the workers and sums their metrics', async () => {
    expect((await api('POST', '/user/ws', { target: bob.url })).status).toBe(201);
    const sockets = await Promise.all(
      Array.from({ length: 4 }, () => new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${cli.proxy.replace('http', 'ws')}/user/ws/api/kernels/k/channels`);
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      })),
    );
    const reply = new Promise((resolve) => sockets[0]!.once('message', (data) => resolve(String(data))));
    sockets[0]!.send('hi');
    expect(await reply).toBe('bob:hi');
    const metrics = await request(cli.api, '/metrics', { headers: auth });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('labhub_proxy_open_websockets 4');
    expect(metrics.body).toMatch(/labhub_proxy_routes \d+/);
    expect(metrics.body).toMatch(/labhub_proxy_requests_total\{status="200"\} \d+/);
    for (const ws of sockets) ws.close();
  });

  it('refuses a revoked token on every worker and cuts the websockets each worker holds with it', async () => {
    expect((await api('POST', '/user/shared', { target: alice.url })).status).toBe(201);
    const headers = { authorization: 'token bob-token' };
    const sockets = await Promise.all(
      Array.from({ length: 6 }, () => new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${cli.proxy.replace('http', 'ws')}/user/shared/api/kernels/k/channels`, { headers });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      })),
    );
    const closed = sockets.map((ws) => new Promise((resolve) => ws.once('close', resolve)));
    const digest = createHash('sha256').update('bob-token').digest('hex');
    const until = new Date(Date.now() + 60_000).toISOString();
    expect((await api('POST', '/user/shared', { target: alice.url, revoked_tokens: { [digest]: until } })).status).toBe(201);
    await Promise.all(closed);
    const answers = await Promise.all(Array.from({ length: PROBES }, () => request(cli.proxy, '/user/shared/api', { headers })));
    expect(new Set(answers.map((r) => r.status))).toEqual(new Set([403]));
    expect(await reached('/user/shared/api')).toEqual(new Set(['alice']));
  });

  it('replaces a killed worker, which gets the whole table before it accepts', async () => {
    const [victim, survivor] = workerPids(cli.child.pid!);
    process.kill(victim!, 'SIGKILL');
    const pids = await waitFor(() => workerPids(cli.child.pid!), (p) => p.length === 2 && !p.includes(victim!));
    expect(pids).toContain(survivor);
    expect(pids).toHaveLength(2);
    // Both workers, the new one included, serve the routes added before the kill.
    for (let i = 2; i < 20; i += 3) expect(await reached(`/user/u${i}/api`)).toEqual(new Set([i % 2 ? 'bob' : 'alice']));
    expect((await api('POST', '/user/late', { target: alice.url })).status).toBe(201);
    expect(await reached('/user/late/x')).toEqual(new Set(['alice']));
  });

  it('stops its workers with it', async () => {
    const pids = workerPids(cli.child.pid!);
    const exited = new Promise((resolve) => cli.child.once('exit', resolve));
    cli.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(await waitFor(() => pids.filter(alive), (left) => left.length === 0)).toEqual([]);
  });
});
