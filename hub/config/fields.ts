import { z } from 'zod';
import { blockedUrlPortProblem } from '../fetch-ports.js';

/** Field types shared by the config's sections (schema.ts, auth-schema.ts). */
export const url = z.string().refine((s) => URL.canParse(s), 'expected an absolute URL');

/** A URL the hub or a browser fetches: its port must not be one that fetch refuses. */
export const fetchedUrl = url.superRefine((s, ctx) => {
  const problem = blockedUrlPortProblem(s);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
