import { KERNELS, WASM_RAW, parseArgs, type Arg, type ArgType, type Split, type StrideTerm } from '../spec.ts';
import type { KernelArgs, Kernels, WasmExports } from '../types.ts';
import { MemoryArena } from './memory.ts';
import { CONTROL_BYTES, ThreadPool, type SpawnWorker, type ThreadCall } from './pool.ts';

/** Rows and columns of C per register tile in the module's gemm: thread ranges are multiples of them. */
const GEMM_ROWS_PER_TILE = 4;
const GEMM_COLUMNS_PER_TILE = 8;
/** A product is split by k only when each thread gets at least this much of it. */
const GEMM_MIN_DEPTH_PER_THREAD = 64;
/**
 * 3x3 convolutions with at least this many channels in and out, both multiples of 4, run by
 * Winograd F(4x4, 3x3) (fewer multiplications); the first layer's single channel stays im2col.
 */
const WINOGRAD_MIN_CHANNELS = 8;
/** Kernels split over the threads from this many floats on. */
const PARALLEL_MIN_FLOATS = 32_768;
/** Below this many multiply-adds a product runs on the calling thread alone: handing off would cost more. */
const PARALLEL_MIN_MACS = 200_000;

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
const elementBytes = (type: ArgType): number => (type === 'bytes' ? 1 : 4);

/** Which of a function's arguments are floats, as the pool's bit mask. */
const floatMask = (args: Arg[]): number => args.reduce((mask, arg, i) => (arg.type === 'float' ? mask | (1 << i) : mask), 0);

/** Every function the module exports that a thread may call, with its argument types. */
const FUNCTIONS: Record<string, Arg[]> = Object.fromEntries([
  ...Object.entries(KERNELS)
    .filter(([, spec]) => spec.wasm !== 'custom')
    .map(([name, spec]) => [name, parseArgs(spec.args)]),
  ...Object.entries(WASM_RAW).map(([name, spec]) => [name, parseArgs(spec.args)]),
]);

/** Adam's update split like an elementwise kernel: the four arrays advance together. */
const ADAM_SPLIT: Split = { over: 'n', stride: { param: [1], grad: [1], m: [1], v: [1] }, align: 4 };

/**
 * The WebAssembly backend. Buffers from `allocate` live in the module's memory and are used in
 * place; any other array is copied in (and, when written, back out) around the call, so the
 * backend accepts whatever the reference accepts. The kernels the module exports under their
 * own names (spec.ts) are called generically, split over the threads as their declaration
 * says; the products, convolutions, batch gathering and Adam are written out below. Uses no
 * Node-only API.
 */
