import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/testing.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // fhir-kit-client is ESM-only (its exports map has no require): bundle it into the CJS build.
  noExternal: ['fhir-kit-client'],
});
