/**
 * Closed-loop HTTP load: N keep-alive connections, each sending its next request as soon as the previous answer
 * is read, for a fixed time after a warm-up. Every latency is recorded (process.hrtime), so percentiles are exact.
 * `runWrk` does the same with Debian's wrk, as a cross-check of the Node generator (BENCH_LOADGEN=wrk).
 */
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { keepAliveAgent } from './http.js';
import { Samples, summarize } from './stats.js';

export interface LoadOptions {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  durationS: number;
  warmupS: number;
}

export interface LoadResult {
  tool: 'node' | 'wrk';
  connections: number;
  durationS: number;
  /** Answered requests in the measured window (any status). */
  requests: number;
  /** 2xx answers per second in the measured window. */
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** Answers by status code, plus `error` for network errors and timeouts. */
  statuses: Record<string, number>;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const agent = keepAliveAgent(options.connections);
  const url = new URL(options.url);
  const reqOptions = { method: 'GET', agent, headers: options.headers ?? {}, hostname: url.hostname, port: url.port, path: url.pathname + url.search };
  const samples = new Samples();
  const statuses: Record<string, number> = {};
  let ok = 0;
  let answered = 0;
  const start = process.hrtime.bigint();
  const measureFrom = start + BigInt(Math.round(options.warmupS * 1e9));
  const stopAt = measureFrom + BigInt(Math.round(options.durationS * 1e9));
  let lastEnd = measureFrom;

  const once = () =>
    new Promise<number>((resolve) => {
      const req = request(reqOptions, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(-1));
      });
      req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(-1));
      req.end();
    });

  const worker = async () => {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= stopAt) return;
      const status = await once();
      const t1 = process.hrtime.bigint();
      if (t0 >= measureFrom) {
        const key = status < 0 ? 'error' : String(status);
        statuses[key] = (statuses[key] ?? 0) + 1;
        if (status >= 0) {
          answered++;
          samples.push(Number(t1 - t0) / 1e6);
        }
        if (status >= 200 && status < 300) ok++;
        if (t1 > lastEnd) lastEnd = t1;
      }
      if (status < 0) await sleep(10); // a refused connection must not spin
    }
  };
  await Promise.all(Array.from({ length: options.connections }, worker));
  agent.destroy();
  const windowS = Number(lastEnd - measureFrom) / 1e9 || options.durationS;
  const s = summarize(samples.values());
  return {
    tool: 'node', connections: options.connections, durationS: windowS, requests: answered, rps: ok / windowS,
    latencyMs: { p50: s.p50, p90: s.p90, p99: s.p99, max: s.max, mean: s.mean }, statuses,
  };
}

/** wrk's own run: a warm-up run, then the measured one; parses `--latency` output. */
export async function runWrk(options: LoadOptions): Promise<LoadResult> {
  const headerArgs = Object.entries(options.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const threads = String(Math.max(1, Math.min(2, options.connections)));
  const run = (seconds: number) =>
    new Promise<string>((resolve, reject) => {
      execFile('wrk', ['-t', threads, '-c', String(options.connections), '-d', `${Math.max(1, Math.round(seconds))}s`, '--latency', ...headerArgs, options.url],
        { timeout: (seconds + 60) * 1000 }, (err, stdout, stderr) => (err ? reject(new Error(`wrk: ${err.message}\n${stderr}`)) : resolve(stdout)));
    });
  if (options.warmupS > 0) await run(options.warmupS);
  const out = await run(options.durationS);
  const unit = (v: string, u: string) => Number(v) * ({ us: 1e-3, ms: 1, s: 1000, m: 60_000 } as Record<string, number>)[u]!;
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? unit(m[1]!, m[2]!) : NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const windowS = /requests in ([\d.]+)(ms|s|m)/.exec(out);
  const seconds = windowS ? unit(windowS[1]!, windowS[2]!) / 1000 : options.durationS;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const avg = /Latency\s+([\d.]+)(us|ms|s)/.exec(out);
  const max = /Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)/.exec(out);
  const statuses: Record<string, number> = { '2xx': requests - non2xx };
  if (non2xx) statuses['non-2xx'] = non2xx;
  if (errors) statuses.error = errors;
  return {
    tool: 'wrk', connections: options.connections, durationS: seconds, requests, rps: (requests - non2xx) / seconds,
    latencyMs: { p50: pct('50'), p90: pct('90'), p99: pct('99'), max: max ? unit(max[1]!, max[2]!) : NaN, mean: avg ? unit(avg[1]!, avg[2]!) : NaN },
    statuses,
  };
}
