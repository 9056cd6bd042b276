import { defineConfig } from 'vitest/config';

// One addon per process: napi's tokio integration is tied to the first environment,
// so specs run in forked processes, never worker threads.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['__test__/**/*.spec.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
