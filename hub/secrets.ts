import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the proxy's API token is kept in the data dir when config does not set one. */
export const PROXY_TOKEN_FILE = 'proxy_auth_token';
/** Where the key signing session cookies is kept in the data dir when LABHUB_COOKIE_SECRET does not set one. */
export const COOKIE_SECRET_FILE = 'cookie_secret';

/**
 * Secrets generated once into the data dir (mode 0600) and reused across restarts, so sessions and the proxy's
 * token survive a hub restart. An environment value always wins, for deployments that keep secrets elsewhere.
 */
export function loadOrCreateSecret(dataDir: string, fileName: string, fromEnv: string | undefined, bytes = 32): string {
  if (fromEnv) return fromEnv;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, fileName);
  if (existsSync(path)) {
    const value = readFileSync(path, 'utf8').trim();
    if (value.length >= 16) return value;
  }
  const value = randomBytes(bytes).toString('base64url');
  writeFileSync(path, value + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return value;
}
