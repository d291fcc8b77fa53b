/**
 * The web app's build (npm run build:web): web/ bundled with the engine's own sources from src/
 * and the WebAssembly kernels of dist/wasm/ into the static site dist/web/. Relative addresses
 * (base './') let the site work from any folder of any static server.
 */
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { ISOLATION_HEADERS } from './src/app/api.ts';

/** The package's version, which the page writes into the ONNX files it exports (web/version.ts). */
const VERSION = (JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string }).version;

const NODE_MODULES = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);

/**
 * Fails the build when anything the page imports reaches a Node module: the engine must run in
 * the browser as it is (Vite would otherwise replace the module by an empty stand-in and the
 * page would break only when the code runs).
 */
function noNodeModules(): Plugin {
  return {
    name: 'fmnist-no-node-modules',
    enforce: 'pre',
    resolveId(id, importer) {
      if (NODE_MODULES.has(id)) this.error(`${importer ?? 'the page'} imports the Node module ${id}; the web app's code must not reach Node-only APIs`);
      return null;
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('./web', import.meta.url)),
  base: './',
  publicDir: false,
  plugins: [noNodeModules()],
  define: { __FMNIST_VERSION__: JSON.stringify(VERSION) },
  worker: { format: 'es', plugins: () => [noNodeModules()] },
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
    target: 'es2022',
    // vega and vega-lite make one large chunk; that is expected.
    chunkSizeWarningLimit: 2000,
    // Keep the kernels as files: the page fetches and validates each build before compiling it.
    assetsInlineLimit: 0,
  },
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS },
});
