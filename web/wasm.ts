/**
 * The two builds of the kernel module (npm run build writes them to dist/wasm/); the bundler
 * copies them into the site and gives their addresses.
 */
export const WASM_URLS = {
  simd: new URL('../dist/wasm/kernels.wasm', import.meta.url).href,
  relaxed: new URL('../dist/wasm/kernels-relaxed.wasm', import.meta.url).href,
};
