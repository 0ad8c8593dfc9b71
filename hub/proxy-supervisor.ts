import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from './log.js';
import type { ProxyClient } from '../proxy/client.js';

export interface ProxySupervisorOptions {
  /** managed: start the proxy when none answers, and again whenever it dies; external: only watch it. */
  managed: boolean;
  /** Command to start it; default LabHub's own proxy with this Node. CHP-compatible flags are appended. */
  command?: string[];
  publicIp: string;
  publicPort: number;
  apiUrl: string;
  authToken: string;
  hubUrl: string;
  checkIntervalMs: number;
  log: Logger;
  proxy: ProxyClient;
  /** The same API without retries: a health check must answer fast, not wait out a restart. */
  probe: ProxyClient;
  /** Puts the routes back; called after every (re)start of the proxy and when a check finds them missing. */
  resync: () => Promise<unknown>;
  /** Whether this proxy missed a route change (one of several instances was down): the next check re-syncs it. */
  missedChanges?: () => boolean;
}

const OWN_PROXY = fileURLToPath(new URL('../proxy/main.js', import.meta.url));

/**
 * Keeps a proxy running and its routes right. The proxy is a separate process so that a hub restart or crash never
 * drops users' traffic: a hub that starts while a proxy already answers adopts it instead of starting another.
 * A check every few seconds catches a proxy that died or restarted (its hub route is gone) and re-syncs.
 */
export class ProxySupervisor {
  private child: ChildProcess | null = null;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;
  private checking = false;

  private options: ProxySupervisorOptions;

  constructor(private readonly configured: ProxySupervisorOptions) {
    this.options = configured;
  }

  /**
   * The hub now drives the proxy at `apiUrl` (`PATCH /hub/api/proxy`): watch it and re-sync it, but start one
   * there only if it is the configured address of a managed proxy; whatever runs another proxy restarts it.
   * A proxy this hub started keeps running until the hub stops.
   */
  follow(apiUrl: string): void {
    const configured = new URL(this.configured.apiUrl).href === new URL(apiUrl).href;
    this.options = { ...this.configured, apiUrl, managed: this.configured.managed && configured };
  }

  /** Makes sure a proxy answers (adopting one, or launching ours), puts the routes in, and starts checking. */
  async start(): Promise<void> {
    // A second launch covers a proxy that dies while the hub starts (adopted, then killed before the first sync).
    for (let attempt = 1; ; attempt++) {
      if (!(await this.answers()) && this.options.managed) await this.launch();
      try {
        await this.waitUntilAnswering(15_000);
        await this.options.resync();
        break;
      } catch (err) {
        if (!this.options.managed || attempt >= 2) {
          // Keep watching: a proxy that answers later is re-synced by the next check.
          this.schedule();
          throw err;
        }
        this.options.log.warn({ err: (err as Error).message }, 'proxy stopped answering during start-up; starting it again');
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.closing) return;
    this.timer = setTimeout(() => void this.check().finally(() => this.schedule()), this.options.checkIntervalMs).unref();
  }

  /** One health check: relaunch a dead managed proxy, and re-sync when the hub's route is missing. */
  async check(): Promise<void> {
    if (this.checking || this.closing) return;
    this.checking = true;
    try {
      let routes = await this.options.probe.getRoutes().catch(() => null);
      if (routes === null && this.options.managed) {
        this.options.log.warn('proxy does not answer; starting a new one');
        await this.launch();
        await this.waitUntilAnswering(15_000);
        routes = {};
      }
      if (routes !== null && routes['/']?.target !== this.options.hubUrl) {
        this.options.log.info('proxy has lost its routes; re-syncing');
        await this.options.resync();
      } else if (routes !== null && this.options.missedChanges?.()) {
        this.options.log.info('proxy missed route changes; re-syncing');
        await this.options.resync();
      }
    } catch (err) {
      this.options.log.error({ err: (err as Error).message }, 'proxy check failed');
    } finally {
      this.checking = false;
    }
  }

  private async answers(): Promise<boolean> {
    return (await this.options.probe.getRoutes().catch(() => null)) !== null;
  }

  private async waitUntilAnswering(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.answers()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the proxy API at ${this.options.apiUrl} did not answer within ${timeoutMs / 1000} s`);
  }

  private async launch(): Promise<void> {
    const o = this.options;
    const api = new URL(o.apiUrl);
    const [cmd, ...baseArgs] = o.command ?? [process.execPath, OWN_PROXY];
    const args = [
      ...baseArgs,
      '--ip', o.publicIp, '--port', String(o.publicPort),
      '--api-ip', api.hostname, '--api-port', api.port || '80',
      '--default-target', o.hubUrl, '--error-target', `${o.hubUrl}/hub/error`,
    ];
    // Its own process group: a Ctrl-C or a kill of the hub's group does not take users' traffic down with it.
    const child = spawn(cmd!, args, {
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: o.authToken },
    });
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      if (!this.closing) {
        o.log.warn({ code, signal }, 'proxy exited; restarting it');
        setTimeout(() => void this.check(), 200).unref();
      }
    });
    child.on('error', (err) => o.log.error({ err: err.message }, 'could not start the proxy'));
    o.log.info({ pid: child.pid, cmd }, 'proxy started');
  }

  /** Stops checking; stops the proxy too if this hub started it and `stopProxy` is set. */
  async close(stopProxy: boolean): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    const child = this.child;
    if (stopProxy && child?.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    child?.unref();
  }
}
