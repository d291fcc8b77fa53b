// Compiles the AssemblyScript kernels (src/kernels/wasm/assembly/) into two WebAssembly modules
// under dist/wasm/: kernels.wasm (SIMD128) and kernels-relaxed.wasm (SIMD128 + relaxed SIMD).
// Both import a shared memory, so threads can work on it together. The module's entry,
// generated/wasm-exports.ts, is written first from the kernel declarations (src/kernels/spec.ts)
// by scripts/generate-kernels.ts, so an implementation that differs from its declaration fails
// to compile.
import asc from 'assemblyscript/asc';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

const generated = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/generate-kernels.ts'], { stdio: 'inherit' });
if (generated.status !== 0) {
  console.error('build-wasm: generating the module entry from src/kernels/spec.ts failed');
  process.exit(1);
}

const source = 'generated/wasm-exports.ts';
const common = [
  source,
  '--enable', 'simd',
  '--enable', 'threads',
  '--importMemory',
  '--sharedMemory',
  // 32768 pages of 64 KiB = 2 GiB at most; pages are committed only as the memory grows.
  '--maximumMemory', '32768',
  '--runtime', 'stub',
  // Static data (the tables of Math.exp and Math.log) goes above the first 8 KiB, which hold
  // the thread control block (src/kernels/wasm/pool.ts); heapBase() is where free memory starts.
  '--memoryBase', '8192',
  '-O3',
  '--noAssert',
];

mkdirSync('dist/wasm', { recursive: true });
for (const [file, extra] of [
  ['dist/wasm/kernels.wasm', []],
  ['dist/wasm/kernels-relaxed.wasm', ['--enable', 'relaxed-simd']],
]) {
  const { error, stderr } = await asc.main([...common, ...extra, '--outFile', file]);
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: compiling ${file} failed: ${error.message}`);
    process.exit(1);
  }
  console.log(`build-wasm: wrote ${file}`);
}
