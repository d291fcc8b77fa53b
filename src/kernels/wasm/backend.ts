import type { AdamHyper, ConvShape, Kernels, SgdHyper } from '../types.ts';
import { MemoryArena } from './memory.ts';
import { CONTROL_BYTES, Op, ThreadPool, type SpawnWorker, type ThreadBuffers } from './pool.ts';

/** The functions the AssemblyScript module exports (src/kernels/wasm/assembly/kernels.ts). */
interface KernelExports {
  heapBase(): number;
  gemmScratchFloats(): number;
  gemm(
    n: number, k: number,
    a: number, rsA: number, csA: number,
    b: number, rsB: number, csB: number,
    c: number, ldc: number, accumulate: number,
    rowStart: number, rowEnd: number, scratch: number,
  ): void;
  addBias(out: number, bias: number, rows: number, cols: number): void;
  sumRows(dbias: number, dout: number, rows: number, cols: number): void;
  relu(out: number, inp: number, n: number): void;
  reluBackward(dinp: number, dout: number, out: number, n: number): void;
  zero(out: number, n: number): void;
  scalePixels(out: number, bytes: number, n: number): void;
  dropoutMask(mask: number, n: number, threshold: number, scale: number, key0: number, key1: number): void;
  multiply(out: number, a: number, b: number, n: number): void;
  conv2dForward(
    out: number, inp: number, weight: number, b0: number, b1: number,
    height: number, width: number, channels: number, filters: number, kernel: number, col: number, scratch: number,
  ): void;
  conv2dBackwardInput(
    dinp: number, dout: number, weight: number, b0: number, b1: number,
    height: number, width: number, channels: number, filters: number, kernel: number, col: number, scratch: number,
  ): void;
  conv2dBackwardWeight(
    dweightT: number, inp: number, dout: number, b0: number, b1: number,
    height: number, width: number, channels: number, filters: number, kernel: number, col: number, scratch: number,
  ): void;
  addTransposed(dst: number, src: number, rows: number, cols: number): void;
  winogradBufferFloats(height: number, width: number, inC: number, outC: number): number;
  winogradFilters(u: number, weight: number, inC: number, outC: number, flip: number): void;
  winogradForward(
    dst: number, src: number, u: number, b0: number, b1: number,
    height: number, width: number, inC: number, outC: number, buffer: number, scratch: number, zeros: number,
  ): void;
  winogradWeight(
    du: number, src: number, dout: number, b0: number, b1: number,
    height: number, width: number, inC: number, outC: number, buffer: number, scratch: number, zeros: number,
  ): void;
  winogradFilterGradient(dweight: number, du: number, partBytes: number, parts: number, inC: number, outC: number): void;
  maxPool2x2(out: number, inp: number, batch: number, height: number, width: number, channels: number): void;
  maxPool2x2Backward(dinp: number, dout: number, inp: number, out: number, batch: number, height: number, width: number, channels: number): void;
  softmaxCrossEntropy(probs: number, logits: number, labels: number, rows: number, cols: number): number;
  softmaxCrossEntropyBackward(dlogits: number, probs: number, labels: number, rows: number, cols: number): void;
  sgdStep(param: number, grad: number, velocity: number, n: number, lr: number, momentum: number, nesterov: number, decay: number): void;
  adamStep(
    param: number, grad: number, m: number, v: number, n: number,
    stepSize: number, beta1: number, beta2: number, epsilon: number, decay: number, correction2: number,
  ): void;
}

/** Rows and columns of C per register tile in the module's gemm: thread ranges are multiples of them. */
const GEMM_ROWS_PER_TILE = 4;
const GEMM_COLUMNS_PER_TILE = 8;
/** A product is split by k only when each thread gets at least this much of it. */
const GEMM_MIN_DEPTH_PER_THREAD = 64;
/**
 * 3x3 convolutions with at least this many channels in and out, both multiples of 4, run by
 * Winograd F(2x2, 3x3) (fewer multiplications); the first layer's single channel stays im2col.
 */
const WINOGRAD_MIN_CHANNELS = 8;
/** Elementwise kernels, bias, pooling and Adam split over the threads from this many floats on. */
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
  /** Stops the worker threads; the kernels must not be used afterwards. */
  close(): void;
}

