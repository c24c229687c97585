import { defineConfig } from 'tsup';

const common = {
  entry: ['src/index.ts', 'src/testing.ts', 'src/validate.ts', 'src/mysql.ts'],
  sourcemap: true,
  target: 'node20',
} as const;

export default defineConfig([
  // ESM imports fhir-kit-client (ESM-only) as the dependency it is. Bundling it here would inline its CommonJS
  // dependencies, whose `require('http')` fails inside an ES module ("Dynamic require ... is not supported").
  // (No `clean`: the two builds run in parallel and would delete each other's output.)
  { ...common, format: ['esm'], dts: true },
  // fhir-kit-client's exports map has no `require` condition: the CJS build carries it inside.
  // splitting: one copy of each module for every entry point (esbuild splits only ESM by default).
  { ...common, format: ['cjs'], dts: true, noExternal: ['fhir-kit-client'], splitting: true },
]);
