import { hostBackend, referenceKernels } from '../js.ts';
import { KERNELS, WASM_RAW, parseArgs, type Arg, type ArgType, type Split } from '../spec.ts';
import type { HostKernels, Kernels, WasmExports } from '../types.ts';
import { customKernels, type CustomContext } from './custom.ts';
import { MemoryArena } from './memory.ts';
import { CONTROL_BYTES, ThreadPool, type SpawnWorker } from './pool.ts';
import { Splitter, type RawFunction } from './split.ts';
import { PerThreadBlock, Staging } from './staging.ts';

export interface WasmKernelsOptions {
  module: WebAssembly.Module;
  /** A shared memory (the module imports a shared one); it grows as buffers are allocated. */
  memory: WebAssembly.Memory;
  /** Threads in all, the calling one included. */
  threads: number;
  /** Starts a worker; needed when threads > 1. */
  spawnWorker?: SpawnWorker;
  /** Which build of the module this is, for messages: 'relaxed SIMD' or 'SIMD'. */
  variant: string;
}

export interface WasmKernels extends Kernels {
  readonly threads: number;
  /** Bytes of the module's memory held by buffers and by the backend's own work areas, and the memory's size. */
  usage(): { liveBytes: number; memoryBytes: number };
  /** Stops the worker threads; the kernels must not be used afterwards. */
  close(): void;
}

const isArray = (type: ArgType): boolean => type === 'floats' || type === 'floats out' || type === 'bytes' || type === 'ints' || type === 'ints counted';

/** How the table says each kernel runs here. */
const byMode = (mode: 'direct' | 'reference') =>
  Object.entries(KERNELS).filter(([, spec]) => (mode === 'reference' ? spec.wasm === 'reference' : spec.wasm !== 'custom' && spec.wasm !== 'reference'));

/** Every function the module exports that a thread may call, with its argument types: the direct kernels and the raw functions. */
const FUNCTIONS: Record<string, Arg[]> = Object.fromEntries([
  ...byMode('direct').map(([name, spec]) => [name, parseArgs(spec.args)]),
  ...Object.entries(WASM_RAW).map(([name, spec]) => [name, parseArgs(spec.args)]),
]);

/**
 * The WebAssembly backend. Tensors from `allocate` live in the module's memory and are used in
 * place; any other array is copied in (and, when written, back out) around the call
 * (staging.ts), so the backend accepts whatever the reference accepts. Kernels come three
 * ways, as their declaration says: those the module exports under their own names are called
 * generically, split over the threads as declared (split.ts); the custom ones are written
 * out over the module's raw functions (custom.ts); the reference ones are js.ts's, on the
 * memory's arrays. Uses no Node-only API.
 */
export async function createWasmKernels(options: WasmKernelsOptions): Promise<WasmKernels> {
  const { module, memory, threads } = options;
  const wasm = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as WasmExports;
  const missing = Object.keys(FUNCTIONS).filter((name) => typeof (wasm as unknown as Record<string, unknown>)[name] !== 'function');
  if (missing.length > 0) throw new Error(`the kernel module lacks ${missing.join(', ')}; rebuild it with npm run build`);
  const callable = wasm as unknown as Record<string, RawFunction>;
  const scratchBytes = wasm.gemmScratchFloats() * 4;
  if (wasm.heapBase() < CONTROL_BYTES) throw new Error('the kernel module was built without room for the control block');
  const arena = new MemoryArena(memory, wasm.heapBase());
  const scratch = arena.reserve(scratchBytes * threads);
  let pool: ThreadPool | null = null;
  if (threads > 1) {
    if (!options.spawnWorker) throw new Error('the wasm backend needs a way to start workers for more than one thread');
    pool = await ThreadPool.start(threads, { module, memory, functions: Object.keys(FUNCTIONS) }, options.spawnWorker);
  }
  const staging = new Staging(arena);
  const splitter = new Splitter(wasm, callable, pool, new PerThreadBlock(arena, threads));

  /** A kernel the module exports under its own name: arrays become pointers, split as declared. */
  const direct = (name: string, spec: { args: string; wasm: unknown }) => {
    const args = parseArgs(spec.args);
    const split = typeof spec.wasm === 'object' ? (spec.wasm as Split) : null;
    return (named: Record<string, unknown>): void => {
      const raw = args.map(({ name: arg, type }) => (isArray(type) ? staging.pointer(named[arg] as ArrayBufferView, type === 'floats out') : (named[arg] as number | boolean)));
      if (split) splitter.call(name, args, raw, split);
      else callable[name](...raw);
      staging.finish();
    };
  };

  const generic = Object.fromEntries(byMode('direct').map(([name, spec]) => [name, direct(name, spec)]));
  const kernels = {
    ...generic,
    ...Object.fromEntries(byMode('reference').map(([name]) => [name, referenceKernels[name as keyof typeof KERNELS]])),
    ...customKernels({ wasm, memory, arena, staging, splitter, scratchOf: (thread) => scratch + thread * scratchBytes, generic: generic as unknown as CustomContext['generic'] }),
  } as unknown as Omit<HostKernels, 'name' | 'description' | 'device' | 'allocate' | 'release' | 'write' | 'read'>;

  return {
    ...hostBackend({
      name: 'wasm',
      description: `wasm (${options.variant}, ${threads} thread${threads === 1 ? '' : 's'})`,
      device: 'cpu',
      allocate: (length) => arena.allocateFloats(length),
      release: (tensor) => arena.releaseFloats(tensor),
      write: referenceKernels.write,
      read: referenceKernels.read,
      ...kernels,
    }),
    threads,
    usage: () => arena.usage(),
    close() {
      pool?.stop();
      pool = null;
    },
  };
}
