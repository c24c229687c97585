import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  // Runs in browsers and React Native as well as Node: no Node built-ins.
  target: 'es2022',
  platform: 'neutral',
});
