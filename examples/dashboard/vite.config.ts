import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `@cdss/source` resolves workspace packages to their TypeScript sources, so the dashboard builds without
// building @cdss/client first. The dev server proxies the API and the WebSocket to a reference server.
const apiTarget = process.env['CDSS_API_URL'] ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  resolve: { conditions: ['@cdss/source', 'module', 'browser', 'development|production'] },
  // Cornerstone3D's image decoder runs in module workers; its codecs (WASM) are loaded only for compressed images.
  worker: { format: 'es' },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: false, chunkSizeWarningLimit: 6_000 },
  server: {
    proxy: {
      '/api': apiTarget,
      '/ws': { target: apiTarget.replace(/^http/, 'ws'), ws: true },
      '/dicomweb': apiTarget,
    },
  },
});
