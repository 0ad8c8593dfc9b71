/**
 * The backend of the proxy benchmarks: `node dist/bench/proxy-backend.js <port>`. Any path ending in `/big` gets
 * 1 MiB, anything else 12 bytes; websockets are echoed. Every answer has a Content-Length, so each proxy can keep
 * its upstream connections alive.
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';

const BIG = Buffer.alloc(1024 * 1024, 'x');
const SMALL = Buffer.from('hello world\n');

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  const body = req.url?.endsWith('/big') ? BIG : SMALL;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
