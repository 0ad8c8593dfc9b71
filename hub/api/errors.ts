import type { ErrorRequestHandler, RequestHandler } from 'express';
import { HttpError, publicMessage } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * Turns every error under /hub/api into JupyterHub's `{status, message}` JSON. Body-parser errors (bad JSON,
 * too large, bad encoding) are client errors with their own status; anything else unexpected is a logged 500
 * whose details stay in the log.
 */
export function apiErrorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let status: number;
    let message: string;
    const parserError = err as { type?: string; status?: number; expose?: boolean };
    if (err instanceof HttpError) {
      ({ status, message } = publicMessage(err));
      for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
    } else if (parserError.type === 'entity.parse.failed') {
      status = 400;
      message = 'Request body is not valid JSON';
    } else if (parserError.type === 'entity.too.large') {
      status = 413;
      message = 'Request body is too large';
    } else if (err instanceof URIError) {
      status = 400;
      message = 'The request path is not valid percent-encoding';
    } else if (parserError.expose && typeof parserError.status === 'number' && parserError.status < 500) {
      status = parserError.status;
      message = 'Request body could not be read';
    } else {
      status = 500;
      message = 'Internal server error';
      log.error({ err, method: req.method, path: loggablePath(req.originalUrl) }, 'unhandled error in API');
    }
    if (res.headersSent) return void res.end();
    res.status(status).json({ status, message });
  };
}

/** The path is not repeated back: it may carry a secret (the deprecated `/authorizations/token/<token>`). */
export const apiNotFound: RequestHandler = (req, res) => {
  res.status(404).json({ status: 404, message: `Not found: no ${req.method} endpoint at this path` });
};

/** A request path fit for a log line: the deprecated lookups carry a token or a session cookie in the path. */
export function loggablePath(path: string): string {
  return path.replace(/(\/authorizations\/(?:token|cookie\/[^/?]*))\/[^?]*/, '$1/[redacted]').split('?')[0]!.slice(0, 200);
}
