import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // forks, never threads: Temporal's native bridge crashes across worker threads.
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 30_000,
    // Two cores: a couple of files at once keeps the shared servers busy without thrashing.
    maxWorkers: 2,
  },
});
