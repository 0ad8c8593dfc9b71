import { Router } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import { HttpError } from '../errors.js';
import type { ProxyAddress } from '../proxy-switch.js';
import { hasRequestBody, paginatedBody, pagination, parseInput, requestUrl, wantsPagination } from './validate.js';

/**
 * JupyterHub's code reads `api_url` and `auth_token`; its spec documents `ip`, `port`, `protocol` and `auth_token`.
 * Both shapes are taken, never mixed.
 */
const patchBody = z.strictObject({
  api_url: z.string().min(1).max(2000).optional(),
  ip: z.string().regex(/^[\w.:\-[\]]{1,255}$/, 'must be a host name or an IP address').optional(),
  port: z.union([z.string().regex(/^\d{1,5}$/, 'must be a port number'), z.number().int()]).optional(),
  protocol: z.enum(['http', 'https']).optional(),
  // Sent in a header: printable characters only, so it can neither break the request nor smuggle another header.
  auth_token: z.string().regex(/^[\x21-\x7e]{1,1024}$/, 'must be a non-empty token of printable characters without spaces').optional(),
});

/**
 * `/proxy`: the proxy's routing table as JupyterHub shows it (only the routes the hub made, keyed by routespec with
 * a trailing `/`, `{routespec, target, data}`), and a forced re-sync. Both need the `proxy` scope.
 */
export function proxyRouter(ctx: HubContext): Router {
  const router = Router();

  router.get('/proxy', async (req, res) => {
    await ctx.authz.require(res.locals.requester ?? null, ['proxy']);
    const paginated = wantsPagination(req.get('accept'));
    const { offset, limit } = pagination(req.query, paginated);
    // The hub's own route may be the proxy's default target (set by flag, without data): it is shown as JupyterHub does.
    const table = Object.entries(await ctx.proxy.getRoutes())
      .filter(([path, entry]) => entry.jupyterhub === true || (path === '/' && entry.target === ctx.hubUrl))
      .map(([path, entry]) => {
        const { target, last_activity: _activity, jupyterhub: _tag, ...data } = entry;
        const routespec = path.endsWith('/') ? path : `${path}/`;
        return [routespec, { routespec, target, data: path === '/' ? { ...data, hub: true } : data }] as const;
      })
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const page = Object.fromEntries(table.slice(offset, offset + limit));
    // JupyterHub pages the table as a dict, items included.
    res.json(paginated ? paginatedBody(page, offset, limit, table.length, requestUrl(req)) : page);
  });

  router.post('/proxy', async (_req, res) => {
    await ctx.authz.require(res.locals.requester ?? null, ['proxy']);
    await ctx.servers.syncRoutes(ctx.hubUrl);
    res.status(200).end();
  });

  /**
   * Points the hub at another proxy and writes every route into it; the hub switches only once the new proxy has
   * them. JupyterHub answers 200 with no body.
   */
  router.patch('/proxy', async (req, res) => {
    await ctx.authz.require(res.locals.requester ?? null, ['proxy']);
    if (!hasRequestBody(req)) throw new HttpError(400, 'need JSON body');
    const request = parseInput(patchBody, req.body);
    if (!ctx.proxySwitch) {
      throw new HttpError(409, 'This hub keeps several proxy instances in sync (proxy.api_urls); change them in its config and restart it');
    }
    await ctx.proxySwitch.moveTo(nextProxy(ctx.proxySwitch.apiUrl, ctx.proxySwitch.authToken, request));
    res.status(200).end();
  });

  return router;
}

/** The address and token of the proxy a PATCH names, from the current one and what the body changes. */
function nextProxy(currentUrl: string, currentToken: string, request: z.infer<typeof patchBody>): ProxyAddress {
  const { api_url: apiUrl, ip, port, protocol, auth_token: authToken } = request;
  if (apiUrl !== undefined && (ip ?? port ?? protocol) !== undefined) {
    throw new HttpError(400, 'Invalid request body: give either api_url or ip, port and protocol, not both');
  }
  let url: URL;
  if (apiUrl !== undefined) {
    url = parseUrl(apiUrl);
  } else {
    const current = new URL(currentUrl);
    const host = ip === undefined ? current.host.replace(/:\d+$/, '') : ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip;
    const portNumber = port === undefined ? current.port : String(port);
    if (portNumber !== '' && (Number(portNumber) < 1 || Number(portNumber) > 65535)) throw new HttpError(400, 'Invalid request body: port: must be between 1 and 65535');
    url = parseUrl(`${protocol ?? current.protocol.slice(0, -1)}://${host}${portNumber && `:${portNumber}`}${current.pathname}`);
  }
  // The hub's proxy token goes only where it already goes: a proxy elsewhere must be given its own.
  if (authToken === undefined && url.origin !== new URL(currentUrl).origin) {
    throw new HttpError(400, 'Invalid request body: auth_token: needed for a proxy at another address (the hub does not send its current proxy token to a new one)');
  }
  return { apiUrl: url.href.replace(/\/+$/, ''), authToken: authToken ?? currentToken };
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HttpError(400, 'Invalid request body: the proxy API address is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpError(400, 'Invalid request body: the proxy API address must be http or https');
  if (url.username || url.password || url.search || url.hash || !url.hostname) {
    throw new HttpError(400, 'Invalid request body: the proxy API address must be scheme://host[:port][/path], without credentials, query or fragment');
  }
  return url;
}
