import type { Request } from 'express';
import type { z } from 'zod';
import { HttpError } from '../errors.js';
import { normalizeUsername, validateUsername } from '../auth/usernames.js';

/** Parses a request body or query with a schema; a mismatch is a 400 that names the field. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what = 'request body'): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length ? issue.path.join('.') : what;
  const detail = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
  throw new HttpError(400, `Invalid ${what}: ${field}: ${detail}`);
}

/** A username from a path or body: normalized, then validated; invalid ones are a 400 with the rule broken. */
export function usernameFrom(raw: string): string {
  const name = normalizeUsername(raw);
  const problem = validateUsername(name);
  if (problem) throw new HttpError(400, `Invalid username ${JSON.stringify(raw.slice(0, 40))}: ${problem}`);
  return name;
}

/** JupyterHub's pagination arguments: non-negative integers, limit clamped to [1, max]. */
export function pagination(query: Record<string, unknown>, paginated: boolean, defaultLimit = 50, maxLimit = 200): { offset: number; limit: number } {
  const int = (key: string): number | undefined => {
    const v = query[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^-?\d{1,1000}$/.test(v)) throw new HttpError(400, `${key} must be an integer`);
    // Huge values clamp rather than fail, as JupyterHub's do; the offset is capped to keep it a safe integer.
    return Math.min(Math.abs(Number(v)), Number.MAX_SAFE_INTEGER);
  };
  const offset = int('offset') ?? 0;
  const limit = Math.min(Math.max(int('limit') ?? (paginated ? defaultLimit : maxLimit), 1), maxLimit);
  return { offset, limit };
}

export const PAGINATION_TYPE = 'application/jupyterhub-pagination+json';

export function wantsPagination(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((part) => part.split(';')[0]!.trim() === PAGINATION_TYPE);
}

/** The URL a request was made to, as the client sees it (for the `next` link of a page). */
export function requestUrl(req: Request): URL {
  return new URL(req.originalUrl, `${req.protocol}://${req.get('host') ?? 'localhost'}`);
}

/** The paginated answer: `{items, _pagination}` with a `next` URL keeping the other query arguments. */
export function paginatedBody(items: unknown[] | Record<string, unknown>, offset: number, limit: number, total: number, url: URL): Record<string, unknown> {
  let next: Record<string, unknown> | null = null;
  if (offset + limit < total) {
    const nextUrl = new URL(url);
    nextUrl.searchParams.set('offset', String(offset + limit));
    nextUrl.searchParams.set('limit', String(limit));
    next = { offset: offset + limit, limit, url: nextUrl.toString() };
  }
  return { items, _pagination: { offset, limit, total, next } };
}

/** Whether the client sent a body at all (JupyterHub tells "no body" from `{}`; the JSON parser does not). */
export function hasRequestBody(req: Request): boolean {
  return req.get('transfer-encoding') !== undefined || Number(req.get('content-length') ?? '0') > 0;
}

/** No body, `null`, or `{}`: what clients send when they mean "no options". */
export function isEmptyBody(body: unknown): boolean {
  return body === undefined || body === null || (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);
}

/** Deepest nesting a JSON body may have: far beyond any real options, well below what would overflow a stack. */
export const MAX_JSON_DEPTH = 32;

/** Nesting depth of a parsed JSON value, counted without recursion so that a hostile body cannot overflow the stack. */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) max = depth;
    if (max > MAX_JSON_DEPTH) return max;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return max;
}
