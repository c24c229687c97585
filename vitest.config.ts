import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources (the `@cdss/source` export condition),
// so tests never run against a stale dist/.
// The other entries are Vite's defaults for server code (vite's `defaultServerConditions`).
const conditions = ['@cdss/source', 'module', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'examples/*/src/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
      'scripts/**/*.test.ts',
      'deploy/**/*.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // expect.poll's own default (1 s) is too short for a page or a queue to catch up on a loaded CI machine; a poll
    // that needs longer says so where it is written.
    expect: { poll: { timeout: 10_000 } },
    pool: 'forks',
    coverage: {
      provider: 'v8',
      include: ['packages/*/src/**/*.ts'],
      exclude: ['**/*.test.ts', '**/__fixtures__/**', '**/testing.ts'],
      reporter: ['text-summary', 'json-summary'],
      // Per-package floors; a glob applies to the files of that package only.
      thresholds: {
        'packages/core/src/**': { lines: 90 },
      },
    },
  },
});
