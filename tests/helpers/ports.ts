/** Tests and benchmarks pick ports for the servers they start as the product's local spawner does. */
export { freePort } from '../../spawners/free-port.js';
