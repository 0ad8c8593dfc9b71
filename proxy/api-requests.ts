/**
 * Whether a refused request came from an API client: a path with an `api` segment (JupyterHub's `/hub/api/…`, a
 * server's `/user/<name>/api/…`) or an `Accept` asking for JSON. Those get `{status, message}`, as JupyterHub and
 * Jupyter answer their own errors, whichever process (proxy or hub) refuses; browsers get a page.
 */
export function isApiRequest(url: string, accept: string | undefined): boolean {
  const path = url.split('?', 1)[0]!;
  return /(^|\/)api(\/|$)/i.test(path) || (accept ?? '').includes('application/json');
}
