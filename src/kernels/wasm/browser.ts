/**
 * The WebAssembly backend in a browser (the web app): fetches the module, starts Web Workers
 * from WORKER_BODY as Blob URLs for the extra threads, over one shared memory. The counterpart
 * of node.ts, with the same kernels (backend.ts) and the same worker program (pool.ts).
 *
 * Threads need the memory shared with the workers, which a browser allows only on a
 * cross-origin isolated page (served with Cross-Origin-Opener-Policy: same-origin and
 * Cross-Origin-Embedder-Policy: require-corp); elsewhere the backend runs on one thread.
 */
import { createWasmKernels, type WasmKernels } from './backend.ts';
import { MAX_PAGES } from './memory.ts';
import { MAX_THREADS, WORKER_BODY, type SpawnWorker } from './pool.ts';

export interface BrowserWasmOptions {
  /** Where the two builds of the module are served (dist/wasm/kernels.wasm and kernels-relaxed.wasm). */
  urls: { simd: string; relaxed: string };
  /** Threads in all; default: every core where the page is cross-origin isolated, else 1. */
  threads?: number;
  /** Use the relaxed-SIMD build where the engine validates it (default true). */
  relaxed?: boolean;
}

/** What this page allows: whether it is cross-origin isolated, its cores, and the most threads the backend can use here. */
export function browserThreads(): { isolated: boolean; cores: number; max: number } {
  const isolated = globalThis.crossOriginIsolated === true;
  const cores = Math.max(1, Math.min(MAX_THREADS, globalThis.navigator?.hardwareConcurrency ?? 1));
  return { isolated, cores, max: isolated ? cores : 1 };
}

/** The worker's program in a Blob: it waits for its init message, then runs WORKER_BODY. */
let workerUrl: string | undefined;
function workerSource(): string {
  const source = `self.onmessage = (event) => {
  self.onmessage = null;
  (${WORKER_BODY})(event.data, () => self.postMessage('ready'));
};`;
  return (workerUrl ??= URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
}

const spawnWebWorker: SpawnWorker = (init) =>
  new Promise((resolve, reject) => {
    const worker = new Worker(workerSource(), { name: `fmnist kernels ${init.index}` });
    worker.onmessage = () => {
      worker.onmessage = null;
      worker.onerror = null;
      resolve(worker);
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(`a kernel worker failed to start (${event.message || 'no reason given'})`));
    };
    // The module and the shared memory are cloned into the worker (the memory's bytes stay shared).
    worker.postMessage(init);
  });

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} answered ${response.status} ${response.statusText}`);
  return response.arrayBuffer();
}

/** The WebAssembly backend in this page, on `threads` threads (the calling one included). */
export async function loadBrowserWasmKernels(options: BrowserWasmOptions): Promise<WasmKernels> {
  const allowed = browserThreads();
  const threads = options.threads ?? allowed.max;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a whole number of at least 1, got ${threads}`);
  if (threads > 1 && !allowed.isolated) {
    throw new Error(`this page is not cross-origin isolated, so its WebAssembly memory cannot be shared with workers: it runs on 1 thread, not ${threads}`);
  }
  const relaxedBytes = await fetchBytes(options.urls.relaxed);
  const useRelaxed = options.relaxed !== false && WebAssembly.validate(relaxedBytes);
  const bytes = useRelaxed ? relaxedBytes : await fetchBytes(options.urls.simd);
  const module = await WebAssembly.compile(bytes);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
  return createWasmKernels({ module, memory, threads, spawnWorker: spawnWebWorker, variant: useRelaxed ? 'relaxed SIMD' : 'SIMD' });
}
