import { HttpError } from '../hub/errors.js';

const LOOPBACK_HOSTS = /^(localhost|127\.\d+\.\d+\.\d+|\[::1?\]|0\.0\.0\.0)$/i;

/**
 * The hub's single-user environment for a server in a container or pod: JUPYTERHUB_API_URL and
 * JUPYTERHUB_ACTIVITY_URL moved to `hubConnectUrl` (how such servers reach the hub), JUPYTERHUB_SERVICE_URL on all
 * interfaces, and a clear error when the hub's address is a loopback one, which no container can reach.
 */
export function containerHubEnv(env: Record<string, string>, opts: { hubConnectUrl: string | undefined; port: number; prefix: string; advice: string }): Record<string, string> {
  const out: Record<string, string> = { ...env };
  const hubApi = out.JUPYTERHUB_API_URL;
  if (opts.hubConnectUrl && hubApi) {
    const api = `${opts.hubConnectUrl.replace(/\/+$/, '')}/hub/api`;
    for (const key of ['JUPYTERHUB_API_URL', 'JUPYTERHUB_ACTIVITY_URL']) {
      const value = out[key];
      if (value?.startsWith(hubApi)) out[key] = api + value.slice(hubApi.length);
    }
  }
  out.JUPYTERHUB_SERVICE_URL = `http://0.0.0.0:${opts.port}${opts.prefix}`;
  const api = out.JUPYTERHUB_API_URL;
  if (api && URL.canParse(api) && LOOPBACK_HOSTS.test(new URL(api).hostname)) {
    throw new HttpError(500, `Notebook servers cannot reach the hub at ${new URL(api).origin} (a loopback address inside a container). ${opts.advice}`);
  }
  return out;
}
