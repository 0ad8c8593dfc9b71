import { Router, type Response } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { AuditEventRow } from '../db/schema.js';
import { HttpError } from '../errors.js';
import { auditReach } from '../audit/access.js';
import { auditFilters } from '../audit/query.js';
import { paginatedBody, pagination, parseInput, requestUrl, usernameFrom, wantsPagination } from './validate.js';

const NDJSON = 'application/x-ndjson';
const auditQuery = z.object({ format: z.enum(['json', 'jsonl']).optional(), offset: z.string().optional(), limit: z.string().optional() });

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
    const q = { ...parseInput(auditQuery, req.query, 'query'), ...parseInput(auditFilters, req.query, 'query') };
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
