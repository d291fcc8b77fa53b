import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { createWasmKernels, type WasmKernels } from './backend.ts';
import { MAX_PAGES } from './memory.ts';
import { WORKER_BODY, type SpawnWorker } from './pool.ts';

/** dist/wasm/ at the package root: three folders up from both src/kernels/wasm and dist/kernels/wasm. */
const BUILD_DIR = new URL('../../../dist/wasm/', import.meta.url);

export interface NodeWasmOptions {
  /** Threads in all; default: every core (os.availableParallelism()). */
  threads?: number;
  /** Use the relaxed-SIMD build where the engine supports it (default true). */
  relaxed?: boolean;
}

let engineConfigured = false;

/**
 * Node 20 runs relaxed SIMD only behind a flag, and V8 first runs WebAssembly through its
 * baseline compiler: the matrix product ran at 21 GFLOP/s there against 37 once optimised.
 * Both flags are set before the module is compiled.
 */
function configureEngine(): void {
  if (engineConfigured) return;
  setFlagsFromString('--experimental-wasm-relaxed-simd');
  setFlagsFromString('--no-liftoff');
  engineConfigured = true;
}

const spawnNodeWorker: SpawnWorker = (init) =>
  new Promise((resolve, reject) => {
    const source = `const { workerData, parentPort } = require('node:worker_threads');
(${WORKER_BODY})(workerData, () => parentPort.postMessage('ready'));`;
    // execArgv: [] keeps loaders such as tsx out of the worker: it runs plain JavaScript.
    const worker = new Worker(source, { eval: true, workerData: init, execArgv: [] });
    worker.once('message', () => {
      // A worker waiting for work must not keep the process alive.
      worker.unref();
      resolve(worker);
    });
    worker.once('error', reject);
  });

/** Whether the compiled kernel modules exist (npm run build makes them). */
export function wasmBuildPresent(): boolean {
  return existsSync(fileURLToPath(new URL('kernels.wasm', BUILD_DIR)));
}

/** The WebAssembly backend on Node: reads dist/wasm/, starts worker_threads for the extra threads. */
export async function loadWasmKernels(options: NodeWasmOptions = {}): Promise<WasmKernels> {
  configureEngine();
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a whole number of at least 1, got ${threads}`);
  const relaxedBytes = readFileSync(fileURLToPath(new URL('kernels-relaxed.wasm', BUILD_DIR)));
  const useRelaxed = options.relaxed !== false && WebAssembly.validate(relaxedBytes);
  const bytes = useRelaxed ? relaxedBytes : readFileSync(fileURLToPath(new URL('kernels.wasm', BUILD_DIR)));
  const module = await WebAssembly.compile(bytes);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
  return createWasmKernels({
    module,
    memory,
    threads,
    spawnWorker: spawnNodeWorker,
    variant: useRelaxed ? 'relaxed SIMD' : 'SIMD',
  });
}
