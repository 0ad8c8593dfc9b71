/**
 * The proxy's routing table: a trie keyed by whole, percent-decoded path segments, so a lookup costs
 * O(segments in the URL) whatever the number of routes, and `/user/a` matches `/user/a/x` but never `/user/ab`.
 */
import { revokedOf, type Revoked } from './revocations.js';

/** What a route is stored with: the body of `POST /api/routes/<path>` (CHP keeps it whole). */
export interface RouteData {
  target: string;
  [key: string]: unknown;
}

/** Only these can be forwarded to over TCP. */
const TARGET_PROTOCOLS = new Set(['http:', 'https:']);

/** The target as a URL, or undefined when it is not an absolute http(s) URL. */
export function parseTarget(target: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return undefined;
  }
  return TARGET_PROTOCOLS.has(url.protocol) && url.hostname !== '' ? url : undefined;
}

/**
 * CHP's key form: leading `/`, no trailing `/` except the root. Repeated slashes are collapsed too, because the
 * trie ignores empty segments and two spellings of one key must not name two routes.
 */
export function normalizeRoutePath(path: string): string {
  return '/' + splitSegments(path).join('/');
}

function splitSegments(path: string): string[] {
  return path.split('/').filter((segment) => segment !== '');
}

/** Where and how a route's requests go, worked out once when the route is added instead of on every request. */
export interface Upstream {
  /** `scheme://host:port`: the key of the target's connection pool. */
  origin: string;
  https: boolean;
  /** Without IPv6 brackets, as `http.request` wants it. */
  hostname: string;
  port: number;
  /** The target's path without its trailing slash (`''` for `/`): prepended to forwarded paths. */
  basePath: string;
}

function upstreamOf(target: URL): Upstream {
  const https = target.protocol === 'https:';
  return {
    origin: target.origin,
    https,
    hostname: target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname,
    port: target.port ? Number(target.port) : https ? 443 : 80,
    basePath: target.pathname.endsWith('/') ? target.pathname.slice(0, -1) : target.pathname,
  };
}

export class Route {
  readonly upstream: Upstream;
  /** Milliseconds since the epoch: a number, so recording traffic allocates nothing. */
  lastActivityMs = Date.now();
  /** Bound once per route so it can be handed to every `data` event without a closure per request. */
  readonly touch = (): void => {
    this.lastActivityMs = Date.now();
  };
  /** `JSON.stringify(data)` without its closing brace: the data never changes, only last_activity does. */
  private readonly dataJsonOpen: string;
  /** Tokens the hub revoked for this route (see `revocations.ts`); undefined for nearly every route. */
  readonly revoked: Revoked | undefined;

  constructor(
    readonly path: string,
    readonly target: URL,
    readonly data: Readonly<RouteData>,
  ) {
    this.dataJsonOpen = JSON.stringify(data).slice(0, -1);
    this.upstream = upstreamOf(target);
    this.revoked = revokedOf(data);
  }

  get lastActivity(): Date {
    return new Date(this.lastActivityMs);
  }

  /** The API's representation: the stored data plus `last_activity` as ISO 8601 (CHP's shape). */
  toJSON(): RouteData & { last_activity: string } {
    return { ...this.data, last_activity: this.lastActivity.toISOString() };
  }

  /** Same as `JSON.stringify(route)`, without re-serializing the data on every listing of the table. */
  toJSONString(): string {
    return `${this.dataJsonOpen},"last_activity":"${this.lastActivity.toISOString()}"}`;
  }
}

export interface RouteMatch {
  route: Route;
  /** Index in the request URL where the matched prefix ends: what `--no-include-prefix` strips. */
  prefixEnd: number;
}

/** Why a request URL cannot be routed; see {@link RouteTable.match}. */
export type UnroutableReason = 'no-route' | 'bad-path';

class TrieNode {
  children: Map<string, TrieNode> | undefined;
  route: Route | undefined;
}

const SLASH = 0x2f;

export class RouteTable {
  private readonly root = new TrieNode();
  private readonly byPath = new Map<string, Route>();
  private readonly addListeners: ((route: Route) => void)[] = [];

  get size(): number {
    return this.byPath.size;
  }

  /**
   * Adds or replaces the route for `path` (decoded, as the API receives it after decoding). `last_activity` starts
   * now, and any `last_activity` in `data` is dropped: the proxy owns it. Throws a TypeError when the target is
   * not an absolute http(s) URL.
   */
  add(path: string, data: RouteData): Route {
    const target = parseTarget(data.target);
    if (!target) throw new TypeError(`route target must be an absolute http(s) URL: ${data.target}`);
    const { last_activity: _ignored, ...stored } = data;
    const segments = splitSegments(path);
    const route = new Route('/' + segments.join('/'), target, stored as RouteData);
    let node = this.root;
    for (const segment of segments) {
      node.children ??= new Map();
      let child = node.children.get(segment);
      if (!child) {
        child = new TrieNode();
        node.children.set(segment, child);
      }
      node = child;
    }
    node.route = route;
    this.byPath.set(route.path, route);
    for (const listener of this.addListeners) listener(route);
    return route;
  }