/**
 * The WebAssembly backend. Buffers from `allocate` live in the module's memory and are used in
 * place; any other array is copied in (and, when written, back out) around the call, so the
 * backend accepts whatever the reference accepts. Uses no Node-only API.
 */
export async function createWasmKernels(options: WasmKernelsOptions): Promise<WasmKernels> {
  const { module, memory, threads } = options;
  const wasm = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
  const scratchBytes = wasm.gemmScratchFloats() * 4;
  if (wasm.heapBase() < CONTROL_BYTES) throw new Error('the kernel module was built without room for the control block');
  const arena = new MemoryArena(memory, wasm.heapBase());
  const scratch = arena.reserve(scratchBytes * threads);
  let pool: ThreadPool | null = null;
  if (threads > 1) {
    if (!options.spawnWorker) throw new Error('the wasm backend needs a way to start workers for more than one thread');
    pool = await ThreadPool.start(threads, { module, memory }, options.spawnWorker);
  }
  // Per-thread column matrices (convolution) and workers' private weight-gradient sums: grown on demand.
  const buffers: ThreadBuffers = { scratch, scratchBytes, columns: 0, columnsBytes: 0, partials: 0, partialsBytes: 0 };
  const ensure = (kind: 'columns' | 'partials', bytesPerThread: number, count: number): void => {
    const bytesKey = kind === 'columns' ? 'columnsBytes' : 'partialsBytes';
    if (buffers[bytesKey] >= bytesPerThread) return;
    if (buffers[bytesKey] > 0) arena.release(buffers[kind], buffers[bytesKey] * count);
    buffers[kind] = arena.reserve(bytesPerThread * count);
    buffers[bytesKey] = bytesPerThread;
  };

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
  const ptr = (array: Float32Array | Uint8Array, writeBack: boolean): number => {
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
    for (let thread = 1; thread < threads; thread++) wasm.addBias(target, buffers.partials + thread * buffers.partialsBytes, 1, floats);
  };

  // C[m,n] (+)= A · B with A(i,p) at a + 4(i·rsA + p·csA) and B(p,j) at b + 4(p·rsB + j·csB).
  const gemm = (
    c: Float32Array, a: Float32Array, b: Float32Array,
    m: number, k: number, n: number,
    rsA: number, csA: number, rsB: number, csB: number,
    accumulate: boolean,
  ): void => {
    const args = [n, k, ptr(a, false), rsA, csA, ptr(b, false), rsB, csB, ptr(c, true), n, accumulate ? 1 : 0];
    const [, , pa, , , pb, , , pc, , acc] = args;
    if (!pool || m * n * k < PARALLEL_MIN_MACS) {
      wasm.gemm(n, k, pa, rsA, csA, pb, rsB, csB, pc, n, acc, 0, m, scratch);
    } else if (m < n && n < k && k >= GEMM_MIN_DEPTH_PER_THREAD * pool.threads) {
      // Thin and deep (the MLP's 64 x 784 x 128 forward pass): split k. Each thread then reads
      // only its rows of the weights, the rows its part of the weight gradient (split by rows)
      // and of the optimiser step (split by ranges) last wrote, so they stay in its core's
      // cache. The workers' partial products are added to C in thread order.
      const chunk = Math.ceil(k / pool.threads / 4) * 4;
      ensure('partials', m * n * 4, pool.threads);
      pool.run(Op.GemmDeep, [...args, m], k, chunk, buffers, (start, end) =>
        wasm.gemm(n, end - start, pa + 4 * start * csA, rsA, csA, pb + 4 * start * rsB, rsB, csB, pc, n, acc, 0, m, scratch),
      );
      addWorkerPartials(pc, m * n);
    } else if (m >= n) {
      // Split the rows: every thread packs all of B, which costs k·n against A's m·k.
      const chunk = Math.ceil(m / pool.threads / GEMM_ROWS_PER_TILE) * GEMM_ROWS_PER_TILE;
      pool.run(Op.Gemm, args, m, chunk, buffers, (start, end) => wasm.gemm(n, k, pa, rsA, csA, pb, rsB, csB, pc, n, acc, start, end, scratch));
    } else {
      // Fewer rows than columns: split the columns, so every thread packs only its part of B.
      const chunk = Math.ceil(n / pool.threads / GEMM_COLUMNS_PER_TILE) * GEMM_COLUMNS_PER_TILE;
      pool.run(Op.GemmColumns, [...args, m], n, chunk, buffers, (start, end) =>
        wasm.gemm(end - start, k, pa, rsA, csA, pb + 4 * start * csB, rsB, csB, pc + 4 * start, n, acc, 0, m, scratch),
      );
    }
    finish();
  };

  /**
   * Runs `own(start, end)` over [0, total) on every thread (parts a multiple of `align` long)
   * when the kernel touches at least PARALLEL_MIN_FLOATS floats, else on this thread alone; the
   * workers run `op` with `args` (and `floatArgs`) on their parts.
   */
  const split = (
    op: Op, args: readonly number[], total: number, floats: number, align: number,
    own: (start: number, end: number) => void, floatArgs: readonly number[] = [],
  ): void => {
    if (pool && total >= 2 && floats >= PARALLEL_MIN_FLOATS) {
      pool.run(op, args, total, Math.ceil(total / pool.threads / align) * align, buffers, own, floatArgs);
    } else {
      own(0, total);
    }
  };

  /**
   * Convolutions split the batch: each thread takes whole images (with its own buffers), the
   * workers running `op` with `args`. Returns the threads used.
   */
  const byImages = (op: Op, args: readonly number[], batch: number, own: (start: number, end: number) => void): number => {
    if (!pool || batch < 2) {
      own(0, batch);
      return 1;
    }
    pool.run(op, args, batch, Math.ceil(batch / pool.threads), buffers, own);
    return pool.threads;
  };

  const winogradApplies = ({ kernelSize, inChannels, outChannels }: ConvShape): boolean =>
    kernelSize === 3 &&
    inChannels >= WINOGRAD_MIN_CHANNELS && outChannels >= WINOGRAD_MIN_CHANNELS &&
    inChannels % 4 === 0 && outChannels % 4 === 0;

  // Winograd convolutions: each thread transforms and multiplies its images in its own V and M buffer.
  const winogradConvolution = (
    op: typeof Op.ConvForward | typeof Op.ConvBackwardInput | typeof Op.ConvBackwardWeight,
    target: Float32Array, first: Float32Array, second: Float32Array, shape: ConvShape,
  ): void => {
    const { batch, height, width, inChannels, outChannels } = shape;
    // The input gradient is the forward convolution of the output gradient with flipped filters.
    const [inC, outC] = op === Op.ConvBackwardInput ? [outChannels, inChannels] : [inChannels, outChannels];
    const transformedBytes = 16 * inC * outC * 4;
    grow(winogradFilters, transformedBytes);
    grow(winogradZeros, Math.max(inC, outC) * 4, true);
    ensure('columns', wasm.winogradBufferFloats(height, width, inC, outC) * 4, threads);
    if (op === Op.ConvBackwardWeight) ensure('partials', transformedBytes, threads);
    const pt = ptr(target, true);
    const p1 = ptr(first, false);
    const p2 = ptr(second, false);
    const [filters, zeros] = [winogradFilters.offset, winogradZeros.offset];
    if (op !== Op.ConvBackwardWeight) wasm.winogradFilters(filters, p2, inC, outC, op === Op.ConvBackwardInput ? 1 : 0);
    const geometry = [height, width, inC, outC] as const;
    const own = (start: number, end: number): void => {
      if (op === Op.ConvBackwardWeight) wasm.winogradWeight(buffers.partials, p1, p2, start, end, ...geometry, buffers.columns, scratch, zeros);
      else wasm.winogradForward(pt, p1, filters, start, end, ...geometry, buffers.columns, scratch, zeros);
    };
    const used = op === Op.ConvBackwardWeight
      ? byImages(Op.WinogradWeight, [pt, p1, p2, ...geometry, zeros], batch, own)
      : byImages(Op.WinogradForward, [pt, p1, filters, ...geometry, zeros], batch, own);
    if (op === Op.ConvBackwardWeight) wasm.winogradFilterGradient(pt, buffers.partials, buffers.partialsBytes, used, inC, outC);
    finish();
  };

  // im2col convolutions: each thread takes whole images, with its own column matrix.
  const convolution = (
    op: typeof Op.ConvForward | typeof Op.ConvBackwardInput | typeof Op.ConvBackwardWeight,
    target: Float32Array, first: Float32Array, second: Float32Array, shape: ConvShape,
  ): void => {
    if (winogradApplies(shape)) {
      winogradConvolution(op, target, first, second, shape);
      return;
    }
    const { batch, height, width, inChannels, outChannels, kernelSize } = shape;
    const taps = kernelSize * kernelSize * inChannels;
    ensure('columns', height * width * taps * 4, threads);
    const pt = ptr(target, true);
    const p1 = ptr(first, false);
    const p2 = ptr(second, false);
    const geometry = [height, width, inChannels, outChannels, kernelSize] as const;
    const weightFloats = taps * outChannels;
    // The weight gradient: each thread sums its images into a private transposed buffer.
    if (op === Op.ConvBackwardWeight) ensure('partials', weightFloats * 4, threads);
    const own = (start: number, end: number): void => {
      if (op === Op.ConvForward) wasm.conv2dForward(pt, p1, p2, start, end, ...geometry, buffers.columns, scratch);
      else if (op === Op.ConvBackwardInput) wasm.conv2dBackwardInput(pt, p1, p2, start, end, ...geometry, buffers.columns, scratch);
      else wasm.conv2dBackwardWeight(buffers.partials, p1, p2, start, end, ...geometry, buffers.columns, scratch);
    };
    const used = byImages(op, [pt, p1, p2, ...geometry], batch, own);
    if (op === Op.ConvBackwardWeight) {
      for (let i = 0; i < used; i++) wasm.addTransposed(pt, buffers.partials + i * buffers.partialsBytes, taps, outChannels);
    }
    finish();
  };

  return {
    name: 'wasm',
    description: `wasm (${options.variant}, ${threads} thread${threads === 1 ? '' : 's'})`,
    threads,

    allocate(length) {
      return arena.allocateFloats(length);
    },

    matmul(c, a, b, m, k, n, accumulate) {
      gemm(c, a, b, m, k, n, k, 1, n, 1, accumulate);
    },

    matmulTransA(c, a, b, m, k, n, accumulate) {
      gemm(c, a, b, m, k, n, 1, m, n, 1, accumulate);
    },

    matmulTransB(c, a, b, m, k, n, accumulate) {
      gemm(c, a, b, m, k, n, k, 1, 1, k, accumulate);
    },

    addBias(out, bias, rows, cols) {
      const [po, pb] = [ptr(out, true), ptr(bias, false)];
      split(Op.AddBias, [po, pb, cols], rows, rows * cols, 1, (start, end) => wasm.addBias(po + 4 * start * cols, pb, end - start, cols));
      finish();
    },

    // Split by rows (a convolution's bias gradient sums 50,176 rows): the first part adds into
    // dbias, the others into the workers' partials, added after in thread order.
    sumRows(dbias, dout, rows, cols) {
      const [pb, pd] = [ptr(dbias, true), ptr(dout, false)];
      if (pool && rows >= 2 && rows * cols >= PARALLEL_MIN_FLOATS) {
        ensure('partials', cols * 4, pool.threads);
        pool.run(Op.SumRows, [pd, cols], rows, Math.ceil(rows / pool.threads), buffers, (start, end) => wasm.sumRows(pb, pd + 4 * start * cols, end - start, cols));
        addWorkerPartials(pb, cols);
      } else {
        wasm.sumRows(pb, pd, rows, cols);
      }
      finish();
    },

    relu(out, inp, n) {
      const [po, pi] = [ptr(out, true), ptr(inp, false)];
      split(Op.Relu, [po, pi], n, n, 4, (start, end) => wasm.relu(po + 4 * start, pi + 4 * start, end - start));
      finish();
    },

    reluBackward(dinp, dout, out, n) {
      const [pd, pg, po] = [ptr(dinp, true), ptr(dout, false), ptr(out, false)];
      split(Op.ReluBackward, [pd, pg, po], n, n, 4, (start, end) => wasm.reluBackward(pd + 4 * start, pg + 4 * start, po + 4 * start, end - start));
      finish();
    },

    // The dataset lies outside the memory: JavaScript copies the batch's rows of bytes in (a
    // quarter of what floats would be), and the module scales them.
    gatherPixels(out, pixels, indices, start, count, rowLength) {
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

    dropoutMask(mask, n, threshold, scale, key0, key1) {
      wasm.dropoutMask(ptr(mask, true), n, threshold, scale, key0, key1);
      finish();
    },

    // On this thread alone: the step's gradients (400 KB for the MLP) clear in about 7 us, less
    // than waking a worker that has gone to sleep costs.
    zero(out, n) {
      wasm.zero(ptr(out, true), n);
      finish();
    },

    multiply(out, a, b, n) {
      const [po, pa, pb] = [ptr(out, true), ptr(a, false), ptr(b, false)];
      split(Op.Multiply, [po, pa, pb], n, n, 4, (start, end) => wasm.multiply(po + 4 * start, pa + 4 * start, pb + 4 * start, end - start));
      finish();
    },

    softmaxCrossEntropy(probs, logits, labels, rows, cols) {
      const loss = wasm.softmaxCrossEntropy(ptr(probs, true), ptr(logits, false), ptr(labels, false), rows, cols);
      finish();
      return loss;
    },

    softmaxCrossEntropyBackward(dlogits, probs, labels, rows, cols) {
      wasm.softmaxCrossEntropyBackward(ptr(dlogits, true), ptr(probs, false), ptr(labels, false), rows, cols);
      finish();
    },

    conv2d(out, inp, weight, shape) {
      convolution(Op.ConvForward, out, inp, weight, shape);
    },

    conv2dBackwardInput(dinp, dout, weight, shape) {
      convolution(Op.ConvBackwardInput, dinp, dout, weight, shape);
    },

    conv2dBackwardWeight(dweight, inp, dout, shape) {
      convolution(Op.ConvBackwardWeight, dweight, inp, dout, shape);
    },

    maxPool2x2(out, inp, batch, height, width, channels) {
      const [po, pi] = [ptr(out, true), ptr(inp, false)];
      const [image, pooled] = [height * width * channels, (height >> 1) * (width >> 1) * channels];
      split(Op.MaxPool, [po, pi, height, width, channels], batch, batch * image, 1, (start, end) =>
        wasm.maxPool2x2(po + 4 * start * pooled, pi + 4 * start * image, end - start, height, width, channels),
      );
      finish();
    },

    maxPool2x2Backward(dinp, dout, inp, out, batch, height, width, channels) {
      const [pd, pg, pi, po] = [ptr(dinp, true), ptr(dout, false), ptr(inp, false), ptr(out, false)];
      const [image, pooled] = [height * width * channels, (height >> 1) * (width >> 1) * channels];
      split(Op.MaxPoolBackward, [pd, pg, pi, po, height, width, channels], batch, batch * image, 1, (start, end) =>
        wasm.maxPool2x2Backward(pd + 4 * start * image, pg + 4 * start * pooled, pi + 4 * start * image, po + 4 * start * pooled, end - start, height, width, channels),
      );
      finish();
    },

    sgdStep(param, grad, velocity, n, hyper: SgdHyper) {
      wasm.sgdStep(ptr(param, true), ptr(grad, false), ptr(velocity, true), n, hyper.learningRate, hyper.momentum, hyper.nesterov ? 1 : 0, hyper.weightDecay);
      finish();
    },

    adamStep(param, grad, m, v, n, hyper: AdamHyper) {
      const stepSize = hyper.learningRate / (1 - hyper.beta1 ** hyper.step);
      const correction2 = 1 - hyper.beta2 ** hyper.step;
      const pointers = [ptr(param, true), ptr(grad, false), ptr(m, true), ptr(v, true)];
      const hypers = [stepSize, hyper.beta1, hyper.beta2, hyper.epsilon, hyper.weightDecay, correction2];
      // Ranges split at multiples of 4 floats take the same vector code as one call would: the same result.
      split(Op.Adam, pointers, n, n, 4, (start, end) =>
        wasm.adamStep(...(pointers.map((p) => p + 4 * start) as [number, number, number, number]), end - start, ...(hypers as [number, number, number, number, number, number])),
        hypers,
      );
      finish();
    },

    close() {
      pool?.stop();
      pool = null;
    },
  };
}
