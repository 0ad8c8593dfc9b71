import { Router, type Request } from 'express';
import { z } from 'zod';
import type { HubContext } from '../context.js';
import type { Requester } from '../auth/identity.js';
import type { QuotaLimits, QuotaView } from '../db/usage.js';
import { HttpError } from '../errors.js';
import { listReach } from '../audit/access.js';
import { auditBy } from '../audit/record.js';
import { limitsOf, removeQuota, saveQuota } from '../usage/quotas.js';
import { classUsage, userUsage, usersUsage } from '../usage/report.js';
import { paginatedBody, pagination, parseInput, requestUrl, usernameFrom, wantsPagination } from './validate.js';

const periodQuery = z.object({
  days: z.string().regex(/^\d{1,3}$/, 'expected a whole number of days').transform(Number)
    .refine((d) => d >= 1 && d <= 366, 'expected 1 to 366 days').optional(),
  offset: z.string().optional(),
  limit: z.string().optional(),
});

const amount = z.number().min(0).max(1e9).nullable().optional();
/** A quota is replaced whole by PUT: a limit left out is no limit. */
export const quotaBody = z.strictObject({
  window_hours: z.number().positive().max(24 * 366),
  server_hours: amount,
  cpu_hours: amount,
  memory_gib_hours: amount,
  gpu_hours: amount,
  max_servers: z.number().int().min(0).max(10_000).nullable().optional(),
}).refine((q) => ['server_hours', 'cpu_hours', 'memory_gib_hours', 'gpu_hours', 'max_servers'].some((k) => q[k as keyof typeof q] != null),
  'set at least one of server_hours, cpu_hours, memory_gib_hours, gpu_hours, max_servers')
  .transform((q): QuotaLimits => ({
    window_hours: q.window_hours, server_hours: q.server_hours ?? null, cpu_hours: q.cpu_hours ?? null,
    memory_gib_hours: q.memory_gib_hours ?? null, gpu_hours: q.gpu_hours ?? null, max_servers: q.max_servers ?? null,
  }));

export function quotaModel(row: QuotaView): Record<string, unknown> {
  return {
    subject: row.user_id !== null ? { kind: 'user', name: row.user_name } : { kind: 'class', name: row.group_name },
    ...limitsOf(row), updated: row.updated,
  };
}

/** Quotas are the admin's bound on everyone, so only an unfiltered `admin:quotas` may change or list them. */
export function requireQuotaAdmin(requester: Requester | null): Requester {
  if (!requester) throw new HttpError(403, 'Missing or invalid credentials.');
  if (requester.scopes.get('admin:quotas') !== 'all') throw new HttpError(403, 'Action is not authorized with current scopes; requires unfiltered admin:quotas');
  return requester;
}

/**
 * LabHub's usage accounting and quotas (docs/usage.md):
 *   GET /users/{name}/usage, GET /groups/{name}/usage, GET /usage — read:usage (self: one's own; !group: a class);
 *   GET /quotas, PUT|DELETE /quotas/users/{name}, PUT|DELETE /quotas/groups/{name} — admin:quotas, unfiltered.
 */
export function usageRouter(ctx: HubContext): Router {
  const router = Router();
  const { store, authz } = ctx;
  const period = (req: Request) => ({ days: parseInput(periodQuery, req.query, 'query').days ?? 30, now: Date.now() });

  router.get('/users/:name/usage', async (req, res) => {
    const name = usernameFrom(req.params.name!);
    await authz.require(res.locals.requester ?? null, ['read:usage'], { user: name });
    const user = await store.users.byName(name);
    if (!user) throw new HttpError(404, `No such user: ${name}`);
    res.json(await userUsage(store, user, period(req), ctx.config.usage.quota_grace));
  });

  router.get('/groups/:name/usage', async (req, res) => {
    const name = req.params.name!;
    await authz.require(res.locals.requester ?? null, ['read:usage'], { group: name });
    const group = await store.groups.byName(name);
    if (!group) throw new HttpError(404, `No such group: ${name.slice(0, 64)}`);
    res.json(await classUsage(store, group, period(req)));
  });

  router.get('/usage', async (req, res) => {
    const requester = res.locals.requester ?? null;
    if (!requester) throw new HttpError(403, 'Missing or invalid credentials.');
    const reach = await listReach(store, requester, 'read:usage');
    const p = period(req);
    const paginated = wantsPagination(req.get('accept'));
    const { offset, limit } = pagination(req.query, paginated);
    let ids: number[] | undefined;
    if (!reach.all) {
      const users = await Promise.all(reach.users.map((n) => store.users.byName(n)));
      ids = users.flatMap((u) => (u ? [u.id] : []));
    }
    const items = await usersUsage(store, p, ids);
    const page = items.slice(offset, offset + limit);
    res.json(paginated ? paginatedBody(page, offset, limit, items.length, requestUrl(req)) : page);
  });

  router.get('/quotas', async (_req, res) => {
    requireQuotaAdmin(res.locals.requester ?? null);
    res.json((await store.quotas.list()).map(quotaModel));
  });

  for (const kind of ['users', 'groups'] as const) {
    router.put(`/quotas/${kind}/:name`, async (req, res) => {
      const requester = requireQuotaAdmin(res.locals.requester ?? null);
      const limits = parseInput(quotaBody, req.body);
      res.json(quotaModel(await saveQuota(store, auditBy(requester, req), kind, req.params.name!, limits)));
    });

    router.delete(`/quotas/${kind}/:name`, async (req, res) => {
      const requester = requireQuotaAdmin(res.locals.requester ?? null);
      await removeQuota(store, auditBy(requester, req), kind, req.params.name!);
      res.status(204).end();
    });
  }

  return router;
}
