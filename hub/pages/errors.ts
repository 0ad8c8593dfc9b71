import type { ErrorRequestHandler, Request, Response } from 'express';
import { HttpError, publicMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { renderPage } from './render.js';
import { isApiRequest } from '../../proxy/api-requests.js';
import { validateNextUrl } from '../auth/next-url.js';

const TITLES: Record<number, string> = {
  400: 'Bad request', 403: 'Forbidden', 404: 'Not found', 405: 'Method not allowed', 413: 'Too large',
  424: 'Server not running', 429: 'Too many requests', 500: 'Internal error', 502: 'Bad gateway', 503: 'Service unavailable',
};

/** `retry`: a local path to offer opening again (validated here). */
export function errorPage(status: number, message: string, retry?: string): string {
  const again = retry && validateNextUrl(retry, 'hub.invalid');
  return renderPage('error.njk', { status, title: TITLES[status] ?? 'Error', message, retry: again || null });
}

/** `/hub/error/<code>`: the page the proxy shows (its --error-target) when a server is down or a route is missing. */
export function proxyErrorPage(req: Request, res: Response): void {
  const code = Number(req.params.code);
  const status = Number.isInteger(code) && code >= 400 && code <= 599 ? code : 500;
  const message = status === 503
    ? 'The server did not answer. It may be starting or stopping; try again in a moment, or restart it from your home page.'
    : status === 404 ? 'Nothing is served at this address.'
      : status === 403 ? 'Your sign-in to this server was revoked. If you can still use it another way (another share, a group), open it again to sign in afresh; otherwise ask its owner to share it again.'
        : 'Something went wrong on the way to your server.';
  // CHP passes the refused request's URL: an API client gets JupyterHub's JSON error, not a page.
  if (typeof req.query.url === 'string' && isApiRequest(req.query.url, undefined)) {
    res.status(status).json({ status, message });
    return;
  }
  // A refusal of a revoked sign-in removed that cookie: opening the page again signs in afresh.
  const retry = status === 403 && typeof req.query.url === 'string' ? req.query.url : undefined;
  res.status(status).send(errorPage(status, message, retry));
}

export function pageErrorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const parser = err as { type?: string; status?: number };
    let { status, message } = publicMessage(err);
    if (err instanceof URIError) {
      status = 400;
      message = 'The address is not valid percent-encoding.';
    } else if (!(err instanceof HttpError) && parser.type === 'parameters.too.many') {
      status = 413;
      message = 'The form has too many fields; change fewer things at once.';
    } else if (!(err instanceof HttpError) && parser.type?.startsWith('entity.')) {
      status = parser.status && parser.status < 500 ? parser.status : 400;
      message = 'The form could not be read.';
    } else if (status >= 500) {
      log.error({ err, path: req.path }, 'unhandled error in page');
    }
    if (res.headersSent) return void res.end();
    res.status(status).send(errorPage(status, message));
  };
}
