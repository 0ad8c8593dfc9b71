/**
 * What the hub needs from a proxy. Implemented over CHP's REST API (`ChpProxyClient`), so the hub drives
 * LabHub's proxy or a real configurable-http-proxy alike.
 */
export interface RouteEntry {
  target: string;
  /** ISO 8601; set by the proxy on add and on traffic. */
  last_activity?: string;
  [key: string]: unknown;
}

export interface ProxyClient {
  /** Adds or replaces the route for a path prefix (`/user/alice/`); `data` is stored with the route. */
  addRoute(path: string, target: string, data: Record<string, unknown>): Promise<void>;
  /** Removes a route; a route that is already gone is not an error. */
  deleteRoute(path: string): Promise<void>;
  /** Every route, keyed by path as the proxy normalizes it (leading `/`, no trailing `/` except the root). */
  getRoutes(): Promise<Record<string, RouteEntry>>;
}
