/**
 * Throwaway Mosquitto brokers with the dynamic-security plugin (Debian's mosquitto 2.0, installed by
 * scripts/setup-credentials.sh), on a free port of 127.0.0.1, with the plugin's JSON file in a temp dir.
 * Started as root, mosquitto drops to user `mosquitto`, and the plugin saves by writing `<file>.new` and renaming
 * it: the dir and the file must belong to that user, or every change is lost (research/spawners-deploy.md §7.3).
 * With `persistence`, queued QoS 1 messages of persistent sessions are kept on disk and survive `restart()`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { stopProcess, waitForListening } from './processes.js';

export const DYNSEC_PLUGIN = '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so';

export interface MosquittoBroker {
  url: string;
  port: number;
  admin: { username: string; password: string };
  /** mqtt://admin:password@127.0.0.1:port */
  adminUrl: string;
  log(): string;
  /** Stops the broker (SIGTERM: it writes its persistence file) and starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function mosquittoUnavailableReason(): string | null {
  for (const path of ['/usr/sbin/mosquitto', '/usr/bin/mosquitto_ctrl', DYNSEC_PLUGIN]) {
    try {
      accessSync(path, constants.R_OK);
    } catch {
      return `${path} not found (run scripts/setup-credentials.sh)`;
    }
  }
  return null;
}

export async function startMosquitto(options: { persistence?: boolean } = {}): Promise<MosquittoBroker> {
  const dir = mkdtempSync('/tmp/labhub-mosquitto-');
  const dynsecFile = join(dir, 'dynamic-security.json');
  const admin = { username: 'labhub-admin', password: `pw-${Math.random().toString(36).slice(2)}` };
  execFileSync('/usr/bin/mosquitto_ctrl', ['dynsec', 'init', dynsecFile, admin.username, admin.password], { stdio: 'ignore' });
  const port = await freePort();
  const logFile = join(dir, 'mosquitto.log');
  writeFileSync(join(dir, 'mosquitto.conf'), [
    'per_listener_settings false',
    `listener ${port} 127.0.0.1`,
    `log_dest file ${logFile}`,
    // Streams (DataLab tests, bench:ingest) log only what goes wrong: a line per message would slow the broker.
    ...(options.persistence
      ? ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 1', 'max_queued_messages 100000', 'max_inflight_messages 100',
        'log_type error', 'log_type warning', 'log_type notice']
      : ['persistence false', 'log_type all']),
    `plugin ${DYNSEC_PLUGIN}`,
    `plugin_opt_config_file ${dynsecFile}`,
    '',
  ].join('\n'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'mosquitto'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'mosquitto'], { encoding: 'utf8' }).trim());
    for (const path of [dir, dynsecFile, join(dir, 'mosquitto.conf')]) chownSync(path, uid, gid);
    writeFileSync(logFile, '');
    chownSync(logFile, uid, gid);
  }
  const log = () => {
    try {
      return execFileSync('tail', ['-n', '200', logFile], { encoding: 'utf8' });
    } catch {
      return '';
    }
  };
  let child: ChildProcess;
  const launch = async () => {
    child = spawn('/usr/sbin/mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    await waitForListening(child, port, 10_000, () => `mosquitto did not start:\n${log()}`);
  };
  await launch();
  return {
    url: `mqtt://127.0.0.1:${port}`, port, admin,
    adminUrl: `mqtt://${admin.username}:${admin.password}@127.0.0.1:${port}`,
    log,
    async restart() {
      await stopProcess(child);
      await launch();
    },
    async stop() {
      await stopProcess(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
