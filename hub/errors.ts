/**
 * Errors are values with an HTTP status and a message a user can act on.
 * One place (hub/api/error-handler.ts, hub/pages/error-handler.ts) turns them into answers.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string) => new HttpError(400, message);
export const forbidden = (message = 'Missing or invalid credentials.') => new HttpError(403, message);
export const notFound = (message = 'Not found') => new HttpError(404, message);
export const conflict = (message: string) => new HttpError(409, message);

/** Messages of errors that are not HttpErrors never reach clients: they may carry secrets or internals. */
export function publicMessage(err: unknown): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  return { status: 500, message: 'Internal server error' };
}
