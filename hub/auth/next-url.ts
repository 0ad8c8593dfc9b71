/**
 * The `?next=` check that keeps login and other redirects on this hub (JupyterHub
 * `BaseHandler._validate_next_url`, 5.5.1, which includes the GHSA-3vff-hjqv-m7h8 fix).
 * Returns a safe redirect target, or "" meaning "use the default".
 */

export interface NextUrlOptions {
  /** Scheme browsers use to reach the hub. When omitted, http and https URLs for `host` both count as ours. */
  protocol?: string;
  /** Host (netloc) of `subdomain_host` when servers have per-user subdomains: it and its subdomains are ours. */
  subdomainHost?: string;
  /** Longer values are refused outright. */
  maxLength?: number;
}

export const NEXT_URL_MAX_LENGTH = 4096;

interface SplitUrl {
  netloc: string;
  path: string;
  query: string;
  fragment: string;
}

/** Python's `urllib.parse.urlsplit`, the parser upstream's rules are written against. */
function splitUrl(url: string): SplitUrl {
  let rest = url;
  const colon = rest.indexOf(':');
  if (colon > 0 && /^[a-zA-Z][a-zA-Z0-9+.-]*$/.test(rest.slice(0, colon))) rest = rest.slice(colon + 1);
  let netloc = '';
  if (rest.startsWith('//')) {
    const end = rest.slice(2).search(/[/?#]/);
    netloc = end < 0 ? rest.slice(2) : rest.slice(2, end + 2);
    rest = end < 0 ? '' : rest.slice(end + 2);
  }
  const hash = rest.indexOf('#');
  const fragment = hash < 0 ? '' : rest.slice(hash + 1);
  if (hash >= 0) rest = rest.slice(0, hash);
  const question = rest.indexOf('?');
  const query = question < 0 ? '' : rest.slice(question + 1);
  const path = question < 0 ? rest : rest.slice(0, question);
  return { netloc, path, query, fragment };
}

// Browsers silently drop tab and newline inside URLs ("/\t/evil.com" becomes "//evil.com") and treat other
// control characters inconsistently, so any of them makes the value unsafe to reason about.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

function isOurs(next: string, netloc: string, host: string, opts: NextUrlOptions): boolean {
  const lower = `${next}/`.toLowerCase();
  const ourHost = host.toLowerCase();
  const protocols = opts.protocol ? [opts.protocol.toLowerCase()] : ['http', 'https'];
  if (lower.startsWith(`//${ourHost}/`) || protocols.some((p) => lower.startsWith(`${p}://${ourHost}/`))) return true;
  const sub = opts.subdomainHost?.toLowerCase();
  return sub !== undefined && sub !== '' && netloc !== '' && `.${netloc.toLowerCase()}`.endsWith(`.${sub}`);
}

/**
 * `next` if it stays on this hub, reduced to a path when it is an absolute URL for our own host,
 * otherwise "". `host` is the hub's public host[:port] (from public_url, else the request's Host).
 */
export function validateNextUrl(next: string | undefined, host: string, opts: NextUrlOptions = {}): string {
  if (!next || next.length > (opts.maxLength ?? NEXT_URL_MAX_LENGTH) || CONTROL_CHARS.test(next)) return '';
  // Some browsers treat "\" as "/", turning "/\evil.com" into "//evil.com".
  let url = next.replaceAll('\\', '%5C');
  // Browsers read three or more leading slashes as two; Python's parser would see an empty host.
  if (url.startsWith('///')) url = `//${url.replace(/^\/+/, '')}`;
  let parsed = splitUrl(url);
  if (isOurs(url, parsed.netloc, host, opts)) {
    // One leading slash only: "https://HOST//evil.com" must not become the protocol-relative "//evil.com".
    url = `/${parsed.path.replace(/^\/+/, '')}`;
    if (parsed.query) url += `?${parsed.query}`;
    if (parsed.fragment) url += `#${parsed.fragment}`;
    parsed = splitUrl(url);
  }
  if (parsed.netloc || !url.startsWith('/')) return '';
  return url;
}
