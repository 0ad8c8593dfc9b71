import { request } from 'node:http';

/**
 * Waits until a started server answers HTTP at `<url><prefix>api` with anything but a 5xx, as JupyterHub's
 * `_wait_up` does: 401/403/302 mean a live server that simply wants a login.
 */
export async function waitForHttp(url: string, prefix: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const target = new URL(`${prefix}api`, url);
  let delay = 50;
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
    // A short cap: a server that comes up just after a probe should not wait a whole second to be noticed.
    delay = Math.min(delay * 2, 200);
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
