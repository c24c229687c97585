import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/testing.ts'],
  format: ['esm', 'cjs'],
  // One copy of each module for every entry point in the CommonJS build too (esbuild splits only ESM by default):
  // an error class thrown from one entry must be the one `instanceof` sees from another.
  splitting: true,
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // import.meta.url in the CJS build (template-phantom.ts finds its assets beside dist/)
  shims: true,
});
