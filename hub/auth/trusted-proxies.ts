import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { LabHubConfig } from '../config/schema.js';
import type { Logger } from '../log.js';

/**
 * Who may tell the hub a client's address. The hub's view of a browser is what the login throttle keys on: behind a
 * proxy in another pod or container every request comes from the proxy's address, so unless the proxy's
 * X-Forwarded-For is believed, every browser shares one throttle bucket and one anonymous client can hold all
 * logins. Believing it from anyone else would let a client pick its own address. So X-Forwarded-For is taken only
 * from the proxy the hub runs (loopback, in managed mode), the proxies it names (`proxy.api_url(s)` hosts) and
 * `hub.trusted_proxies`; Express then takes the right-most address that is not one of those as the client's.
 */

/** An IP address, a CIDR block, or a host name resolved (again every `refreshMs`) to the addresses it has. */
export function proxyEntryProblem(entry: string): string | null {
  const [address, bits, extra] = entry.split('/');
  if (bits !== undefined) {
    const family = isIP(address ?? '');
    const max = family === 4 ? 32 : 128;
    if (!family || extra !== undefined || !/^\d{1,3}$/.test(bits) || Number(bits) > max) return `${entry.slice(0, 64)}: expected an IP address, a CIDR block or a host name`;
    return null;
  }
  if (isIP(entry) || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(entry)) return null;
  return `${entry.slice(0, 64)}: expected an IP address, a CIDR block or a host name`;
}

const family = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? m[1]! : address;
}

export class TrustedProxies {
  private readonly fixed = new BlockList();
  /** Addresses of each host name at its last successful lookup. */
  private readonly resolved = new Map<string, ReadonlySet<string>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(entries: readonly string[], private readonly hostnames: readonly string[], private readonly log: Logger, private readonly refreshMs = 10_000) {
    for (const entry of entries) {
      const [address, bits] = entry.split('/') as [string, string | undefined];
      if (bits === undefined) this.fixed.addAddress(address, family(address));
      else this.fixed.addSubnet(address, Number(bits), family(address));
    }
  }

  /** The proxies a hub with this config runs or names, plus the ones its admin listed. */
  static fromConfig(config: LabHubConfig, log: Logger): TrustedProxies {
    const named = [...config.hub.trusted_proxies, ...(config.proxy.api_urls ?? [config.proxy.api_url]).map((u) => new URL(u).hostname.replace(/^\[|\]$/g, ''))];
    const addresses = named.filter((n) => isIP(n.split('/')[0] ?? ''));
    if (config.proxy.mode === 'managed') addresses.push('127.0.0.0/8', '::1');
    return new TrustedProxies(addresses, [...new Set(named.filter((n) => !isIP(n.split('/')[0] ?? '')))], log);
  }

  trusts(address: string): boolean {
    const plain = unmapped(address);
    if (!isIP(plain)) return false;
    return this.fixed.check(plain, family(plain)) || [...this.resolved.values()].some((set) => set.has(plain));
  }

  /** Resolves the host names again; a name that does not resolve keeps its last addresses. */
  async refresh(): Promise<void> {
    await Promise.all(this.hostnames.map(async (name) => {
      try {
        this.resolved.set(name, new Set((await lookup(name, { all: true })).map(({ address }) => unmapped(address))));
      } catch (err) {
        this.log.warn({ host: name, err: (err as Error).message }, 'trusted proxy name does not resolve; keeping its last addresses');
      }
    }));
  }

  /** First resolution now, then every `refreshMs` (a replaced proxy pod comes back with a new address). */
  async start(): Promise<void> {
    await this.refresh();
    if (this.hostnames.length === 0) return;
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
