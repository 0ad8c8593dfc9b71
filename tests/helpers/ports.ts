import { FREE_PORT_RANGE, freePort as draw, type PortRange } from '../../spawners/free-port.js';

/** Slices of the range: one per worker up to eight workers (two on the 2-core machines); beyond that, workers share. */
const SLICES = 8;

/**
 * The part of the range this process draws from. Test files run in parallel workers, and a port one file has drawn
 * but not yet bound looks free to another; giving each worker (vitest's VITEST_POOL_ID, 1-based) its own slice
 * keeps two files from drawing the same one. Outside vitest (the benchmarks), the whole range.
 */
export function portRangeFor(poolId: string | undefined): PortRange {
  const id = Number(poolId);
  if (!Number.isInteger(id) || id < 1) return FREE_PORT_RANGE;
  const size = Math.floor((FREE_PORT_RANGE.highest - FREE_PORT_RANGE.lowest + 1) / SLICES);
  const lowest = FREE_PORT_RANGE.lowest + ((id - 1) % SLICES) * size;
  return { lowest, highest: lowest + size - 1 };
}

const range = portRangeFor(process.env.VITEST_POOL_ID);

/** Tests and benchmarks pick ports for the servers they start as the product's local spawner does, each worker in its own slice. */
export function freePort(host?: string): Promise<number> {
  return draw(host, range);
}
