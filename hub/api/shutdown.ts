import { Router } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import { HttpError } from '../errors.js';
import { isEmptyBody, parseInput } from './validate.js';

// JupyterHub's defaults are its cleanup_proxy and cleanup_servers; LabHub's are what Ctrl-C does: the proxy it
// started stops, users' servers keep running.
const shutdownBody = z.strictObject({ proxy: z.boolean().default(true), servers: z.boolean().default(false) });

/** `POST /shutdown` (scope `shutdown`): answers 202, then the hub stops, with its proxy and servers if asked. */
export function shutdownRouter(ctx: HubContext): Router {
  const router = Router();
  router.post('/shutdown', async (req, res) => {
    await ctx.authz.require(res.locals.requester ?? null, ['shutdown']);
    const request = parseInput(shutdownBody, isEmptyBody(req.body) ? {} : req.body);
    if (!ctx.requestShutdown) throw new HttpError(400, 'This hub was not started by labhub start and cannot shut itself down');
    ctx.log.warn({ by: res.locals.requester!.name, ...request }, 'shutdown requested through the API');
    res.status(202).json({ message: 'Shutting down Hub' });
    res.once('finish', () => ctx.requestShutdown!(request));
  });
  return router;
}
