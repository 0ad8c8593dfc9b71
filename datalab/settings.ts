/**
 * Settings for the DataLab services from environment variables and command-line flags: `--sites 3` or
 * `--sites=3` overrides `SITES=3`. A `NAME_FILE` variable reads the value from a file (Docker secrets), so no
 * password needs to sit in the environment. The result is raw strings for a zod schema to coerce and check.
 */
import { readFileSync } from 'node:fs';

function flagToEnvName(flag: string): string {
  return flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase();
}

export function rawSettings(keys: readonly string[], env: NodeJS.ProcessEnv, argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) {
    const direct = env[key];
    const file = env[`${key}_FILE`];
    if (direct !== undefined && direct !== '') out[key] = direct;
    else if (file !== undefined && file !== '') out[key] = readFileSync(file, 'utf8').trim();
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = flagToEnvName(eq === -1 ? arg : arg.slice(0, eq));
    if (!keys.includes(name)) throw new Error(`unknown flag ${arg.slice(0, eq === -1 ? undefined : eq)}`);
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new Error(`flag ${arg} needs a value`);
    out[name] = value;
  }
  return out;
}

/** A zod error as one line naming each bad setting, without echoing values (they may be passwords). */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues.map((i) => `${i.path.map(String).join('.') || '(settings)'}: ${i.message}`).join('; ');
}
