/**
 * The WebAssembly backend's custom kernels (those spec.ts marks `wasm: 'custom'`): the matrix
 * products and convolutions, whose split over threads needs more than a range (packing, k
 * splits, per-thread column matrices, Winograd's transformed filters), gathering a batch of
 * pixels, Adam with its bias corrections, and batch normalisation's float64 sums. Each is
 * written over the module's raw functions (WASM_RAW).
 */
import { WASM_RAW, WINOGRAD_MIN_CHANNELS, parseArgs, type Split } from '../spec.ts';
import type { HostKernels, KernelArgs, WasmCustomKernels, WasmExports } from '../types.ts';
import type { MemoryArena } from './memory.ts';
import type { ThreadCall } from './pool.ts';
import type { Splitter } from './split.ts';
import { GrowingBlock, PerThreadBlock, type Staging } from './staging.ts';

/** Rows and columns of C per register tile in the module's gemm: thread ranges are multiples of them. */
const GEMM_ROWS_PER_TILE = 4;
const GEMM_COLUMNS_PER_TILE = 8;
/** A product is split by k only when each thread gets at least this much of it. */
const GEMM_MIN_DEPTH_PER_THREAD = 64;
/** A convolution's geometry. */
type ConvShape = Omit<KernelArgs<'conv2d', Float32Array>, 'out' | 'inp' | 'weight'>;
/** Below this many multiply-adds a product runs on the calling thread alone: handing off would cost more. */
const PARALLEL_MIN_MACS = 200_000;
/** batchNormPartialSums splits its rows over the threads from this many floats on. */
const PARALLEL_MIN_FLOATS = 32_768;

/** Adam's update split like an elementwise kernel: the four arrays advance together. */
const ADAM_SPLIT: Split = { over: 'n', stride: { param: [1], grad: [1], m: [1], v: [1] }, align: 4 };
const ADAM_ARGS = parseArgs(WASM_RAW.adamUpdate.args);

export interface CustomContext {
  wasm: WasmExports;
  memory: WebAssembly.Memory;
  arena: MemoryArena;
  staging: Staging;
  splitter: Splitter;
  /** Byte offset of each thread's gemm scratch. */
  scratchOf(thread: number): number;
  /** The backend's own generic kernels that the custom ones finish with. */
  generic: Pick<HostKernels, 'addBias' | 'relu'>;
}

type Convolution = 'forward' | 'input' | 'weight';

