/**
 * Process control for the benchmarks: child processes in their own process group with output to a log file,
 * graceful stop with a time limit, and one cleanup (processes by id, then temp dirs) that runs at the end, on
 * errors and on SIGINT/SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpRequest } from './http.js';

/** The tests' free-port finder serves the benchmarks too. */
export { freePort } from '../../tests/helpers/ports.js';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits until `pid` has exited (polling; for processes that are not our children). */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(20);
  }
  return !isAlive(pid);
}

export interface ManagedOptions {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
}

/** One child process, started in its own process group (so a Ctrl-C of the benchmark never reaches it directly). */
export class ManagedProcess {
  child: ChildProcess | null = null;
  exited: Promise<number | null> = Promise.resolve(null);
  /** Further process ids this one started (e.g. its proxy), ended by cleanup if still alive. */
  readonly companions = new Set<number>();

  constructor(readonly name: string, private readonly options: ManagedOptions) {
    registry.add(this);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    const fd = openSync(this.options.logFile, 'a');
    try {
      const child = spawn(this.options.cmd, this.options.args, {
        env: this.options.env, cwd: this.options.cwd, detached: true, stdio: ['ignore', fd, fd],
      });
      this.child = child;
      this.exited = new Promise((resolve) => {
        child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null)));
        child.once('error', () => resolve(-1));
      });
    } finally {
      closeSync(fd);
    }
  }

  /**
   * SIGTERM to the process itself (it shuts down what it started); SIGKILL to its group after `timeoutMs`.
   * `exit` is the exit code, or the signal that ended the process (a clean shutdown exits with 0).
   */
  async stop(timeoutMs = 30_000): Promise<{ ms: number; graceful: boolean; exit: string }> {
    const child = this.child;
    const t0 = performance.now();
    if (!child || !this.running) return { ms: 0, graceful: true, exit: 'not running' };
    child.kill('SIGTERM');
    const graceful = await Promise.race([this.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!graceful) this.killGroup();
    await this.exited;
    return { ms: performance.now() - t0, graceful, exit: child.signalCode ?? String(child.exitCode) };
  }

  /** Immediate SIGKILL of the process group and companions (cleanup path). */
  killGroup(): void {
    const pid = this.child?.pid;
    if (pid && this.running) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const companion of this.companions) {
      if (isAlive(companion)) {
        try {
          process.kill(companion, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}

const registry = new Set<ManagedProcess>();
const tempDirs = new Set<string>();
let keepTemp = false;

export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function keepTempDirs(keep: boolean): void {
  keepTemp = keep;
}

/** Graceful stop of everything still running (SIGTERM, then SIGKILL), then the temp dirs. */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...registry].map(async (p) => {
    await p.stop(10_000).catch(() => p.killGroup());
    for (const companion of p.companions) {
      if (!(await waitGone(companion, 5_000))) p.killGroup();
    }
  }));
  cleanupTempDirs();
}

/** Synchronous last resort (exit handler): SIGKILL to every group we started, then the temp dirs. */
export function cleanupNow(): void {
  for (const p of registry) p.killGroup();
  cleanupTempDirs();
}

function cleanupTempDirs(): void {
  if (keepTemp) {
    for (const dir of tempDirs) console.error(`kept ${dir}`);
  } else {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  }
  tempDirs.clear();
}

let cleaning = false;

/** Whether a SIGINT/SIGTERM is shutting the benchmark down (errors from cut-off requests are expected then). */
export function interrupted(): boolean {
  return cleaning;
}

/** SIGINT/SIGTERM: clean up and exit 130/143; a second signal kills at once. */
export function installSignalCleanup(): void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (cleaning) {
      cleanupNow();
      process.exit(1);
    }
    cleaning = true;
    console.error(`\n${signal}: stopping the hubs and removing temp dirs…`);
    void cleanupAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanupNow);
}

/**
 * Polls `url` with a fresh connection each time until it answers 200; resolves with the ms since `t0`
 * (a performance.now() timestamp). Throws if `alive()` turns false or after `timeoutMs`.
 */
export async function waitFor200(url: string, t0: number, alive: () => boolean, timeoutMs = 120_000, intervalMs = 10): Promise<number> {
  const deadline = t0 + timeoutMs;
  for (;;) {
    const status = await httpRequest(url, { timeoutMs: 5_000 }).then((r) => r.status, () => 0);
    const now = performance.now();
    if (status === 200) return now - t0;
    if (!alive()) throw new Error(`process exited before ${url} answered 200`);
    if (now > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last status ${status})`);
    await sleep(intervalMs);
  }
}
