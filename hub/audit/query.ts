import { z } from 'zod';

/** Lowercase words and dots: a prefix of an action name, never a LIKE pattern. */
const KIND = /^[a-z]+(?:\.[a-z]+)*$/;
const isoTime = z.string().max(64)
  .refine((s) => !Number.isNaN(Date.parse(s)) && /(Z|[+-]\d\d:?\d\d)$/.test(s), 'expected an ISO 8601 timestamp with a timezone')
  .transform((s) => new Date(s).toISOString());

/** The audit log's filters, for the API and the admin page alike. Unknown arguments are ignored, as on JupyterHub's lists. */
export const auditFilters = z.object({
  user: z.string().max(1024).optional(),
  kind: z.string().max(64).regex(KIND, 'expected an action or a prefix of one, such as login or token.create').optional(),
  since: isoTime.optional(),
  until: isoTime.optional(),
}).refine((q) => !q.since || !q.until || q.since <= q.until, 'since must not be after until');
