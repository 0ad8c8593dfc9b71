import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most of a run waits on real components (containers, pods, notebook servers, Chromium) rather than using a
    // core, so two files at once even on 2 cores, where vitest's default (cores - 1) runs one: the suite went from
    // 1,375 to 777 s there. Files keep apart by design (a namespace, database, hub id and port slice each).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    globalSetup: ['tests/helpers/global-setup.ts'],
  },
});
