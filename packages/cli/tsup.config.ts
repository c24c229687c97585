import { defineConfig } from 'tsup';

export default defineConfig([
  // The library (runCli, importFolder, config), ESM and CommonJS.
  // (No `clean`: the two builds run in parallel and would delete each other's output.)
  { entry: ['src/index.ts'], format: ['esm', 'cjs'], dts: true, sourcemap: true, target: 'node20' },
  // The `cdss` executable: an ES module (it awaits at top level).
  { entry: ['src/cli.ts'], format: ['esm'], sourcemap: true, target: 'node20' },
]);
