import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PollResult } from '../../spawners/spawner.js';

const FAST_PROBE_MS = 20;
const FAST_PROBE_PERIOD_MS = 10_000;

/**
 * Waits until a started server answers HTTP at `<url><prefix>api` with anything but a 5xx, as JupyterHub's
 * `_wait_up` does: 401/403/302 mean a live server that simply wants a login.
 */
export async function waitForHttp(url: string, prefix: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const target = new URL(`${prefix}api`, url);
  const started = Date.now();
  let delay = FAST_PROBE_MS;
  let lastProblem = 'no answer';
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    const status = await probe(target, Math.min(2000, Math.max(1, deadline - Date.now()))).catch((err: NodeJS.ErrnoException) => {
      lastProblem = err.code ?? err.message;
      return null;
    });
    if (status !== null && status < 500) return;
    if (status !== null) lastProblem = `HTTP ${status}`;
    await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
    // Most servers answer within seconds, and every probe interval is latency the user waits on top of the
    // server's own start: probe often at first (a refused connection costs next to nothing), back off later.
    delay = Date.now() - started < FAST_PROBE_PERIOD_MS ? FAST_PROBE_MS : Math.min(delay * 2, 500);
  }
  throw new Error(`the server did not answer at ${target.pathname} within ${Math.round(timeoutMs / 1000)} s (${lastProblem})`);
}

/**
 * `waitForHttp`, while asking the spawner every `pollEveryMs` whether the server still runs: one that exits before
 * it answers fails the start at once with its exit code, instead of after the whole HTTP timeout. A poll that
 * fails says nothing about the server and is ignored.
 */
export async function waitForServer(
  url: string, prefix: string, timeoutMs: number, signal: AbortSignal, poll: () => Promise<PollResult>, pollEveryMs = 1000,
): Promise<void> {
  const done = new AbortController();
  const both = AbortSignal.any([signal, done.signal]);
  const exited = (async () => {
    for (;;) {
      await sleep(pollEveryMs, undefined, { signal: both });
      const result = await poll().catch(() => null);
      if (result && !result.running) {
        throw new Error(`the server exited${result.exitCode === null ? '' : ` with code ${result.exitCode}`} before it answered`);
      }
    }
  })();
  const answered = waitForHttp(url, prefix, timeoutMs, both);
  try {
    await Promise.race([answered, exited]);
  } finally {
    done.abort();
    // The loser rejects with the abort; it has nothing left to say.
    await Promise.allSettled([answered, exited]);
  }
}

function probe(target: URL, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(target, { method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}
