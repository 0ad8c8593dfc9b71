/** Helpers for proxy tests: echoing backends with websockets, and requests whose path is sent byte for byte. */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface Backend {
  url: string;
  /** `req.url` of every HTTP request it received. */
  requests: string[];
  /** Headers of every websocket upgrade it accepted. */
  upgrades: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

export interface Echo {
  backend: string;
  url: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  /** Length and SHA-256 of the request body it received. */
  bodyBytes: number;
  bodySha256: string;
}

/**
 * Answers every request with what it saw, and echoes websocket messages prefixed with its name. With `tls` it serves
 * HTTPS (and wss) with those server options.
 */
export async function startBackend(name: string, tls?: https.ServerOptions): Promise<Backend> {
  const requests: string[] = [];
  const upgrades: http.IncomingHttpHeaders[] = [];
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests.push(req.url ?? '');
    const hash = createHash('sha256');
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      const echo: Echo = { backend: name, url: req.url ?? '', method: req.method ?? '', headers: req.headers, bodyBytes, bodySha256: hash.digest('hex') };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(echo));
    });
  };
  const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    upgrades.push(req.headers);
    ws.on('message', (data) => ws.send(`${name}:${String(data)}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    upgrades,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request whose path is sent byte for byte: fetch would resolve `..` before sending. */
export function request(base: string, rawPath: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: rawPath, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}


/** An HTTPS request with these TLS client options; rejects when the server refuses the handshake. */
export function httpsRequest(url: string, options: https.RequestOptions & { body?: string } = {}): Promise<RawResponse> {
  const { body, ...requestOptions } = options;
  return new Promise((resolve, reject) => {
    const req = https.request(url, { agent: false, ...requestOptions }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
