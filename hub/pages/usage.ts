import { Router, type Request, type Response } from 'express';
import type { HubContext } from '../context.js';
import type { Requester } from '../auth/identity.js';
import { HttpError } from '../errors.js';
import { listReach } from '../audit/access.js';
import { auditBy } from '../audit/record.js';
import { quotaBody, quotaModel, requireQuotaAdmin } from '../api/usage.js';
import { parseInput } from '../api/validate.js';
import { removeQuota, saveQuota } from '../usage/quotas.js';
import { classUsage, userUsage, usersUsage } from '../usage/report.js';
import { renderPage } from './render.js';
import { requireLogin } from './servers.js';
import { checkFormXsrf, layoutFor } from './page-context.js';
import { flash, redirectWithFlash } from './flash.js';

const PERIODS = [7, 30, 90];
const LIMIT_FIELDS = ['server_hours', 'cpu_hours', 'memory_gib_hours', 'gpu_hours', 'max_servers'] as const;
const LIMIT_LABELS: Record<(typeof LIMIT_FIELDS)[number], string> = {
  server_hours: 'Server-hours', cpu_hours: 'CPU-hours', memory_gib_hours: 'Memory GiB-hours', gpu_hours: 'GPU-hours', max_servers: 'Servers at once',
};

/** Daily values as bars of an inline SVG plot: heights in percent of the tallest day, labels for screen readers. */
export function plotBars(daily: ReadonlyArray<{ date: string; server_hours: number }>): { bars: Array<{ date: string; hours: number; height: number; x: number }>; max: number } {
  const max = Math.max(...daily.map((d) => d.server_hours), 0);
  return {
    max: Math.round(max * 100) / 100,
    bars: daily.map((d, i) => ({ date: d.date, hours: Math.round(d.server_hours * 100) / 100, height: max > 0 ? (d.server_hours / max) * 100 : 0, x: i })),
  };
}

/** The classes whose usage the requester reads: all groups for an unfiltered read:usage, else those its filter names. */
async function readableClasses(ctx: HubContext, requester: Requester): Promise<string[]> {
  const reach = await listReach(ctx.store, requester, 'read:usage');
  if (!reach.all) return reach.groups;
  return (await ctx.store.groups.list(0, 1_000_000)).rows.map((g) => g.name);
}

/**
 * `/hub/usage`: the viewer's own usage with a plot over time and their quotas; the classes their `read:usage`
 * reaches (a teacher's, per member); for admins everyone's totals and the quotas, with a form to set them.
 */
export function usagePages(ctx: HubContext): Router {
  const router = Router();
  const login = requireLogin(ctx);

  router.get('/usage', login, async (req: Request, res: Response) => {
    const { user } = res.locals.session!;
    const requester = await ctx.authz.fromSession(req);
    if (!requester) throw new HttpError(403, 'Missing or invalid credentials.');
    const days = PERIODS.includes(Number(req.query.days)) ? Number(req.query.days) : 30;
    const period = { days, now: Date.now() };
    const own = await userUsage(ctx.store, user, period, ctx.config.usage.quota_grace);
    const classNames = await readableClasses(ctx, requester).catch(() => []);
    const wanted = typeof req.query.class === 'string' ? req.query.class : undefined;
    const isAdmin = requester.scopes.get('read:usage') === 'all';
    // A teacher sees each of their classes; an admin picks one (there may be hundreds).
    const shown = isAdmin ? classNames.filter((c) => c === wanted) : classNames;
    const classes = [];
    for (const name of shown) {
      const group = await ctx.store.groups.byName(name);
      if (!group) continue;
      const model = await classUsage(ctx.store, group, period);
      classes.push({ ...model, plot: plotBars(model.daily) });
    }
    const everyone = isAdmin ? await usersUsage(ctx.store, period, undefined) : [];
    const quotaAdmin = requester.scopes.get('admin:quotas') === 'all';
    const { done, message } = flash(req);
    res.send(renderPage('usage.njk', {
      ...(await layoutFor(ctx, req, res, 'usage')),
      days, periods: PERIODS, own, plot: plotBars(own.daily), classes, classNames, isAdmin, wanted,
      everyone, quotaAdmin, graceMinutes: Math.round(ctx.config.usage.quota_grace / 60), quotas: quotaAdmin ? (await ctx.store.quotas.list()).map(quotaModel) : [], limitFields: LIMIT_FIELDS, limitLabels: LIMIT_LABELS, done, message,
    }));
  });

  router.post('/usage/quotas', login, async (req: Request, res: Response) => {
    checkFormXsrf(ctx, req, res);
    const requester = requireQuotaAdmin(await ctx.authz.fromSession(req));
    const form = req.body as Record<string, unknown>;
    const kind = form.kind === 'groups' ? 'groups' : form.kind === 'users' ? 'users' : null;
    const name = typeof form.name === 'string' ? form.name.trim() : '';
    if (!kind || !name) throw new HttpError(400, 'Choose a user or a class and give its name');
    try {
      if (form.action === 'delete') {
        await removeQuota(ctx.store, auditBy(requester, req), kind, name);
        redirectWithFlash(res, '/hub/usage', 'done', `Removed the quota of ${name}`);
        return;
      }
      const numbers: Record<string, number> = {};
      for (const field of ['window_hours', ...LIMIT_FIELDS]) {
        const raw = typeof form[field] === 'string' ? (form[field] as string).trim() : '';
        if (raw !== '') numbers[field] = Number(raw);
      }
      await saveQuota(ctx.store, auditBy(requester, req), kind, name, parseInput(quotaBody, numbers, 'quota'));
      redirectWithFlash(res, '/hub/usage', 'done', `Saved the quota of ${name}`);
    } catch (err) {
      if (!(err instanceof HttpError) || err.status >= 500) throw err;
      redirectWithFlash(res, '/hub/usage', 'error', err.message);
    }
  });

  return router;
}
