/**
 * A throwaway Mosquitto 2 broker for DataLab tests: its own temp dir and high port, the dynamic-security plugin
 * with an admin made by `mosquitto_ctrl dynsec init`, and on-disk persistence so that a persistent session's
 * queued QoS 1 messages survive `restart()`. As root the broker drops to user `mosquitto`, which must be able to
 * write the dynsec file, its directory and the persistence file (shared/research/spawners-deploy.md §7.3).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from './ports.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const MOSQUITTO_CTRL = '/usr/bin/mosquitto_ctrl';
export const DYNSEC_PLUGIN = '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so';

export function mosquittoAvailable(): boolean {
  try {
    for (const f of [MOSQUITTO, MOSQUITTO_CTRL, DYNSEC_PLUGIN]) accessSync(f, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

export interface TestBroker {
  url: string;
  port: number;
  admin: { username: string; password: string };
  /** Stops the broker (SIGTERM: it writes its persistence file) and starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  log(): string;
}

const isRoot = process.getuid?.() === 0;

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startBroker(): Promise<TestBroker> {
  const dir = mkdtempSync('/tmp/labhub-mosquitto-');
  const port = await freePort();
  const admin = { username: 'dynsec-admin', password: `admin-${Math.random().toString(36).slice(2)}` };
  const dynsec = join(dir, 'dynamic-security.json');
  execFileSync(MOSQUITTO_CTRL, ['dynsec', 'init', dynsec, admin.username, admin.password], { stdio: 'ignore' });
  const logFile = join(dir, 'mosquitto.log');
  writeFileSync(
    join(dir, 'mosquitto.conf'),
    [
      'per_listener_settings false',
      `listener ${port} 127.0.0.1`,
      `plugin ${DYNSEC_PLUGIN}`,
      `plugin_opt_config_file ${dynsec}`,
      'persistence true',
      `persistence_location ${dir}/`,
      'autosave_interval 1',
      `log_dest file ${logFile}`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      'max_queued_messages 100000',
      'max_inflight_messages 100',
      '',
    ].join('\n'),
  );
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'mosquitto'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'mosquitto'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    chownSync(dynsec, uid, gid);
  }

  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const proc = spawn(MOSQUITTO, ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    child = proc;
    const deadline = Date.now() + 10_000;
    while (!(await portAnswers(port))) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`mosquitto did not start on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const halt = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  };
  await launch();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    admin,
    async restart() {
      await halt();
      await launch();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => {
      try {
        return execFileSync('tail', ['-n', '30', logFile], { encoding: 'utf8' });
      } catch {
        return '';
      }
    },
  };
}
