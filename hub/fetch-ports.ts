/**
 * The ports the Fetch standard blocks (https://fetch.spec.whatwg.org/#port-blocking). Browsers refuse to open them,
 * and so does Node's `fetch`, which the hub uses for its proxy's API and OpenID Connect: the request fails before
 * connecting ("bad port"), so a hub pointed at one would only see a proxy or provider that never answers.
 */
export const FETCH_BLOCKED_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110,
  111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532,
  540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** Why browsers and `fetch` will not connect to `port`, or undefined when they will. */
export function blockedPortProblem(port: number): string | undefined {
  return FETCH_BLOCKED_PORTS.has(port) ? `port ${port} is one that browsers and Node's fetch refuse to connect to (the Fetch standard's blocked ports); choose another` : undefined;
}

/** The same for an http(s) URL's port, the scheme's default when it names none. */
export function blockedUrlPortProblem(url: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const { port, protocol } = new URL(url);
  if (protocol !== 'http:' && protocol !== 'https:') return undefined;
  return blockedPortProblem(Number(port || (protocol === 'https:' ? 443 : 80)));
}
