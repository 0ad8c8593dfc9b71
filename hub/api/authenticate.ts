import type { NextFunction, Request, Response } from 'express';
import { HttpError } from '../errors.js';
import type { Requester } from '../auth/identity.js';
import type { HubContext } from '../context.js';

declare module 'express-serve-static-core' {
  interface Locals {
    requester?: Requester | null;
  }
}

/**
 * Identifies the caller of an API request. A token in the Authorization header is used alone; otherwise the
 * browser session, which must pass the XSRF rules of JupyterHub 4.1+ (research/auth.md §7.2):
 * every method but HEAD and OPTIONS is checked, except plain navigations (GET with `Sec-Fetch-Mode: navigate` or
 * none); `no-cors` is never exempt (GHSA-m68r-v472-jgq9); a cookie-authenticated POST must be JSON.
 */
export function authenticateApi(ctx: HubContext) {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const token = ctx.authz.headerToken(req);
      if (token !== undefined) {
        res.locals.requester = token ? await ctx.authz.fromToken(token) : null;
        return next();
      }
      const requester = await ctx.authz.fromSession(req);
      if (requester && needsXsrfCheck(req)) {
        if (!ctx.xsrf.check(req, requester.session!.id)) throw new HttpError(403, "'_xsrf' argument missing or invalid");
        if (req.method === 'POST' && hasBody(req) && !req.is('application/json')) {
          res.locals.requester = null;
          return next();
        }
      }
      res.locals.requester = requester;
      next();
    } catch (err) {
      next(err);
    }
  };
}

function needsXsrfCheck(req: Request): boolean {
  if (req.method === 'HEAD' || req.method === 'OPTIONS') return false;
  if (req.method === 'GET') {
    const mode = req.get('sec-fetch-mode');
    if (mode === undefined || mode === 'navigate') return false;
  }
  return true;
}

function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}
