/**
 * The two hubs under test, each as a process tree started and stopped the same way: LabHub (`labhub start`, which
 * starts LabHub's proxy) and Debian's JupyterHub 3.0.0 (which starts Debian's configurable-http-proxy). Both listen
 * on 127.0.0.1 only, on free ports, with their state in a temp dir, and are driven only through their public port.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cpuMeter, type CpuUse } from './cpu.js';
import { HubApi } from './http.js';
import { freePort, isAlive, ManagedProcess, waitFor200, waitGone } from './process.js';

export const REPO = resolve(import.meta.dirname, '../../..');
export const LABHUB_MAIN = join(REPO, 'dist/hub/main.js');
export const JH_CONFIG = join(REPO, 'bench/jupyterhub/jupyterhub_config.py');
export const JH_BIN = '/usr/bin/jupyterhub';
export const CHP_BIN = '/usr/bin/configurable-http-proxy';

/** One log line as the summary counts it. */
export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  http5xx: boolean;
  /** JupyterHub: a CHP error caused by the start-up polls, counted apart. */
  startupPoll?: boolean;
}

export interface LogSummary {
  lines: number;
  warnings: number;
  errors: number;
  /** HTTP 5xx answers the hub or proxy logged. */
  http5xx: number;
  /** The most frequent warning/error messages (timestamps and numbers removed), with counts. */
  top: { message: string; count: number }[];
  /** JupyterHub: CHP error lines caused by the start-up polls (404 before the hub's route exists), not counted. */
  ignoredStartupPollErrors?: number;
}

export interface StopResult {
  ms: number;
  graceful: boolean;
  /** Exit code, or the signal that ended the hub. */
  exit: string;
  /** The proxy the hub started was still alive after the hub exited and had to be killed. */
  proxyLeftBehind: boolean;
}

export abstract class Hub {
  abstract readonly key: 'labhub' | 'jupyterhub';
  abstract readonly label: string;
  /** Path polled for the start-up time (through the public port). */
  abstract readonly readyPath: string;
  /** The log line a hub writes once it has finished starting (and handles SIGTERM). */
  abstract readonly runningLine: string;
  readonly serviceToken = randomBytes(24).toString('hex');
  port = 0;
  hubPort = 0;
  apiPort = 0;
  /** What GET /hub/api/ reports. */
  version = '';
  /** For each start: ms from spawn until the hub logged `runningLine`. */
  readonly runningAfterMs: number[] = [];
  protected proc: ManagedProcess | null = null;

  constructor(readonly dir: string) {}

  get publicUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get logFile(): string {
    return join(this.dir, 'hub.log');
  }

  protected abstract command(): { cmd: string; args: string[]; env: NodeJS.ProcessEnv; cwd: string };
  /** The pid of the proxy the hub started, once it runs. */
  protected abstract proxyPid(): number | undefined;

  async prepare(): Promise<void> {
    [this.port, this.hubPort, this.apiPort] = [await freePort(), await freePort(), await freePort()];
  }

  /** Starts the hub and resolves with ms from spawn to the first 200 of `readyPath` through the public port. */
  async start(): Promise<number> {
    const { cmd, args, env, cwd } = this.command();
    const proc = (this.proc ??= new ManagedProcess(this.label, { cmd, args, env, cwd, logFile: this.logFile }));
    const logOffset = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    const t0 = performance.now();
    proc.start();
    let ms: number;
    try {
      ms = await waitFor200(`${this.publicUrl}${this.readyPath}`, t0, () => proc.running);
      // Not part of the start-up time: the hub may answer through its proxy a moment before it has finished
      // starting (and installed its signal handlers); a SIGTERM in that window would not be a clean stop.
      const deadline = performance.now() + 30_000;
      while (!this.logHas(this.runningLine, logOffset)) {
        if (!proc.running) throw new Error('exited after answering');
        if (performance.now() > deadline) throw new Error(`no "${this.runningLine}" in its log within 30 s`);
        await new Promise((r) => setTimeout(r, 10));
      }
      this.runningAfterMs.push(performance.now() - t0);
    } catch (err) {
      throw new Error(`${this.label} did not start: ${(err as Error).message}\n--- ${this.logFile} (tail) ---\n${this.logTail(30)}`);
    }
    // The proxy may write its pid a moment after it answers.
    for (let i = 0; i < 50 && this.proxyPid() === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    const pid = this.proxyPid();
    if (pid) proc.companions.add(pid);
    return ms;
  }

  /** SIGTERM to the hub; waits for it and for its proxy to exit (the ports must be free for the next start). */
  async stop(): Promise<StopResult> {
    if (!this.proc) return { ms: 0, graceful: true, exit: 'not started', proxyLeftBehind: false };
    const { ms, graceful, exit } = await this.proc.stop();
    let proxyLeftBehind = false;
    for (const pid of this.proc.companions) {
      if (!(await waitGone(pid, 10_000))) {
        proxyLeftBehind = true;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
        await waitGone(pid, 5_000);
      }
      this.proc.companions.delete(pid);
    }
    return { ms, graceful, exit, proxyLeftBehind };
  }

  /** Measures the CPU use of the hub and its proxy from now until the returned function is called. */
  cpuMeter(): () => CpuUse {
    return cpuMeter(this.proc?.pid, [...(this.proc?.companions ?? [])]);
  }

  /** Whether the log has `needle` after byte `offset`. */
  private logHas(needle: string, offset: number): boolean {
    if (!existsSync(this.logFile)) return false;
    const fd = openSync(this.logFile, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.max(0, size - offset));
      readSync(fd, buf, 0, buf.length, offset);
      return buf.includes(needle);
    } finally {
      closeSync(fd);
    }
  }

