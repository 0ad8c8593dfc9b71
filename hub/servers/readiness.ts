import { request } from 'node:http';

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
