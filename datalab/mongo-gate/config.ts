/** The gate's settings (env or flags, see ../settings.ts), checked before anything listens. */
import { z } from 'zod';
import { describeIssues, rawSettings } from '../settings.js';

const KEYS = ['MONGODB_URL', 'LISTEN_HOST', 'LISTEN_PORT', 'GRANTS_MAX_AGE_MS', 'LOG_LEVEL'] as const;

export const gateConfigSchema = z.strictObject({
  /** The server behind the gate, with the admin account the hub's broker uses: the gate reads grants with it. */
  MONGODB_URL: z.string().refine((s) => URL.canParse(s) && new URL(s).protocol === 'mongodb:' && !new URL(s).host.includes(','),
    'expected a mongodb:// URL of one host'),
  LISTEN_HOST: z.string().min(1).default('0.0.0.0'),
  /** 0 picks a free port. */
  LISTEN_PORT: z.coerce.number().int().min(0).max(65535).default(27017),
  /** How soon a revoked lease's open connections are cut: the age at which a connection reloads its grant. */
  GRANTS_MAX_AGE_MS: z.coerce.number().int().min(100).max(60_000).default(2000),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
});

export type GateConfig = z.infer<typeof gateConfigSchema>;

export function loadGateConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): GateConfig {
  const parsed = gateConfigSchema.safeParse(rawSettings(KEYS, env, argv));
  if (!parsed.success) throw new Error(`mongo-gate: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

/** Where the server listens, from its URL. */
export function backendAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 27017 };
}