export function customKernels({ wasm, memory, arena, staging, splitter, scratchOf, generic }: CustomContext): WasmCustomKernels {
  const { pool, partials } = splitter;
  const threads = splitter.threads;
  const scratch = scratchOf(0);
  const ptr = (array: ArrayBufferView, writeBack: boolean) => staging.pointer(array, writeBack);
  const columns = new PerThreadBlock(arena, threads);
  // The calling thread's Winograd buffers (transformed filters, and zeros that pad the images),
  // the bytes of a batch of pixels, and batch normalisation's float64 means.
  const winogradFilters = new GrowingBlock(arena);
  const winogradZeros = new GrowingBlock(arena);
  const pixelStage = new GrowingBlock(arena);
  const means = new GrowingBlock(arena);

  // C[m,n] (+)= A · B with A(i,p) at a + 4(i·rsA + p·csA) and B(p,j) at b + 4(p·rsB + j·csB).
  const gemm = ({ c, a, b, m, k, n, accumulate }: KernelArgs<'matmul', Float32Array>, rsA: number, csA: number, rsB: number, csB: number): void => {
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
      splitter.addWorkerPartials(pc, m * n);
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
    staging.finish();
  };

  // 3x3 convolutions with at least WINOGRAD_MIN_CHANNELS channels in and out, both multiples of
  // 4, run by Winograd F(4x4, 3x3) (fewer multiplications); the first layer's single channel stays im2col.
  const winogradApplies = ({ kernelSize, inChannels, outChannels }: ConvShape): boolean =>
    kernelSize === 3 && inChannels >= WINOGRAD_MIN_CHANNELS && outChannels >= WINOGRAD_MIN_CHANNELS && inChannels % 4 === 0 && outChannels % 4 === 0;

  // Winograd convolutions: each thread transforms and multiplies its images in its own V and M
  // buffer. `prepared`: the forward pass's filters already transformed, after the weight (conv2dPrepare).
  const winogradConvolution = (kind: Convolution, target: Float32Array, first: Float32Array, second: Float32Array, shape: ConvShape, prepared = false): void => {
    const { batch, height, width, inChannels, outChannels } = shape;
    // The input gradient is the forward convolution of the output gradient with flipped filters.
    const [inC, outC] = kind === 'input' ? [outChannels, inChannels] : [inChannels, outChannels];
    const transformedBytes = 36 * inC * outC * 4;
    const filters = winogradFilters.grow(wasm.winogradFiltersFloats(inC, outC) * 4);
    const zeros = winogradZeros.grow(Math.max(inC, outC) * 4, true);
    columns.reserve(wasm.winogradBufferFloats(height, width, inC, outC) * 4);
    if (kind === 'weight') partials.reserve(transformedBytes);
    const pt = ptr(target, true);
    const p1 = ptr(first, false);
    const p2 = ptr(second, false);
    if (kind === 'weight') {
      const used = splitter.byImages('winogradWeight', batch, (thread, start, end) => [partials.of(thread), p1, p2, start, end, height, width, inC, outC, columns.of(thread), scratchOf(thread), zeros]);
      wasm.winogradFilterGradient(pt, partials.of(0), partials.of(1) - partials.of(0), used, inC, outC);
    } else {
      const u = prepared ? p2 + 9 * inC * outC * 4 : filters;
      if (!prepared) wasm.winogradFilters(filters, p2, inC, outC, kind === 'input');
      splitter.byImages('winogradForward', batch, (thread, start, end) => [pt, p1, u, start, end, height, width, inC, outC, columns.of(thread), scratchOf(thread), zeros]);
    }
    staging.finish();
  };

  // im2col convolutions: each thread takes whole images, with its own column matrix.
  const convolution = (kind: Convolution, target: Float32Array, first: Float32Array, second: Float32Array, shape: ConvShape): void => {
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
      const used = splitter.byImages('conv2dBackwardWeight', batch, (thread, start, end) => [partials.of(thread), p1, p2, start, end, ...geometry, columns.of(thread), scratchOf(thread)]);
      for (let thread = 0; thread < used; thread++) wasm.addTransposed(pt, partials.of(thread), taps, outChannels);
    } else {
      const name = kind === 'forward' ? 'conv2dForward' : 'conv2dBackwardInput';
      splitter.byImages(name, batch, (thread, start, end) => [pt, p1, p2, start, end, ...geometry, columns.of(thread), scratchOf(thread)]);
    }
    staging.finish();
  };

  // Batch normalisation's float64 sums: each thread sums a range of rows into its own [2, channels]
  // doubles, added here in thread order. `mean` (float64) is the second pass's mean.
  const batchNormSums = (a: number, b: number, mean: number, rows: number, channels: number): Float64Array => {
    const parts = pool && rows >= 2 && rows * channels >= PARALLEL_MIN_FLOATS ? pool.threads : 1;
    const size = 2 * channels;
    partials.reserve(size * 8);
    const range = (thread: number) => [Math.floor((rows * thread) / parts), Math.floor((rows * (thread + 1)) / parts)];
    const args = (thread: number) => [partials.of(thread), a, b, mean, ...range(thread), channels] as [number, number, number, number, number, number, number];
    if (pool && parts > 1) {
      pool.run('batchNormPartialSums', (thread) => ({ args: args(thread), floatMask: 0 }), () => wasm.batchNormPartialSums(...args(0)));
    } else {
      wasm.batchNormPartialSums(...args(0));
    }
    const total = new Float64Array(size);
    for (let part = 0; part < parts; part++) {
      const sums = new Float64Array(memory.buffer, partials.of(part), size);
      for (let i = 0; i < size; i++) total[i] += sums[i];
    }
    return total;
  };

  return {
    matmul: (args) => gemm(args, args.k, 1, args.n, 1),
    matmulTransA: (args) => gemm(args, 1, args.m, args.n, 1),
    matmulTransB: (args) => gemm(args, args.k, 1, 1, args.k),
    conv2d: (args) => convolution('forward', args.out, args.inp, args.weight, args),
    // The bias and the ReLU after the convolution, as the generic kernels.
    conv2dPrepared({ out, inp, prepared, bias, relu, ...shape }) {
      const { batch, height, width, inChannels, outChannels, kernelSize } = shape;
      if (winogradApplies(shape)) winogradConvolution('forward', out, inp, prepared, shape, true);
      else convolution('forward', out, inp, prepared.subarray(0, kernelSize * kernelSize * inChannels * outChannels), shape);
      generic.addBias({ out, bias, rows: batch * height * width, cols: outChannels });
      if (relu) generic.relu({ out, inp: out, n: batch * height * width * outChannels });
    },
    conv2dBackwardInput: (args) => convolution('input', args.dinp, args.dout, args.weight, args),
    conv2dBackwardWeight: (args) => convolution('weight', args.dweight, args.inp, args.dout, args),

    // The dataset lies outside the memory: JavaScript copies the batch's rows of bytes in (a
    // quarter of what floats would be), and the module scales them.
    gatherPixels({ out, pixels, indices, start, count, rowLength }) {
      const size = count * rowLength;
      const stage = pixelStage.grow(size);
      const bytes = arena.bytes();
      for (let b = 0; b < count; b++) {
        const row = indices[start + b] * rowLength;
        bytes.set(pixels.subarray(row, row + rowLength), stage + b * rowLength);
      }
      wasm.scalePixels(ptr(out, true), stage, size);
      staging.finish();
    },

    // The bias corrections in float64 once, then the update split like an elementwise kernel
    // (ranges at multiples of 4 floats take the same vector code as one call: the same result).
    adamStep({ param, grad, m, v, n, learningRate, beta1, beta2, epsilon, weightDecay, step }) {
      const raw = [ptr(param, true), ptr(grad, false), ptr(m, true), ptr(v, true), n, learningRate / (1 - beta1 ** step), beta1, beta2, epsilon, weightDecay, 1 - beta2 ** step];
      splitter.call('adamUpdate', ADAM_ARGS, raw, ADAM_SPLIT);
      staging.finish();
    },

    // Two passes over the rows: the means, then the squared deviations from them (not E[x²] -
    // E[x]², which cancels badly).
    batchNormStatistics({ mean, variance, inp, rows, channels }) {
      const pi = ptr(inp, false);
      const sums = batchNormSums(pi, 0, 0, rows, channels);
      const averagesAt = means.grow(channels * 8);
      const averages = new Float64Array(memory.buffer, averagesAt, channels);
      for (let c = 0; c < channels; c++) averages[c] = sums[c] / rows;
      const squares = batchNormSums(pi, 0, averagesAt, rows, channels);
      for (let c = 0; c < channels; c++) {
        mean[c] = averages[c];
        variance[c] = squares[channels + c] / rows;
      }
      staging.finish();
    },

    batchNormBackwardSums({ sumDout, sumDoutNormalized, dout, normalized, rows, channels }) {
      const sums = batchNormSums(ptr(normalized, false), ptr(dout, false), 0, rows, channels);
      for (let c = 0; c < channels; c++) {
        sumDout[c] = sums[c];
        sumDoutNormalized[c] = sums[channels + c];
      }
      staging.finish();
    },
  };
}