  logTail(lines: number): string {
    if (!existsSync(this.logFile)) return '(no log)';
    return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines - 1).join('\n');
  }

  /** What one line of this hub's log says; undefined for lines that do not count (plain text, clean stops). */
  protected abstract readLogLine(line: string): LogLine | undefined;

  summarizeLog(): LogSummary {
    const text = existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
    const counts = new Map<string, number>();
    const summary: LogSummary = { lines: 0, warnings: 0, errors: 0, http5xx: 0, top: [] };
    let startupPolls = 0;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      summary.lines++;
      const read = this.readLogLine(line);
      if (!read) continue;
      if (read.startupPoll) {
        startupPolls++;
        continue;
      }
      if (read.http5xx) summary.http5xx++;
      if (read.level === 'info') continue;
      if (read.level === 'warn') summary.warnings++;
      else summary.errors++;
      const key = `${read.level.toUpperCase()} ${read.message}`.replace(/\d+(\.\d+)?/g, 'N').slice(0, 160);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    summary.top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([message, count]) => ({ message, count }));
    if (startupPolls) summary.ignoredStartupPollErrors = startupPolls;
    return summary;
  }

  protected baseEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (k.startsWith('LABHUB_') || k.startsWith('BENCH_') || k.startsWith('JUPYTERHUB_') || k === 'CONFIGPROXY_AUTH_TOKEN') continue;
      env[k] = v;
    }
    return env;
  }
}

export class LabHub extends Hub {
  readonly key = 'labhub' as const;
  readonly label = 'LabHub';
  readonly readyPath = '/hub/api/';
  readonly runningLine = '"msg":"LabHub is running"';
  /** Added to (and winning over) the hub's environment, e.g. another spawner for one benchmark. */
  extraEnv: NodeJS.ProcessEnv = {};

  protected command() {
    const config = join(this.dir, 'labhub.yaml');
    if (!existsSync(config)) {
      writeFileSync(config, [
        '# written by bench/hub.ts',
        'services:',
        '  - name: bench',
        `    api_token: "${this.serviceToken}"`,
        '    admin: true',
        '',
      ].join('\n'));
    }
    return {
      cmd: process.execPath,
      // BENCH_LABHUB_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the hub (NODE_OPTIONS cannot).
      args: [...(process.env.BENCH_LABHUB_NODE_ARGS ?? '').split(' ').filter(Boolean), LABHUB_MAIN, 'start'],
      cwd: this.dir,
      env: {
        ...this.baseEnv(),
        LABHUB_CONFIG: config,
        LABHUB_DATA_DIR: join(this.dir, 'data'),
        LABHUB_IP: '127.0.0.1',
        LABHUB_PORT: String(this.port),
        LABHUB_HUB__IP: '127.0.0.1',
        LABHUB_HUB__PORT: String(this.hubPort),
        LABHUB_PROXY__API_URL: `http://127.0.0.1:${this.apiPort}`,
        LABHUB_SPAWNER__KIND: 'instant',
        // As in jupyterhub_config.py: any password logs in, for the cookie-authenticated page.
        LABHUB_AUTHENTICATOR__KIND: 'dummy',
        // As in jupyterhub_config.py: no spawn throttling, no periodic polls of 1,000 servers during the run.
        LABHUB_CONCURRENT_SPAWN_LIMIT: '0',
        LABHUB_SPAWNER__POLL_INTERVAL: '86400',
        ...this.extraEnv,
      },
    };
  }

