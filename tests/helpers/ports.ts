import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where the search starts: above the well-known and most registered service ports. */
const LOWEST = 10_000;

/**
 * The first port the kernel hands out as the local end of outgoing connections (ip_local_port_range), or 32768,
 * Linux's default, where that file cannot be read.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST + 1000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const HIGHEST = ephemeralLow() - 1;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port that is free on 127.0.0.1 right now, for a server the caller starts later (a hub, a proxy, a
 * service). It is drawn at random below the kernel's range of ephemeral ports: a port from that range (what
 * listening on port 0 gives) can become the local end of any outgoing connection in the meantime, and the server
 * then cannot bind it. Another test may still take the port first; callers should bind promptly.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST + 1));
    if (await canListen(port)) return port;
  }
  throw new Error(`freePort: no free port found between ${LOWEST} and ${HIGHEST}`);
}
