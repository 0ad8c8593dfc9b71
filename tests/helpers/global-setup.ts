/**
 * vitest globalSetup (vitest.config.ts): runs once per `vitest run`, in the main process.
 *
 * Starts one throwaway PostgreSQL cluster (tests/helpers/postgres.ts, ~2-3 s) and hands its URL to tests:
 *   import { inject } from 'vitest';
 *   const url = inject('postgresUrl');            // string, or null when PostgreSQL is not installed (never in CI)
 *   const db = await createDatabase(url, 'my_file_db');   // a fresh empty database per test file
 * Under CI (`process.env.CI`) PostgreSQL is required: setup throws and the run fails if it cannot start.
 * Outside CI a missing PostgreSQL gives `null`; tests then skip via requireService() (tests/helpers/jupyter.ts).
 * Set LABHUB_TEST_POSTGRES=0 to not start it (e.g. a quick `vitest run tests/unit` without CI).
 */
import type { TestProject } from 'vitest/node';
import { isCI } from './jupyter.js';
import { postgresUnavailableReason, startPostgres, type PostgresCluster } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the run's PostgreSQL cluster (database labhub_test), or null when there is none (never under CI). */
    postgresUrl: string | null;
  }
}

export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  let cluster: PostgresCluster | null = null;
  const disabled = process.env.LABHUB_TEST_POSTGRES === '0';
  const reason = disabled ? 'disabled by LABHUB_TEST_POSTGRES=0' : postgresUnavailableReason();

  if (reason === null) {
    const t0 = Date.now();
    cluster = await startPostgres();
    console.log(`[global-setup] PostgreSQL on ${cluster.url} (started in ${Date.now() - t0} ms)`);
  } else if (isCI()) {
    throw new Error(`[global-setup] PostgreSQL is required under CI: ${reason}`);
  } else {
    console.warn(`[global-setup] no PostgreSQL for this run: ${reason}; tests that need it will skip`);
  }
  provide('postgresUrl', cluster?.url ?? null);

  return async () => {
    await cluster?.stop();
  };
}
