/** Websocket connect rate: N clients in a loop of connect, one echoed message, close, for a fixed time. */
import WebSocket from 'ws';
import { Samples, summarize } from './stats.js';

export interface WsLoadResult {
  /** Complete connect-echo-close cycles per second. */
  connectsPerS: number;
  errors: number;
  latencyMs: { p50: number; p99: number };
}

function cycle(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const fail = () => {
      ws.terminate();
      resolve(false);
    };
    const timer = setTimeout(fail, 10_000);
    ws.once('open', () => ws.send('ping'));
    ws.once('message', () => ws.close());
    ws.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    ws.once('error', () => {
      clearTimeout(timer);
      fail();
    });
  });
}

export async function runWsLoad(url: string, clients: number, durationS: number, warmupS: number): Promise<WsLoadResult> {
  const start = performance.now();
  const measureFrom = start + warmupS * 1000;
  const stopAt = measureFrom + durationS * 1000;
  const samples = new Samples();
  let done = 0;
  let errors = 0;
  const client = async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= stopAt) return;
      const ok = await cycle(url);
      if (t0 < measureFrom) continue;
      if (ok) {
        done++;
        samples.push(performance.now() - t0);
      } else {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  const s = summarize(samples.values());
  return { connectsPerS: done / durationS, errors, latencyMs: { p50: s.p50, p99: s.p99 } };
}
