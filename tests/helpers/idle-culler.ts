import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JH5_VENV } from './jupyter.js';

/**
 * The real jupyterhub-idle-culler (PyPI, installed into the JupyterHub 5 venv by scripts/setup-test-env.sh), run
 * against a hub as a service with a token. It has no one-shot mode: it culls once at start and then every
 * --cull-every seconds until killed.
 */
const PYTHON = `${JH5_VENV}/bin/python`;

export function cullerInstalled(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import jupyterhub_idle_culler'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** One jupyterhub-idle-culler process; `stop()` kills it and returns everything it printed. */
export class Culler {
  output = '';
  private child: ChildProcess | null = null;
  private readonly cwd = mkdtempSync(join(tmpdir(), 'labhub-culler-'));

  constructor(private readonly apiUrl: string, private readonly token: string) {}

  start(args: string[]): void {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('JUPYTERHUB_')) env[k] = v;
    // Its own empty working directory: the culler reads ./idle_culler_config.py when there is one.
    this.child = spawn(PYTHON, ['-m', 'jupyterhub_idle_culler', ...args], {
      cwd: this.cwd,
      env: { ...env, JUPYTERHUB_API_URL: this.apiUrl, JUPYTERHUB_API_TOKEN: this.token, PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  get exitCode(): number | null {
    return this.child?.exitCode ?? null;
  }

  async stop(): Promise<string> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    this.child = null;
    rmSync(this.cwd, { recursive: true, force: true });
    return this.output;
  }
}

/** Lines of culler output that report a problem: errors, criticals, tracebacks, failed HTTP calls. */
export function problems(output: string): string[] {
  return output.split('\n').filter((line) =>
    /^\[[EC] /.test(line) || /Traceback|Exception|HTTP 4\d\d|HTTP 5\d\d|HTTP 599/.test(line));
}
