/**
 * Real jupyterhub-singleuser servers for tests (installed by scripts/setup-test-env.sh):
 *   3 -> /usr/bin/jupyterhub-singleuser            Debian's jupyterhub 3.0.0 on jupyter_server 1.23 + notebook 6.4
 *   5 -> /opt/labhub/venv-jh5/bin/jupyterhub-singleuser   PyPI 'jupyterhub>=5,<6' + jupyterlab (jupyter_server 2.x)
 *
 * THE RULE for tests that need a real service (PostgreSQL, jupyterhub-singleuser, Docker, slapd, ...):
 *   - Under CI (`process.env.CI` set, as `.ci/run` does) a missing service is a FAILURE, never a skip:
 *     `requireService()` throws, so the test (or the file) fails and CI goes red. A green CI must mean the real
 *     thing was exercised.
 *   - Outside CI (a developer's machine without the service) `requireService()` returns false and the caller
 *     skips: `it.skipIf(!requireService('postgres', url !== null))(...)`. Run scripts/setup-test-env.sh to get
 *     everything.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

export type SingleuserMajor = 3 | 5 | 6;

/** The venv holding jupyterhub 5.x; override with LABHUB_JH5_VENV (same variable as the setup script). */
export const JH5_VENV = process.env.LABHUB_JH5_VENV ?? '/opt/labhub/venv-jh5';

/** The venv holding jupyterhub 6.x; override with LABHUB_JH6_VENV (same variable as the setup script). */
export const JH6_VENV = process.env.LABHUB_JH6_VENV ?? '/opt/labhub/venv-jh6';

export const SINGLEUSER_PATHS: Record<SingleuserMajor, string> = {
  3: '/usr/bin/jupyterhub-singleuser',
  5: `${JH5_VENV}/bin/jupyterhub-singleuser`,
  6: `${JH6_VENV}/bin/jupyterhub-singleuser`,
};

const versionCache = new Map<string, string | null>();

/**
 * The version `path --version` prints (last line, e.g. "5.5.4"), or null when it cannot run.
 * Costs 1.5 s (3.x) to 3 s (5.x) the first time per process; cached after.
 */
export function singleuserVersion(path: string): string | null {
  if (versionCache.has(path)) return versionCache.get(path) ?? null;
  let version: string | null = null;
  try {
    accessSync(path, constants.X_OK);
    const out = execFileSync(path, ['--version'], {
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const last = out.trim().split('\n').pop()?.trim() ?? '';
    version = /^\d+\.\d+/.test(last) ? last : null;
  } catch {
    version = null;
  }
  versionCache.set(path, version);
  return version;
}

/**
 * Path of a working jupyterhub-singleuser of the given major version (verified by running `--version`),
 * or null if there is none.
 */
export function findSingleuser(version: SingleuserMajor): string | null {
  const path = SINGLEUSER_PATHS[version];
  const found = singleuserVersion(path);
  return found !== null && found.split('.')[0] === String(version) ? path : null;
}

/** True under CI: `.ci/run` exports CI=true. Empty, "0" and "false" count as not CI. */
export function isCI(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/**
 * Gate for a test that needs service `name`. Returns true when `available`. When it is not: throws under CI
 * (the test fails — never skipped under CI), returns false outside CI so the caller can `it.skipIf(!ok)`.
 *
 * Call it at collection time (top level of the file or describe) so the skip decision is made before tests run:
 *   const jh5 = findSingleuser(5);
 *   it.skipIf(!requireService('jupyterhub-singleuser 5.x', jh5 !== null))('talks to 5.x', async () => { ... });
 * Throwing at collection time fails the whole file under CI, which is what we want.
 */
export function requireService(name: string, available: boolean): boolean {
  if (available) return true;
  const message = `required service not available: ${name} (run scripts/setup-test-env.sh)`;
  if (isCI()) throw new Error(`${message}; under CI a missing service fails the run instead of skipping`);
  console.warn(`[labhub tests] ${message}; skipping the tests that need it (outside CI only)`);
  return false;
}
