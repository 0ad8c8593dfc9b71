import { ChpProxyClient } from '../proxy/chp-client.js';
import type { ProxyClient } from '../proxy/client.js';
import type { SwitchableProxyClient } from '../proxy/switchable-client.js';
import { HttpError } from './errors.js';
import type { Logger } from './log.js';

export interface ProxyAddress {
  apiUrl: string;
  authToken: string;
}

export interface ProxySwitchOptions {
  /** What the hub drives its proxy with, and what its supervisor checks it with. */
  proxy: SwitchableProxyClient;
  probe: SwitchableProxyClient;
  current: ProxyAddress;
  /** Writes the hub's routes into a proxy (the server manager's re-sync). */
  resync: (client: ProxyClient) => Promise<unknown>;
  /** Tells the supervisor to watch the new proxy (and never to start one at its address). */
  follow: (apiUrl: string) => void;
  log: Logger;
}

/** A first answer within this, or the proxy is taken as not there: a PATCH must not hang on a dead address. */
const PROBE_TIMEOUT_MS = 5000;

/**
 * `PATCH /hub/api/proxy`: points the hub at another proxy. The new proxy gets every route first; only when that
 * worked does the hub switch, so a proxy that does not answer leaves the hub on the one that works.
 */
export class ProxySwitch {
  private current: ProxyAddress;
  private switching = false;

  constructor(private readonly options: ProxySwitchOptions) {
    this.current = options.current;
  }

  get apiUrl(): string {
    return this.current.apiUrl;
  }

  get authToken(): string {
    return this.current.authToken;
  }

  async moveTo(next: ProxyAddress): Promise<void> {
    if (this.switching) throw new HttpError(409, 'Another change of proxy is under way; try again when it has finished');
    this.switching = true;
    try {
      const probe = new ChpProxyClient({ ...next, timeoutMs: PROBE_TIMEOUT_MS, retryDelaysMs: [] });
      const client = new ChpProxyClient(next);
      try {
        await probe.getRoutes();
        await this.options.resync(client);
      } catch (err) {
        throw new HttpError(502, `The proxy API at ${next.apiUrl} could not take the routes; the hub keeps using ${this.current.apiUrl}: ${(err as Error).message}`);
      }
      this.options.proxy.use(client);
      this.options.probe.use(probe);
      this.options.follow(next.apiUrl);
      const previous = this.current.apiUrl;
      this.current = next;
      this.options.log.info({ from: previous, to: next.apiUrl }, 'the hub now drives another proxy (PATCH /hub/api/proxy)');
      // Routes that changed while the new proxy was being filled went to the old one: one more pass catches them.
      await this.options.resync(client).catch((err: Error) => {
        this.options.log.warn({ err: err.message }, 'second re-sync of the new proxy failed; its supervisor retries');
      });
    } finally {
      this.switching = false;
    }
  }
}
