/**
 * The ingester's HTTP side: GET /metrics (Prometheus text) and GET /healthz (200 when connected to the broker and
 * writes are not failing for more than `unhealthyAfterMs`, else 503). Anything else is a 404 JSON error.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { IngesterHealth } from './ingester.js';

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

export function createIngestHttpServer(registry: Registry, health: () => IngesterHealth, unhealthyAfterMs = 30_000): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { status: 405, message: 'method not allowed' });
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => json(res, 503, { status: 503, message: 'metrics unavailable' }),
      );
      return;
    }
    if (path === '/healthz') {
      const h = health();
      const writing = h.failingSince === null || Date.now() - h.failingSince < unhealthyAfterMs;
      const ok = h.mqttConnected && writing;
      return json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'unhealthy', ...h });
    }
    json(res, 404, { status: 404, message: 'not found' });
  });
}

export async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : port;
}
