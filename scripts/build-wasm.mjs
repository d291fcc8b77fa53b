// Compiles the AssemblyScript kernels (src/kernels/wasm/assembly/kernels.ts) into two
// WebAssembly modules under dist/wasm/: kernels.wasm (SIMD128) and kernels-relaxed.wasm
// (SIMD128 + relaxed SIMD). Both import a shared memory, so threads can work on it together.
import asc from 'assemblyscript/asc';
import { mkdirSync } from 'node:fs';

const source = 'src/kernels/wasm/assembly/kernels.ts';
const common = [
  source,
  '--enable', 'simd',
  '--enable', 'threads',
  '--importMemory',
  '--sharedMemory',
  // 32768 pages of 64 KiB = 2 GiB at most; pages are committed only as the memory grows.
  '--maximumMemory', '32768',
  '--runtime', 'stub',
  // Static data (the tables of Math.exp and Math.log) goes above the first 1 KiB, which holds
  // the thread control block; the module's heapBase() is where free memory starts.
  '--memoryBase', '1024',
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
