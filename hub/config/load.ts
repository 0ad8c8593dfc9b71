import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { roleProblems } from '../auth/roles.js';
import { normalizeUsername, validateUsername } from '../auth/usernames.js';
import { configSchema, type LabHubConfig } from './schema.js';

/** A config problem that stops start-up; its message names the key and what was expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ConfigSources {
  /** Path of a YAML file; `LABHUB_CONFIG` when not given. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags, already nested (`{ port: 9000 }`); they win over everything. */
  overrides?: Record<string, unknown>;
}

const ENV_PREFIX = 'LABHUB_';
/**
 * Only variables whose first part names a top-level key are config: the prefix is shared with other settings
 * (LABHUB_CONFIG, LABHUB_COOKIE_SECRET, test-suite variables). Below a known key, unknown names are still errors.
 */
const TOP_LEVEL_KEYS = new Set(Object.keys(configSchema.shape));

/**
 * Defaults < YAML file < `LABHUB_*` variables < flags.
 * `LABHUB_SPAWNER__START_TIMEOUT=90` sets `spawner.start_timeout`: `__` separates levels, and the value is read
 * as a YAML scalar or flow collection, so numbers, booleans and `[a, b]` lists work from the environment too.
 */
export function loadConfig(sources: ConfigSources = {}): LabHubConfig {
  const env = sources.env ?? process.env;
  const file = sources.file ?? env.LABHUB_CONFIG;
  const merged: Record<string, unknown> = {};
  if (file) deepMerge(merged, readConfigFile(file));
  const fromEnvironment = fromEnv(env);
  deepMerge(merged, fromEnvironment.values);
  if (sources.overrides) deepMerge(merged, sources.overrides);
  let result = configSchema.safeParse(merged);
  // A secret from the environment (a password, a client secret, an admin URL from a Kubernetes Secret) may read as
  // a number, a boolean or a mapping in YAML ("123456", "a: b"); where a string is wanted it is taken as written.
  const asWritten = result.success ? [] : result.error.issues.filter((i) => i.code === 'invalid_type' && i.expected === 'string'
    && fromEnvironment.raw.has(i.path.join('.')));
  if (asWritten.length) {
    for (const issue of asWritten) setPath(merged, issue.path.map(String), fromEnvironment.raw.get(issue.path.join('.'))!.text);
    result = configSchema.safeParse(merged);
  }
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues, file, fromEnvironment.raw));
  const roleErrors = result.data.roles.flatMap((role, i) => [
    ...roleProblems(role),
    ...role.users.flatMap((u) => {
      const problem = validateUsername(normalizeUsername(u));
      return problem ? [`user ${JSON.stringify(u.slice(0, 64))}: ${problem}`] : [];
    }),
  ].map((p) => `roles.${i} (${role.name}): ${p}`));
  if (roleErrors.length) throw new ConfigError(`invalid configuration:\n  ${roleErrors.join('\n  ')}`);
  return result.data;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`config file ${file}: expected a mapping of keys to values at the top level`);
  }
  return data as Record<string, unknown>;
}

interface EnvSource { name: string; text: string }

/** The config from `LABHUB_*` variables, and each variable's text as written, by its dotted path. */
function fromEnv(env: NodeJS.ProcessEnv): { values: Record<string, unknown>; raw: Map<string, EnvSource> } {
  const values: Record<string, unknown> = {};
  const raw = new Map<string, EnvSource>();
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || text === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).toLowerCase().split('__');
    if (!TOP_LEVEL_KEYS.has(path[0]!)) continue;
    setPath(values, path, parseEnvValue(text));
    raw.set(path.join('.'), { name, text });
  }
  if (env.CONFIGPROXY_AUTH_TOKEN) setPath(values, ['proxy', 'auth_token'], env.CONFIGPROXY_AUTH_TOKEN);
  return { values, raw };
}

/** A YAML scalar or flow collection; text that is not YAML (`[abc`) stays text, and the schema judges it. */
function parseEnvValue(text: string): unknown {
  try {
    const value: unknown = parseYaml(text);
    // A bare word stays a string; YAML would read `null`/`~` as null, which no key accepts from the environment.
    return value === null ? text : value;
  } catch {
    return text;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    const existing = target[key];
    if (isPlainObject(value)) {
      // Copied through deepMerge even when new, so prototype keys are dropped at every depth.
      const into = isPlainObject(existing) ? existing : {};
      deepMerge(into, value);
      target[key] = into;
    } else {
      target[key] = value;
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeIssues(issues: z.core.$ZodIssue[], file: string | undefined, env: Map<string, EnvSource>): string {
  const where = file ? ` (config file ${file} and LABHUB_* variables)` : '';
  const lines = issues.slice(0, 10).map((issue) => {
    const variable = env.get(issue.path.join('.'))?.name;
    const key = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length ? `${key}.` : '';
      return `${issue.keys.map((k) => prefix + k).join(', ')}: unknown key`;
    }
    return `${key}: ${issue.message}${variable ? ` (from ${variable})` : ''}`;
  });
  return `invalid configuration${where}:\n  ${lines.join('\n  ')}`;
}

/** Resolves a path from config against the data directory, as every data-dir-relative key is. */
export function dataPath(config: LabHubConfig, p: string): string {
  return isAbsolute(p) ? p : resolve(config.data_dir, p);
}

/** Where people reach the hub: the public URL when set, else the proxy's address. */
export function publicOrigin(config: LabHubConfig): string {
  const origin = config.public_url ?? `http://${config.ip === '' || config.ip === '0.0.0.0' ? 'localhost' : config.ip}:${config.port}`;
  return origin.replace(/\/$/, '');
}
