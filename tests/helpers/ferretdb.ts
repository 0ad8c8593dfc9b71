/**
 * Throwaway FerretDB 1.24 servers (a MongoDB-wire server on SQLite, built by scripts/setup-credentials.sh) with
 * its experimental authentication on: SCRAM logins, createUser/dropUser, no roles. On a free port of 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { stopProcess, waitForListening } from './processes.js';

export const FERRETDB = process.env.LABHUB_FERRETDB ?? '/opt/labhub/ferretdb/ferretdb';

export interface FerretDbServer {
  /** mongodb://root:password@127.0.0.1:port/?authSource=admin */
  adminUrl: string;
  port: number;
  stop(): Promise<void>;
}

export function ferretdbAvailable(): boolean {
  try {
    accessSync(FERRETDB, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export async function startFerretDb(): Promise<FerretDbServer> {
  const dir = mkdtempSync('/tmp/labhub-ferretdb-');
  mkdirSync(join(dir, 'data'));
  const port = await freePort();
  const password = `pw${Math.random().toString(36).slice(2)}`;
  const child = spawn(FERRETDB, [
    '--handler=sqlite', `--sqlite-url=file:${dir}/data/`, `--state-dir=${dir}`, `--listen-addr=127.0.0.1:${port}`,
    '--debug-addr=-', '--telemetry=disable', '--log-level=warn', '--test-enable-new-auth',
    '--setup-database=admin', '--setup-username=root', `--setup-password=${password}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitForListening(child, port, 15_000, () => `FerretDB did not start: ${stderr.slice(-2000)}`);
  return {
    adminUrl: `mongodb://root:${password}@127.0.0.1:${port}/?authSource=admin`,
    port,
    async stop() {
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
