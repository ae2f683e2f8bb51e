// The browser page (index.html: chat; harness.html: test and trace hooks), built into dist/web.
// Dev and preview servers send COOP/COEP so the page is cross-origin isolated (WASM threads).
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const root = import.meta.dirname;

export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  build: {
    outDir: resolve(root, '../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0, // keep the .wasm kernels as files
    rollupOptions: { input: { index: resolve(root, 'index.html'), harness: resolve(root, 'harness.html') } },
  },
  server: { headers: isolation, fs: { allow: [resolve(root, '..')] } },
  preview: { headers: isolation },
});
