import { defineConfig } from 'tsup';

// An application, not a library: one ESM bundle of our own code; dependencies stay external.
export default defineConfig({
  entry: ['src/main.ts', 'src/worker-main.ts'],
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
});
