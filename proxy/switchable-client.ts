import type { ProxyClient, RouteEntry } from './client.js';

/**
 * A proxy client whose proxy can be replaced while the hub runs (`PATCH /hub/api/proxy`). Everything that holds it
 * (the server manager, the supervisor's checks) follows the switch without being rebuilt; a call already under way
 * finishes on the proxy it started with.
 */
export class SwitchableProxyClient implements ProxyClient {
  constructor(private current: ProxyClient) {}

  use(client: ProxyClient): void {
    this.current = client;
  }

  addRoute(path: string, target: string, data: Record<string, unknown>): Promise<void> {
    return this.current.addRoute(path, target, data);
  }

  deleteRoute(path: string): Promise<void> {
    return this.current.deleteRoute(path);
  }

  getRoutes(): Promise<Record<string, RouteEntry>> {
    return this.current.getRoutes();
  }
}
