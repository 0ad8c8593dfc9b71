/**
 * The backend of the proxy benchmarks: `node dist/bench/proxy-backend.js <port> [keep-alive ms]`. Any path ending
 * in `/big` gets 1 MiB, `/stream` 40 chunks 50 ms apart (a server stopped meanwhile cuts it mid-stream), anything
 * else 12 bytes; websockets are echoed. The fixed answers have a Content-Length, so a proxy can keep its upstream
 * connections alive.
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';

const BIG = Buffer.alloc(1024 * 1024, 'x');
const SMALL = Buffer.from('hello world\n');

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  if (req.url?.endsWith('/stream')) return stream(res);
  const body = req.url?.endsWith('/big') ? BIG : SMALL;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
server.keepAliveTimeout = Number(process.argv[3] ?? 60_000);
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

function stream(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' });
  let sent = 0;
  const timer = setInterval(() => {
    res.write(SMALL);
    if (++sent === 40) {
      clearInterval(timer);
      res.end();
    }
  }, 50);
  res.on('close', () => clearInterval(timer));
}
