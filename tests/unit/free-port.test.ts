import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FREE_PORT_RANGE, freePort } from '../../spawners/free-port.js';
import { portRangeFor } from '../helpers/ports.js';

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

  it('never draws a port that fetch refuses (10080 is in the range): the hub fetches its proxy\'s API there', async () => {
    await expect(freePort('127.0.0.1', { lowest: 10080, highest: 10080 })).rejects.toThrow(/no free port found between 10080 and 10080/);
    expect(await freePort('127.0.0.1', { lowest: 10080, highest: 10081 })).toBe(10081);
  });

  it('draws only from the range it is given', async () => {
    const range = { lowest: FREE_PORT_RANGE.lowest + 500, highest: FREE_PORT_RANGE.lowest + 509 };
    for (let i = 0; i < 20; i++) {
      const port = await freePort('127.0.0.1', range);
      expect(port).toBeGreaterThanOrEqual(range.lowest);
      expect(port).toBeLessThanOrEqual(range.highest);
    }
  });
});

describe('the tests\' port slices', () => {
  it('give each vitest worker its own part of the range, and the whole range outside vitest', () => {
    const slices = [1, 2, 3, 4, 5, 6, 7, 8].map((id) => portRangeFor(String(id)));
    slices.forEach((slice, i) => {
      expect(slice.lowest).toBeGreaterThanOrEqual(FREE_PORT_RANGE.lowest);
      expect(slice.highest).toBeLessThanOrEqual(FREE_PORT_RANGE.highest);
      expect(slice.highest - slice.lowest).toBeGreaterThan(1000);
      if (i > 0) expect(slice.lowest).toBeGreaterThan(slices[i - 1]!.highest);
    });
    expect(portRangeFor('9')).toEqual(slices[0]);
    for (const outside of [undefined, '', '0', 'x']) expect(portRangeFor(outside)).toEqual(FREE_PORT_RANGE);
  });
});
