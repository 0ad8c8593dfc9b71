import { Router, type Response } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { AuditEventRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { auditReach } from '../audit/access.js';
import { paginatedBody, pagination, parseInput, requestUrl, usernameFrom, wantsPagination } from './validate.js';

const NDJSON = 'application/x-ndjson';
/** Lowercase words and dots: a prefix of an action name, never a LIKE pattern. */
const KIND = /^[a-z]+(?:\.[a-z]+)*$/;
const isoTime = z.string().max(64).refine((s) => !Number.isNaN(Date.parse(s)) && /(Z|[+-]\d\d:?\d\d)$/.test(s), 'expected an ISO 8601 timestamp with a timezone')
  .transform((s) => new Date(s).toISOString());

/** Unknown arguments are ignored, as on JupyterHub's lists. */
const auditQuery = z.object({
  user: z.string().max(1024).optional(),
  kind: z.string().max(64).regex(KIND, 'expected an action or a prefix of one, such as login or token.create').optional(),
  since: isoTime.optional(),
  until: isoTime.optional(),
  format: z.enum(['json', 'jsonl']).optional(),
  offset: z.string().optional(),
  limit: z.string().optional(),
});

/** Largest export in one answer; page with offset for more. */
const EXPORT_LIMIT = 100_000;

export function auditModel(row: AuditEventRow): Record<string, unknown> {
  let details: unknown = {};
  try {
    details = JSON.parse(row.details);
  } catch {
    details = {};
  }
  return {
    id: row.id, time: row.time, action: row.action,
    actor: { kind: row.actor_kind, name: row.actor_name, uid: row.actor_uid },
    target: row.target_kind ? { kind: row.target_kind, name: row.target_name, uid: row.target_uid } : null,
    source: row.source, details,
  };
}

/** `GET /hub/api/audit`: the audit log, newest first, filtered and paginated; `format=jsonl` exports JSON lines. */
export function auditRouter(ctx: HubContext): Router {
  const router = Router();
  router.get('/audit', async (req, res: Response) => {
    const requester = res.locals.requester ?? null;
    if (!requester) throw new HttpError(403, 'Missing or invalid credentials.');
    // Filtered `read:audit` (a teacher's) passes here too: auditReach narrows the query to what it covers.
    const reach = await auditReach(ctx.store, requester);
    const q = parseInput(auditQuery, req.query, 'query');
    if (q.since && q.until && q.since > q.until) throw new HttpError(400, 'since must not be after until');
    const accept = req.get('accept') ?? '';
    const jsonl = q.format === 'jsonl' || (q.format === undefined && accept.split(',').some((p) => p.split(';')[0]!.trim() === NDJSON));
    const paginated = !jsonl && wantsPagination(accept);
    const { offset, limit } = jsonl ? pagination(req.query, false, EXPORT_LIMIT, EXPORT_LIMIT) : pagination(req.query, paginated);
    const { rows, total } = await ctx.store.audit.list({
      user: q.user !== undefined ? usernameFrom(q.user) : undefined, kindPrefix: q.kind, since: q.since, until: q.until,
      within: reach.all ? undefined : { users: reach.users, groups: reach.groups }, offset, limit,
    });
    const items = rows.map(auditModel);
    if (jsonl) {
      res.type(NDJSON).send(items.map((i) => `${JSON.stringify(i)}\n`).join(''));
      return;
    }
    res.json(paginated ? paginatedBody(items, offset, limit, total, requestUrl(req)) : items);
  });
  return router;
}
