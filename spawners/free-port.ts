import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { FETCH_BLOCKED_PORTS } from '../hub/fetch-ports.js';

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

export interface PortRange {
  readonly lowest: number;
  readonly highest: number;
}

/** Where `freePort` draws from by default. */
export const FREE_PORT_RANGE: PortRange = { lowest: LOWEST, highest: HIGHEST };

function canListen(port: number, host: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port free on `host` right now (every interface for '' or undefined), for a server that binds it later:
 * a notebook server the local spawner starts, or a hub, proxy or service in the tests and benchmarks. It is drawn
 * at random below the kernel's range of ephemeral ports. A port from that range, which is what listening on port 0
 * gives, can become the local end of any outgoing connection before the server binds it, and the server then
 * fails with EADDRINUSE; on a busy hub that connects to many servers this happened within a test run.
 */
export async function freePort(host = '127.0.0.1', range: PortRange = FREE_PORT_RANGE): Promise<number> {
  const { lowest, highest } = range;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = lowest + Math.floor(Math.random() * (highest - lowest + 1));
    // The hub fetches its proxy's API and browsers open the public port: neither reaches a port fetch blocks.
    if (FETCH_BLOCKED_PORTS.has(port)) continue;
    if (await canListen(port, host || undefined)) return port;
  }
  throw new Error(`no free port found between ${lowest} and ${highest}`);
}
