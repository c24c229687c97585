import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources (the `@cdss/source` export condition),
// so tests never run against a stale dist/.
const conditions = ['@cdss/source', 'node', 'import', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['node', 'import', 'default'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'scripts/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    coverage: {
      provider: 'v8',
      include: ['packages/*/src/**/*.ts'],
      exclude: ['**/*.test.ts', '**/__fixtures__/**', '**/testing.ts'],
      reporter: ['text-summary', 'json-summary'],
    },
  },
});