  /** Calls `listener` with every route added or replaced from now on, after the table holds it. */
  onAdd(listener: (route: Route) => void): void {
    this.addListeners.push(listener);
  }

  /** Removes the route stored exactly at `path`; returns whether there was one. Prunes branches left empty. */
  remove(path: string): boolean {
    const key = normalizeRoutePath(path);
    if (!this.byPath.delete(key)) return false;
    const segments = splitSegments(key);
    const trail: TrieNode[] = [this.root];
    for (const segment of segments) trail.push(trail[trail.length - 1]!.children!.get(segment)!);
    trail[trail.length - 1]!.route = undefined;
    for (let depth = segments.length; depth > 0; depth--) {
      const node = trail[depth]!;
      if (node.route || node.children?.size) break;
      trail[depth - 1]!.children!.delete(segments[depth - 1]!);
    }
    return true;
  }

  /** The route stored exactly at `path` (normalized first), not a prefix match. */
  get(path: string): Route | undefined {
    return this.byPath.get(normalizeRoutePath(path));
  }

  /** Every route, in insertion order. */
  values(): IterableIterator<Route> {
    return this.byPath.values();
  }

  /**
   * The route whose path is the longest whole-segment prefix of a request URL's path (`req.url`: origin-form,
   * query allowed).
   *
   * Each segment is percent-decoded once before it is compared, so `/user/foo%40bar` and `/user/foo@bar` are one
   * route (as in CHP); empty segments (`//`) are skipped. The request is refused ('bad-path', answered with 400)
   * instead of being resolved when:
   * - any segment, anywhere in the path, is `.` or `..` after decoding, or contains one between encoded slashes
   *   or backslashes (`%2e%2e`, `..%2f`, `..%5c`). The URL is forwarded as received, and a target (or a proxy library
   *   re-parsing it with WHATWG URL rules) would resolve those segments after routing: `/user/alice/../bob/x` would be
   *   routed to alice but arrive as `/user/bob/x`. Browsers never send dot segments, so refusing them costs
   *   nothing and leaves one meaning for every routed path.
   * - the path holds a raw backslash: WHATWG URL reads it as `/` (a path starting `/\` even names a host), and
   *   browsers never send one.
   * - a segment contains an encoded slash or backslash where it takes part in matching, i.e. the trie could have
   *   gone deeper at that point (`/user/alice%2Fbob`): such a segment could never match a route key, yet a
   *   backend that decodes it would read it as two segments.
   * - the URL is not origin-form (does not start with `/`) or its percent-encoding is malformed.
   * Encoded slashes past the matched prefix (inside a user's server, e.g. a file path) are forwarded untouched.
   */
  match(url: string): RouteMatch | UnroutableReason {
    if (url.charCodeAt(0) !== SLASH) return 'bad-path';
    const pathEnd = endOfPath(url);
    const backslash = url.indexOf('\\');
    if (backslash !== -1 && backslash < pathEnd) return 'bad-path';
    let node: TrieNode | undefined = this.root;
    let best = this.root.route;
    let bestEnd = 0;
    let start = 1;
    while (start <= pathEnd) {
      let end = url.indexOf('/', start);
      if (end === -1 || end > pathEnd) end = pathEnd;
      if (end > start) {
        const segment = decodeSegment(url.slice(start, end));
        if (segment === undefined || hasDotSegment(segment)) return 'bad-path';
        if (node) {
          const child: TrieNode | undefined = node.children?.get(segment);
          if (child) {
            if (child.route) {
              best = child.route;
              bestEnd = end;
            }
          } else if (node.children && hasSeparator(segment)) {
            return 'bad-path';
          }
          node = child;
        }
      }
      start = end + 1;
    }
    return best ? { route: best, prefixEnd: bestEnd } : 'no-route';
  }
}

/** The path ends at the query or, should a client send one, a fragment (WHATWG URL drops it when forwarding). */
function endOfPath(url: string): number {
  const query = url.indexOf('?');
  const fragment = url.indexOf('#');
  if (query === -1) return fragment === -1 ? url.length : fragment;
  return fragment === -1 || query < fragment ? query : fragment;
}

function decodeSegment(raw: string): string | undefined {
  if (raw.indexOf('%') === -1) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

function hasSeparator(segment: string): boolean {
  return segment.indexOf('/') !== -1 || segment.indexOf('\\') !== -1;
}

function isDot(piece: string): boolean {
  return piece === '.' || piece === '..';
}

/** Backends that decode `%5c` may treat the backslash as a separator (Windows paths), so it splits too. */
function hasDotSegment(segment: string): boolean {
  if (isDot(segment)) return true;
  if (segment.indexOf('.') === -1 || !hasSeparator(segment)) return false;
  return segment.split(/[/\\]/).some(isDot);
}