export async function createWasmKernels(options: WasmKernelsOptions): Promise<WasmKernels> {
  const { module, memory, threads } = options;
  const wasm = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as WasmExports;
  const missing = Object.keys(FUNCTIONS).filter((name) => typeof (wasm as unknown as Record<string, unknown>)[name] !== 'function');
  if (missing.length > 0) throw new Error(`the kernel module lacks ${missing.join(', ')}; rebuild it with npm run build`);
  const callable = wasm as unknown as Record<string, (...args: (number | boolean)[]) => number | undefined>;
  const scratchBytes = wasm.gemmScratchFloats() * 4;
  if (wasm.heapBase() < CONTROL_BYTES) throw new Error('the kernel module was built without room for the control block');
  const arena = new MemoryArena(memory, wasm.heapBase());
  const scratch = arena.reserve(scratchBytes * threads);
  const scratchOf = (thread: number) => scratch + thread * scratchBytes;
  let pool: ThreadPool | null = null;
  if (threads > 1) {
    if (!options.spawnWorker) throw new Error('the wasm backend needs a way to start workers for more than one thread');
    pool = await ThreadPool.start(threads, { module, memory, functions: Object.keys(FUNCTIONS) }, options.spawnWorker);
  }

  /** A block of the arena per thread, grown on demand: column matrices, partial sums. */
  const perThread = () => {
    const block = { offset: 0, bytes: 0 };
    return {
      reserve(bytesPerThread: number): void {
        if (block.bytes >= bytesPerThread) return;
        if (block.bytes > 0) arena.release(block.offset, block.bytes * threads);
        block.offset = arena.reserve(bytesPerThread * threads);
        block.bytes = bytesPerThread;
      },
      of: (thread: number) => block.offset + thread * block.bytes,
    };
  };
  const columns = perThread();
  const partials = perThread();

  // The calling thread's Winograd buffers: transformed filters, and zeros that pad the images.
  const winogradFilters = { offset: 0, bytes: 0 };
  const winogradZeros = { offset: 0, bytes: 0 };
  // The calling thread's bytes of a batch of pixels.
  const pixelStage = { offset: 0, bytes: 0 };
  /** Grows a block of the arena to at least `bytes`, zero-filled if `zeroed`. */
  const grow = (block: { offset: number; bytes: number }, bytes: number, zeroed = false): void => {
    if (block.bytes >= bytes) return;
    if (block.bytes > 0) arena.release(block.offset, block.bytes);
    block.offset = arena.reserve(bytes);
    block.bytes = bytes;
    if (zeroed) arena.bytes().fill(0, block.offset, block.offset + bytes);
  };

  // Copies of arrays that live outside the memory, made for one kernel call.
  const staged: { array: ArrayBufferView; offset: number; writeBack: boolean }[] = [];
  const ptr = (array: ArrayBufferView, writeBack: boolean): number => {
    if (arena.owns(array)) return array.byteOffset;
    const offset = arena.reserve(array.byteLength);
    arena.bytes().set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), offset);
    staged.push({ array, offset, writeBack });
    return offset;
  };
  const finish = (): void => {
    const bytes = arena.bytes();
    for (const { array, offset, writeBack } of staged) {
      if (writeBack) new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(bytes.subarray(offset, offset + array.byteLength));
      arena.release(offset, array.byteLength);
    }
    staged.length = 0;
  };

  /**
   * target[0..floats) += the workers' partials (threads 1, 2, ...), in thread order so that a run
   * repeats exactly; addBias over one row of `floats` columns is that sum.
   */
  const addWorkerPartials = (target: number, floats: number): void => {
    for (let thread = 1; thread < threads; thread++) wasm.addBias(target, partials.of(thread), 1, floats);
  };

  /** A stride's elements for these arguments: the product of its terms. */
  const strideOf = (terms: StrideTerm[], values: Record<string, number>): number =>
    terms.reduce<number>((product, term) => product * (typeof term === 'number' ? term : typeof term === 'string' ? values[term] : values[term.half] >> 1), 1);

  /**
   * Calls `name` with `raw` (its arguments in order, arrays as pointers), split over the threads
   * as `split` says when the call touches at least PARALLEL_MIN_FLOATS floats.
   */
  const callSplit = (name: string, args: Arg[], raw: (number | boolean)[], split: Split): number | undefined => {
    const values = Object.fromEntries(args.map((arg, i) => [arg.name, raw[i] as number]));
    const total = values[split.over];
    const strides = args.map((arg) => (split.stride[arg.name] ? strideOf(split.stride[arg.name], values) * elementBytes(arg.type) : 0));
    const floats = total * Math.max(1, ...args.map((arg) => (split.stride[arg.name] ? strideOf(split.stride[arg.name], values) : 0)));
    if (!pool || total < 2 || floats < PARALLEL_MIN_FLOATS) return callable[name](...raw);
    const align = split.align ?? 1;
    const chunk = Math.ceil(total / pool.threads / align) * align;
    const reduced = split.reduce === undefined ? -1 : args.findIndex((arg) => arg.name === split.reduce);
    const reduceFloats = split.reduceSize ? strideOf(split.reduceSize, values) : 0;
    if (reduced >= 0) {
      partials.reserve(reduceFloats * 4);
      for (let thread = 1; thread < pool.threads; thread++) wasm.zero(partials.of(thread), reduceFloats);
    }
    const mask = floatMask(args);
    const part = (thread: number): (number | boolean)[] | null => {
      const start = Math.min(total, thread * chunk);
      const end = Math.min(total, start + chunk);
      if (end <= start) return null;
      return raw.map((value, i) => {
        if (i === reduced && thread > 0) return partials.of(thread);
        if (args[i].name === split.over) return end - start;
        return strides[i] > 0 ? (value as number) + start * strides[i] : value;
      });
    };
    pool.run(
      name,
      (thread) => {
        const call = part(thread);
        return call && ({ args: call.map(Number), floatMask: mask } satisfies ThreadCall);
      },
      () => {
        const own = part(0);
        if (own) callable[name](...own);
      },
    );
    if (reduced >= 0) addWorkerPartials(raw[reduced] as number, reduceFloats);
    return undefined;
  };

  /** A kernel the module exports under its own name: arrays become pointers, split as declared. */
  const direct = (name: string, spec: { args: string; wasm: unknown }) => {
    const args = parseArgs(spec.args);
    const split = typeof spec.wasm === 'object' ? (spec.wasm as Split) : null;
    return (named: Record<string, unknown>): number | undefined => {
      const raw = args.map(({ name: arg, type }) => (isArray(type) ? ptr(named[arg] as ArrayBufferView, type === 'floats out') : (named[arg] as number | boolean)));
      const result = split ? callSplit(name, args, raw, split) : callable[name](...raw);
      finish();
      return result;
    };
  };

  // C[m,n] (+)= A · B with A(i,p) at a + 4(i·rsA + p·csA) and B(p,j) at b + 4(p·rsB + j·csB).
  const gemm = (
    { c, a, b, m, k, n, accumulate }: KernelArgs<'matmul'>,
    rsA: number, csA: number, rsB: number, csB: number,
  ): void => {
    const [pa, pb, pc] = [ptr(a, false), ptr(b, false), ptr(c, true)];
    const call = (args: number[]): ThreadCall => ({ args, floatMask: 0 });
    const acc = accumulate ? 1 : 0;
    if (!pool || m * n * k < PARALLEL_MIN_MACS) {
      wasm.gemm(n, k, pa, rsA, csA, pb, rsB, csB, pc, n, accumulate, 0, m, scratch);
    } else if (m < n && n < k && k >= GEMM_MIN_DEPTH_PER_THREAD * pool.threads) {
      // Thin and deep (the MLP's 64 x 784 x 128 forward pass): split k. Each thread then reads
      // only its rows of the weights, the rows its part of the weight gradient (split by rows)
      // and of the optimiser step (split by ranges) last wrote, so they stay in its core's
      // cache. The workers' partial products are added to C in thread order.
      const chunk = Math.ceil(k / pool.threads / 4) * 4;
      const range = (thread: number) => [Math.min(k, thread * chunk), Math.min(k, (thread + 1) * chunk)];
      partials.reserve(m * n * 4);
      pool.run(
        'gemm',
        (thread) => {
          const [start, end] = range(thread);
          return call([n, end - start, pa + 4 * start * csA, rsA, csA, pb + 4 * start * rsB, rsB, csB, partials.of(thread), n, 0, 0, m, scratchOf(thread)]);
        },
        () => {
          const [start, end] = range(0);
          wasm.gemm(n, end - start, pa + 4 * start * csA, rsA, csA, pb + 4 * start * rsB, rsB, csB, pc, n, accumulate, 0, m, scratch);
        },
      );
      addWorkerPartials(pc, m * n);
    } else if (m >= n) {
      // Split the rows: every thread packs all of B, which costs k·n against A's m·k.
      const chunk = Math.ceil(m / pool.threads / GEMM_ROWS_PER_TILE) * GEMM_ROWS_PER_TILE;
      const rows = (thread: number) => [Math.min(m, thread * chunk), Math.min(m, (thread + 1) * chunk)];
      pool.run(
        'gemm',
        (thread) => call([n, k, pa, rsA, csA, pb, rsB, csB, pc, n, acc, ...rows(thread), scratchOf(thread)]),
        () => wasm.gemm(n, k, pa, rsA, csA, pb, rsB, csB, pc, n, accumulate, rows(0)[0], rows(0)[1], scratch),
      );
    } else {
      // Fewer rows than columns: split the columns, so every thread packs only its part of B.
      const chunk = Math.ceil(n / pool.threads / GEMM_COLUMNS_PER_TILE) * GEMM_COLUMNS_PER_TILE;
      const range = (thread: number) => [Math.min(n, thread * chunk), Math.min(n, (thread + 1) * chunk)];
      pool.run(
        'gemm',
        (thread) => {
          const [start, end] = range(thread);
          return call([end - start, k, pa, rsA, csA, pb + 4 * start * csB, rsB, csB, pc + 4 * start, n, acc, 0, m, scratchOf(thread)]);
        },
        () => {
          const [start, end] = range(0);
          wasm.gemm(end - start, k, pa, rsA, csA, pb + 4 * start * csB, rsB, csB, pc + 4 * start, n, accumulate, 0, m, scratch);
        },
      );
    }
    finish();
  };

  /**
   * Convolutions split the batch: each thread calls `name` with `argsOf(thread, start, end)` on
   * whole images (with its own buffers). Returns the threads used.
   */
  const byImages = (name: string, batch: number, argsOf: (thread: number, start: number, end: number) => number[]): number => {
    if (!pool || batch < 2) {
      callable[name](...argsOf(0, 0, batch));
      return 1;
    }
    const chunk = Math.ceil(batch / pool.threads);
    const range = (thread: number): [number, number] => [Math.min(batch, thread * chunk), Math.min(batch, (thread + 1) * chunk)];
    pool.run(
      name,
      (thread) => ({ args: argsOf(thread, ...range(thread)), floatMask: 0 }),
      () => callable[name](...argsOf(0, ...range(0))),
    );
    return pool.threads;
  };

  type Convolution = 'forward' | 'input' | 'weight';

  const winogradApplies = ({ kernelSize, inChannels, outChannels }: KernelArgs<'conv2d'>): boolean =>
    kernelSize === 3 &&
    inChannels >= WINOGRAD_MIN_CHANNELS && outChannels >= WINOGRAD_MIN_CHANNELS &&
    inChannels % 4 === 0 && outChannels % 4 === 0;

  // Winograd convolutions: each thread transforms and multiplies its images in its own V and M buffer.
  const winogradConvolution = (kind: Convolution, target: Float32Array, first: Float32Array, second: Float32Array, shape: KernelArgs<'conv2d'>): void => {
    const { batch, height, width, inChannels, outChannels } = shape;
    // The input gradient is the forward convolution of the output gradient with flipped filters.
    const [inC, outC] = kind === 'input' ? [outChannels, inChannels] : [inChannels, outChannels];
    const transformedBytes = 36 * inC * outC * 4;
    grow(winogradFilters, wasm.winogradFiltersFloats(inC, outC) * 4);
    grow(winogradZeros, Math.max(inC, outC) * 4, true);
    columns.reserve(wasm.winogradBufferFloats(height, width, inC, outC) * 4);
    if (kind === 'weight') partials.reserve(transformedBytes);
    const pt = ptr(target, true);
    const p1 = ptr(first, false);
    const p2 = ptr(second, false);
    const [filters, zeros] = [winogradFilters.offset, winogradZeros.offset];
    if (kind === 'weight') {
      const used = byImages('winogradWeight', batch, (thread, start, end) => [partials.of(thread), p1, p2, start, end, height, width, inC, outC, columns.of(thread), scratchOf(thread), zeros]);
      wasm.winogradFilterGradient(pt, partials.of(0), partials.of(1) - partials.of(0), used, inC, outC);
    } else {
      wasm.winogradFilters(filters, p2, inC, outC, kind === 'input');
      byImages('winogradForward', batch, (thread, start, end) => [pt, p1, filters, start, end, height, width, inC, outC, columns.of(thread), scratchOf(thread), zeros]);
    }
    finish();
  };

  // im2col convolutions: each thread takes whole images, with its own column matrix.
  const convolution = (kind: Convolution, target: Float32Array, first: Float32Array, second: Float32Array, shape: KernelArgs<'conv2d'>): void => {
    if (winogradApplies(shape)) {
      winogradConvolution(kind, target, first, second, shape);
      return;
    }
    const { batch, height, width, inChannels, outChannels, kernelSize } = shape;
    const taps = kernelSize * kernelSize * inChannels;
    columns.reserve(height * width * taps * 4);
    const pt = ptr(target, true);
    const p1 = ptr(first, false);
    const p2 = ptr(second, false);
    const geometry = [height, width, inChannels, outChannels, kernelSize];
    if (kind === 'weight') {
      // Each thread sums its images into a private transposed buffer, added in thread order.
      partials.reserve(taps * outChannels * 4);
      const used = byImages('conv2dBackwardWeight', batch, (thread, start, end) => [partials.of(thread), p1, p2, start, end, ...geometry, columns.of(thread), scratchOf(thread)]);
      for (let thread = 0; thread < used; thread++) wasm.addTransposed(pt, partials.of(thread), taps, outChannels);
    } else {
      const name = kind === 'forward' ? 'conv2dForward' : 'conv2dBackwardInput';
      byImages(name, batch, (thread, start, end) => [pt, p1, p2, start, end, ...geometry, columns.of(thread), scratchOf(thread)]);
    }
    finish();
  };

  const directKernels = Object.fromEntries(Object.entries(KERNELS).filter(([, spec]) => spec.wasm !== 'custom').map(([name, spec]) => [name, direct(name, spec)]));

  // Batch normalisation's float64 sums: each thread sums a range of rows into its own [2, channels]
  // doubles, added here in thread order. `means` (float64) is the second pass's mean.
  const means = { offset: 0, bytes: 0 };
  const batchNormSums = (a: number, b: number, mean: number, rows: number, channels: number): Float64Array => {
    const parts = pool && rows >= 2 && rows * channels >= PARALLEL_MIN_FLOATS ? pool.threads : 1;
    const size = 2 * channels;
    partials.reserve(size * 8);
    const range = (thread: number) => [Math.floor((rows * thread) / parts), Math.floor((rows * (thread + 1)) / parts)];
    const args = (thread: number) => [partials.of(thread), a, b, mean, ...range(thread), channels];
    if (pool && parts > 1) {
      pool.run('batchNormPartialSums', (thread) => ({ args: args(thread), floatMask: 0 }), () => wasm.batchNormPartialSums(...(args(0) as [number, number, number, number, number, number, number])));
    } else {
      wasm.batchNormPartialSums(...(args(0) as [number, number, number, number, number, number, number]));
    }
    const total = new Float64Array(size);
    for (let part = 0; part < parts; part++) {
      const sums = new Float64Array(memory.buffer, partials.of(part), size);
      for (let i = 0; i < size; i++) total[i] += sums[i];
    }
    return total;
  };

  const custom: Pick<
    Kernels,
    'matmul' | 'matmulTransA' | 'matmulTransB' | 'conv2d' | 'conv2dBackwardInput' | 'conv2dBackwardWeight' | 'gatherPixels' | 'adamStep' | 'batchNormStatistics' | 'batchNormBackwardSums'
  > = {
    matmul: (args) => gemm(args, args.k, 1, args.n, 1),
    matmulTransA: (args) => gemm(args, 1, args.m, args.n, 1),
    matmulTransB: (args) => gemm(args, args.k, 1, 1, args.k),
    conv2d: (args) => convolution('forward', args.out, args.inp, args.weight, args),
    conv2dBackwardInput: (args) => convolution('input', args.dinp, args.dout, args.weight, args),
    conv2dBackwardWeight: (args) => convolution('weight', args.dweight, args.inp, args.dout, args),

    // The dataset lies outside the memory: JavaScript copies the batch's rows of bytes in (a
    // quarter of what floats would be), and the module scales them.
    gatherPixels({ out, pixels, indices, start, count, rowLength }) {
      const size = count * rowLength;
      grow(pixelStage, size);
      const bytes = arena.bytes();
      for (let b = 0; b < count; b++) {
        const row = indices[start + b] * rowLength;
        bytes.set(pixels.subarray(row, row + rowLength), pixelStage.offset + b * rowLength);
      }
      wasm.scalePixels(ptr(out, true), pixelStage.offset, size);
      finish();
    },

    // The bias corrections in float64 once, then the update split like an elementwise kernel
    // (ranges at multiples of 4 floats take the same vector code as one call: the same result).
    adamStep({ param, grad, m, v, n, learningRate, beta1, beta2, epsilon, weightDecay, step }) {
      const raw = [ptr(param, true), ptr(grad, false), ptr(m, true), ptr(v, true), n, learningRate / (1 - beta1 ** step), beta1, beta2, epsilon, weightDecay, 1 - beta2 ** step];
      callSplit('adamUpdate', FUNCTIONS.adamUpdate, raw, ADAM_SPLIT);
      finish();
    },

    // Two passes over the rows: the means, then the squared deviations from them (not E[x²] -
    // E[x]², which cancels badly).
    batchNormStatistics({ mean, variance, inp, rows, channels }) {
      const pi = ptr(inp, false);
      const sums = batchNormSums(pi, 0, 0, rows, channels);
      grow(means, channels * 8);
      const averages = new Float64Array(memory.buffer, means.offset, channels);
      for (let c = 0; c < channels; c++) averages[c] = sums[c] / rows;
      const squares = batchNormSums(pi, 0, means.offset, rows, channels);
      for (let c = 0; c < channels; c++) {
        mean[c] = averages[c];
        variance[c] = squares[channels + c] / rows;
      }
      finish();
    },

    batchNormBackwardSums({ sumDout, sumDoutNormalized, dout, normalized, rows, channels }) {
      const sums = batchNormSums(ptr(normalized, false), ptr(dout, false), 0, rows, channels);
      for (let c = 0; c < channels; c++) {
        sumDout[c] = sums[c];
        sumDoutNormalized[c] = sums[channels + c];
      }
      finish();
    },
  };

  return {
    name: 'wasm',
    description: `wasm (${options.variant}, ${threads} thread${threads === 1 ? '' : 's'})`,
    threads,
    allocate: (length) => arena.allocateFloats(length),
    release: (buffer) => arena.releaseFloats(buffer),
    usage: () => arena.usage(),
    ...(directKernels as unknown as Omit<Kernels, keyof typeof custom | 'name' | 'description' | 'allocate' | 'release'>),
    ...custom,
    close() {
      pool?.stop();
      pool = null;
    },
  };
}