  protected proxyPid(): number | undefined {
    // `{"component":"proxy","pid":<proxy pid>,…,"msg":"proxy started"}`: the last one is the current proxy.
    if (!existsSync(this.logFile)) return undefined;
    const lines = readFileSync(this.logFile, 'utf8').split('\n').filter((l) => l.includes('"proxy started"'));
    const last = lines[lines.length - 1];
    if (!last) return undefined;
    try {
      const pid = (JSON.parse(last) as { pid?: unknown }).pid;
      return typeof pid === 'number' && pid !== this.proc?.pid && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  protected readLogLine(line: string): LogLine | undefined {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return undefined; // the one-time setup link and other plain text
    }
    const level = Number(rec.level);
    return {
      level: level >= 50 ? 'error' : level >= 40 ? 'warn' : 'info',
      message: `${String(rec.name ?? '')}: ${String(rec.msg ?? '')}`,
      http5xx: typeof rec.status === 'number' && rec.status >= 500,
    };
  }
}

export class JupyterHub extends Hub {
  readonly key = 'jupyterhub' as const;
  readonly label = 'JupyterHub 3.0';
  readonly readyPath = '/hub/api';
  readonly runningLine = 'JupyterHub is now running at';

  protected command() {
    return {
      cmd: '/usr/bin/python3',
      args: [JH_BIN, '-f', JH_CONFIG],
      cwd: this.dir,
      env: {
        ...this.baseEnv(),
        // Debian's CHP finds its modules (commander, …) only with this.
        NODE_PATH: '/usr/share/nodejs',
        BENCH_JH_DIR: this.dir,
        BENCH_JH_PORT: String(this.port),
        BENCH_JH_HUB_PORT: String(this.hubPort),
        BENCH_JH_API_PORT: String(this.apiPort),
        BENCH_JH_TOKEN: this.serviceToken,
        BENCH_JH_CHP: CHP_BIN,
      },
    };
  }

  /** Version of Debian's configurable-http-proxy, which JupyterHub starts. */
  static chpVersion(): string {
    try {
      return execFileSync(CHP_BIN, ['--version'], { encoding: 'utf8', env: { ...process.env, NODE_PATH: '/usr/share/nodejs' } }).trim();
    } catch {
      return '?';
    }
  }

  protected proxyPid(): number | undefined {
    const file = join(this.dir, 'jupyterhub-proxy.pid');
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  }

  protected readLogLine(line: string): LogLine | undefined {
    // Hub: `[W 2026-… JupyterHub app:123] message`; access log: `[I … log:186] 200 GET /hub/api (…) 1.35ms`.
    // CHP: `04:39:16.951 [ConfigProxy] warn: …` (with colour codes).
    const plain = line.replace(/\x1b\[[0-9;]*m/g, ''); // eslint-disable-line no-control-regex
    const hub = /^\[([DIWEC]) [^\]]*\] (.*)$/.exec(plain);
    const chp = /\[ConfigProxy\] (\w+): (.*)$/.exec(plain);
    const letter = hub ? hub[1] : chp ? ({ warn: 'W', error: 'E' } as Record<string, string>)[chp[2] ? chp[1]! : ''] ?? 'I' : 'I';
    const message = hub ? hub[2]! : chp ? chp[2]! : plain;
    if (message.startsWith('Received signal SIGTERM')) return undefined; // logged at error level on every clean stop
    return {
      level: letter === 'W' ? 'warn' : letter === 'E' || letter === 'C' ? 'error' : 'info',
      message,
      http5xx: /^5\d\d (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /.test(message),
      // While the hub starts, CHP answers the benchmark's readiness polls with 404 and logs two errors for each.
      startupPoll: !!chp && (/^404 GET \/hub\/api\s*$/.test(message) || message.startsWith('Failed to get custom error page')),
    };
  }
}

/** An admin user plus a generated (fast-hash) API token for it, made with the hub's service token. */
export async function adminApi(hub: Hub, name: string): Promise<HubApi> {
  const service = new HubApi(hub.publicUrl, hub.serviceToken);
  try {
    await service.expect('POST', `/users/${name}`, [201], { admin: true });
    const res = await service.expect('POST', `/users/${name}/tokens`, [200, 201], { note: 'bench' });
    const token = (JSON.parse(res.body) as { token: string }).token;
    const api = new HubApi(hub.publicUrl, token);
    await api.expect('GET', `/users/${name}`, [200]);
    return api;
  } finally {
    service.close();
  }
}
