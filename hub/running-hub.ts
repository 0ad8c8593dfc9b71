import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publicOrigin } from './config/load.js';
import type { LabHubConfig } from './config/schema.js';

/**
 * Where the hub running on a data dir is reached, written there at start-up: another `labhub` command on the same
 * data dir (a second shell, without the flags the hub was started with) then prints links that work.
 */
const FILE = 'running_hub.json';

interface RunningHub {
  pid: number;
  origin: string;
}

export function recordRunningHub(config: LabHubConfig): void {
  const record: RunningHub = { pid: process.pid, origin: publicOrigin(config) };
  writeFileSync(join(config.data_dir, FILE), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

export function forgetRunningHub(config: LabHubConfig): void {
  if (readRecord(config)?.pid === process.pid) rmSync(join(config.data_dir, FILE), { force: true });
}

/** The origin for links: public_url when set, else the running hub's own address, else this config's. */
export function linkOrigin(config: LabHubConfig): string {
  if (config.public_url) return publicOrigin(config);
  const running = readRecord(config);
  return running && isAlive(running.pid) ? running.origin : publicOrigin(config);
}

function readRecord(config: LabHubConfig): RunningHub | null {
  try {
    const value = JSON.parse(readFileSync(join(config.data_dir, FILE), 'utf8')) as Partial<RunningHub>;
    return Number.isInteger(value.pid) && typeof value.origin === 'string' && URL.canParse(value.origin) ? (value as RunningHub) : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
