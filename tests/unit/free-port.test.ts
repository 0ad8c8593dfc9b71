import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FREE_PORT_RANGE, freePort } from '../../spawners/free-port.js';

const listen = (port: number, host?: string) => new Promise<() => Promise<void>>((resolve, reject) => {
  const server = createServer();
  server.once('error', reject);
  server.listen({ port, host, exclusive: true }, () => resolve(() => new Promise((done) => server.close(() => done()))));
});

describe('freePort', () => {
  it('draws below the range the kernel gives outgoing connections', () => {
    const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    expect(FREE_PORT_RANGE.highest).toBe(ephemeralLow! - 1);
    expect(FREE_PORT_RANGE.lowest).toBeLessThan(FREE_PORT_RANGE.highest);
  });

  it('gives distinct ports that can be bound, on loopback and on every interface', async () => {
    const ports = new Set<number>();
    for (const host of ['127.0.0.1', '', '127.0.0.1', '']) {
      const port = await freePort(host);
      expect(port).toBeGreaterThanOrEqual(FREE_PORT_RANGE.lowest);
      expect(port).toBeLessThanOrEqual(FREE_PORT_RANGE.highest);
      const close = await listen(port, host || undefined);
      ports.add(port);
      await close();
    }
    expect(ports.size).toBeGreaterThan(1);
  });
});
