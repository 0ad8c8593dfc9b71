import { Router, type Request } from 'express';
import type { HubContext } from '../context.js';
import { HttpError } from '../errors.js';
import { renderPage } from './render.js';
import { requireUnfilteredScopes } from './page-context.js';
import { adminLayout } from './admin-layout.js';
import { auditFilters } from '../audit/query.js';
import { AUDIT_ACTIONS } from '../audit/events.js';
import { auditModel } from '../api/audit.js';
import { usernameFrom } from '../api/validate.js';

const PAGE_SIZE = 50;
/** The families of actions offered in the kind filter: `login`, `token`, … */
const KIND_CHOICES = [...new Set(AUDIT_ACTIONS.map((a) => a.split('.')[0]!))];

/** A `datetime-local` field has no zone: the page says its times are UTC. */
const asUtc = (value: unknown) => (typeof value === 'string' && value ? (/(Z|[+-]\d\d:?\d\d)$/.test(value) ? value : `${value}Z`) : undefined);
const text = (value: unknown) => (typeof value === 'string' && value ? value : undefined);

/** Admin: the audit log, newest first, with the API's filters and pages of 50. */
export function adminAuditPages(ctx: HubContext): Router {
  const router = Router();

  router.get('/admin/audit', async (req: Request, res) => {
    await requireUnfilteredScopes(ctx, req, ['admin-ui', 'read:audit']);
    const form = { user: text(req.query.user), kind: text(req.query.kind), since: text(req.query.since), until: text(req.query.until) };
    const parsed = auditFilters.safeParse({ user: form.user, kind: form.kind, since: asUtc(form.since), until: asUtc(form.until) });
    if (!parsed.success) throw new HttpError(400, `Invalid filter: ${parsed.error.issues[0]!.message}`);
    const page = Math.min(Math.max(Number.parseInt(String(req.query.page ?? '1'), 10) || 1, 1), 1_000_000);
    const q = parsed.data;
    const { rows, total } = await ctx.store.audit.list({
      user: q.user ? usernameFrom(q.user) : undefined, kindPrefix: q.kind, since: q.since, until: q.until, offset: (page - 1) * PAGE_SIZE, limit: PAGE_SIZE,
    });
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const link = (p: number) => {
      const params = new URLSearchParams(Object.entries(form).filter((e): e is [string, string] => e[1] !== undefined));
      params.set('page', String(p));
      return `/hub/admin/audit?${params.toString()}`;
    };
    const exportParams = new URLSearchParams(Object.entries({ user: q.user, kind: q.kind, since: q.since, until: q.until }).filter((e): e is [string, string] => e[1] !== undefined));
    exportParams.set('format', 'jsonl');
    res.send(renderPage('admin-audit.njk', {
      ...(await adminLayout(ctx, req, res, 'audit')),
      form, kinds: KIND_CHOICES, total, page, pages,
      prevUrl: page > 1 ? link(page - 1) : null, nextUrl: page < pages ? link(page + 1) : null,
      exportUrl: `/hub/api/audit?${exportParams.toString()}`,
      events: rows.map((r) => {
        const m = auditModel(r) as { details: Record<string, unknown> };
        return { ...r, details: JSON.stringify(m.details) };
      }),
    }));
  });

  return router;
}
