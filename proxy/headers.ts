/**
 * Header rewriting for forwarding, on Node's flat raw header arrays (`[name, value, name, value, ...]`): they keep
 * duplicates and spelling, and reading them costs no object per request the way `req.headers` does.
 */

/** Connection-scoped headers (RFC 9110 §7.6.1) that each hop sets for itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
/**
 * Request headers the upstream client sets itself: it keeps its connections alive, frames the body it streams
 * (Content-Length when the client sent one, else chunked), and the client's `Expect: 100-continue` was already
 * answered by this hop's server.
 */
const REQUEST_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'transfer-encoding', 'expect']);

/** RFC 9110 `token`: what a header name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What Node's and undici's clients accept in a header value: Latin-1 without control characters but tab (so no CR, LF, NUL). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers the proxy frames or negotiates itself on each hop: a fixed value would break every request. */
const NOT_CUSTOMIZABLE = new Set([...REQUEST_HOP_BY_HOP, 'content-length']);

/** Fixed headers for every upstream request (CHP's `--custom-header`), prepared once for the request path. */
export interface CustomHeaders {
  /** Lower-case names: what the client or the proxy would send under them is replaced. */
  names: ReadonlySet<string>;
  /** Flat `[name, value, ...]`, in the order given, the last of a repeated name only. */
  raw: readonly string[];
}

/** Why a custom header cannot be sent, or undefined when it can. */
export function customHeaderProblem(name: string, value: string): string | undefined {
  if (!TOKEN.test(name)) return `'${name}' is not a valid header name`;
  if (NOT_CUSTOMIZABLE.has(name.toLowerCase())) return `'${name}' is set by the proxy itself on each hop`;
  if (!FIELD_VALUE.test(value)) return `the value of '${name}' has a character no header can carry (a control character such as CR, LF or NUL, or one beyond Latin-1)`;
  return undefined;
}

/** Throws on a header that `customHeaderProblem` refuses. */
export function customHeaders(pairs: readonly (readonly [string, string])[]): CustomHeaders {
  const byName = new Map<string, [string, string]>();
  for (const [name, value] of pairs) {
    const problem = customHeaderProblem(name, value);
    if (problem) throw new TypeError(`custom header: ${problem}`);
    const lower = name.toLowerCase();
    byName.delete(lower);
    byName.set(lower, [name, value]);
  }
  return { names: new Set(byName.keys()), raw: [...byName.values()].flat() };
}

export interface ForwardedFor {
  /** The client's address. */
  remoteAddress: string | undefined;
  /** `https`/`http`, or `wss`/`ws` for websocket upgrades (http-proxy's values, which CHP sends). */
  proto: string;
  /** The port the client addressed when the Host header names none. */
  defaultPort: string;
}

export interface RequestHeaders {
  headers: string[];
  /** The request has a body to stream (a Content-Length above 0 or a Transfer-Encoding). */
  hasBody: boolean;
}

/**
 * The client's headers for the upstream request. For plain HTTP the hop-by-hop headers are dropped; for upgrades
 * `Connection` and `Upgrade` stay, since they are the request. With `forwarded`, X-Forwarded-For/-Port/-Proto are appended to what a proxy
 * in front already set, and X-Forwarded-Host is set unless present. `custom` headers come last and win over all of
 * these, as CHP's do.
 */
export function upstreamRequestHeaders(raw: string[], upgrade: boolean, forwarded: ForwardedFor | undefined, custom?: CustomHeaders): RequestHeaders {
  const replaced = custom?.names;
  const headers: string[] = [];
  let hasBody = false;
  let host: string | undefined;
  let xfFor: string | undefined;
  let xfPort: string | undefined;
  let xfProto: string | undefined;
  let xfHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') hasBody = true;
    else if (lower === 'content-length') hasBody ||= value !== '0';
    if (REQUEST_HOP_BY_HOP.has(lower) && !(upgrade && (lower === 'connection' || lower === 'upgrade'))) continue;
    if (lower === 'host') host = value;
    if (replaced !== undefined && replaced.has(lower)) continue;
    if (forwarded && lower.startsWith('x-forwarded-')) {
      if (lower === 'x-forwarded-for') xfFor = join(xfFor, value);
      else if (lower === 'x-forwarded-port') xfPort = join(xfPort, value);
      else if (lower === 'x-forwarded-proto') xfProto = join(xfProto, value);
      else {
        xfHost ||= lower === 'x-forwarded-host';
        headers.push(name, value);
      }
      continue;
    }
    headers.push(name, value);
  }
  if (forwarded) {
    if (!replaced?.has('x-forwarded-for')) headers.push('x-forwarded-for', join(xfFor, forwarded.remoteAddress ?? ''));
    if (!replaced?.has('x-forwarded-port')) headers.push('x-forwarded-port', join(xfPort, portOf(host) ?? forwarded.defaultPort));
    if (!replaced?.has('x-forwarded-proto')) headers.push('x-forwarded-proto', join(xfProto, forwarded.proto));
    if (!xfHost && host !== undefined && !replaced?.has('x-forwarded-host')) headers.push('x-forwarded-host', host);
  }
  if (custom !== undefined) for (let i = 0; i < custom.raw.length; i++) headers.push(custom.raw[i]!);
  return { headers, hasBody };
}

/** The target's response headers for the client, without hop-by-hop headers: Node's server frames the body itself. */
export function clientResponseHeaders(raw: string[]): string[] {
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, raw[i + 1]!);
  }
  return headers;
}

/**
 * The same for a response whose headers arrive parsed (lower-case names, repeated headers as arrays), as a flat
 * list for `writeHead`.
 */
export function clientResponseHeadersOf(parsed: Readonly<Record<string, string | string[] | undefined>>): string[] {
  const headers: string[] = [];
  for (const name in parsed) {
    const value = parsed[name];
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (typeof value === 'string') headers.push(name, value);
    else for (const each of value) headers.push(name, each);
  }
  return headers;
}

/** A response head written by hand on a socket, with the headers as received (for upgrades and their refusals). */
export function rawResponseHead(status: number, statusMessage: string, raw: string[]): string {
  let head = `HTTP/1.1 ${status} ${statusMessage}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${head}\r\n`;
}

function join(existing: string | undefined, value: string): string {
  return existing === undefined ? value : `${existing},${value}`;
}

/** The port of a Host header value (`host:port`, `[v6]:port`), if it names one. */
function portOf(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const colon = host.lastIndexOf(':');
  return colon > host.lastIndexOf(']') ? host.slice(colon + 1) : undefined;
}
