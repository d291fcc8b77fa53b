/**
 * The WebGPU backend's custom kernels (spec.ts: webgpu: 'custom'): the matrix products and
 * convolutions as tiled products (raw.ts), split over their depth where their output has too few
 * tiles to occupy a GPU; the column sums of the bias gradient and batch normalisation in two
 * passes; gathering a batch's pixels on the host (a quarter of the floats' bytes to upload);
 * Adam with its bias corrections in float64 on the host.
 */
import type { KernelsOver, WebGpuCustomKernel } from '../types.ts';
import type { Engine, GpuTensor } from './engine.ts';
import { PROGRAMS } from './programs.ts';
import type { Program } from './wgsl.ts';
import { COLUMN_CHUNK, DEPTH, RAW, TILE, dimensionsOf, type ProductStyle } from './raw.ts';

export type WebGpuCustomKernels = Pick<KernelsOver<GpuTensor>, WebGpuCustomKernel>;

/** A product is split over its depth when it has fewer output tiles than this... */
const SPLIT_BELOW_TILES = 64;
/** ...into parts of at least this depth... */
const MIN_SPLIT_DEPTH = 256;
/** ...and at most this many parts. */
const MAX_SPLITS = 64;

/**
 * The depth of each part of a product of m x n outputs and depth k: the whole depth, or a
 * multiple of DEPTH that gives enough parts to fill about 2 x SPLIT_BELOW_TILES workgroups. A
 * function of the shape alone, so that a run repeats exactly.
 */
export function splitDepth(m: number, n: number, k: number): number {
  const tiles = Math.ceil(m / TILE) * Math.ceil(n / TILE);
  if (tiles >= SPLIT_BELOW_TILES || k < 2 * MIN_SPLIT_DEPTH) return Math.max(DEPTH, Math.ceil(k / DEPTH) * DEPTH);
  const splits = Math.min(MAX_SPLITS, Math.ceil((2 * SPLIT_BELOW_TILES) / tiles), Math.floor(k / MIN_SPLIT_DEPTH));
  return Math.ceil(k / splits / DEPTH) * DEPTH;
}

export function customKernels(engine: Engine, style: ProductStyle): WebGpuCustomKernels {
  const gemm = RAW.gemm(style);
  const conv = RAW.conv(style);
  // p / 255 for every byte value, rounded once here (a GPU's division need not be exact).
  const pixelTable = engine.allocate(256);
  engine.write(pixelTable, Float32Array.from({ length: 256 }, (_, p) => p / 255));

  /**
   * Runs a tiled product (raw.ts's gemm or conv) into `target` [m, n]: in one part, or split
   * into partial products summed in order into the target.
   */
  const product = (program: Program, target: GpuTensor, named: Record<string, unknown>, accumulate: boolean): void => {
    const [m, n, k] = dimensionsOf(named as Record<string, number>);
    if (m === 0 || n === 0) return;
    const depth = splitDepth(m, n, k);
    const splits = Math.max(1, Math.ceil(k / depth));
    if (splits === 1) {
      engine.dispatch(program, { ...named, out: target, splitDepth: depth, splits, accumulate });
      return;
    }
    const partials = engine.allocate(splits * m * n, false);
    engine.dispatch(program, { ...named, out: partials, splitDepth: depth, splits, accumulate: false });
    engine.dispatch(RAW.sumSplits, { c: target, partials, size: m * n, splits, accumulate });
    engine.release(partials);
  };

  const convolution = (direction: 0 | 1 | 2, target: GpuTensor, first: GpuTensor, second: GpuTensor, shape: { batch: number; height: number; width: number; inChannels: number; outChannels: number; kernelSize: number }, accumulate: boolean) =>
    product(conv, target, { first, second, ...shape, direction }, accumulate);

  /** Column sums of a [rows, cols] tensor: the first pass into partials, the second into the results. */
  const columnSums = (mode: 0 | 1 | 2, a: GpuTensor, b: GpuTensor, mean: GpuTensor, rows: number, cols: number, first: GpuTensor, second: GpuTensor, totalsMode: 0 | 1 | 2): void => {
    if (cols === 0) return;
    const chunks = Math.max(1, Math.ceil(rows / COLUMN_CHUNK));
    const partials = engine.allocate(chunks * 2 * cols, false);
    engine.dispatch(RAW.columnPartials, { partials, a, b, mean, rows, cols, mode });
    engine.dispatch(RAW.columnTotals, { first, second, partials, chunks, cols, rows, mode: totalsMode });
    engine.release(partials);
  };

  return {
    // A(i, p) = a[i·rsA + p·csA], B(p, j) = b[p·rsB + j·csB], as the WebAssembly backend's gemm.
    matmul: ({ c, a, b, m, k, n, accumulate }) => product(gemm, c, { a, b, m, n, k, rsA: k, csA: 1, rsB: n, csB: 1 }, accumulate),
    matmulTransA: ({ c, a, b, m, k, n, accumulate }) => product(gemm, c, { a, b, m, n, k, rsA: 1, csA: m, rsB: n, csB: 1 }, accumulate),
    matmulTransB: ({ c, a, b, m, k, n, accumulate }) => product(gemm, c, { a, b, m, n, k, rsA: k, csA: 1, rsB: 1, csB: k }, accumulate),
    conv2d: ({ out, inp, weight, ...shape }) => convolution(0, out, inp, weight, shape, false),
    // The weight comes first in `prepared`: the same shader reads it there; then the bias and the ReLU as their own programs.
    conv2dPrepared({ out, inp, prepared, bias, relu, ...shape }) {
      convolution(0, out, inp, prepared, shape, false);
      const rows = shape.batch * shape.height * shape.width;
      engine.dispatch(PROGRAMS.addBias, { out, bias, rows, cols: shape.outChannels });
      if (relu) engine.dispatch(PROGRAMS.relu, { out, inp: out, n: rows * shape.outChannels });
    },
    conv2dBackwardInput: ({ dinp, dout, weight, ...shape }) => convolution(1, dinp, dout, weight, shape, false),
    conv2dBackwardWeight: ({ dweight, inp, dout, ...shape }) => convolution(2, dweight, inp, dout, shape, true),

    sumRows: ({ dbias, dout, rows, cols }) => columnSums(0, dout, dout, dout, rows, cols, dbias, dbias, 0),
    // Two passes, as the CPU backends: the means, then the squared deviations from them.
    batchNormStatistics({ mean, variance, inp, rows, channels }) {
      columnSums(0, inp, inp, inp, rows, channels, mean, mean, 1);
      columnSums(1, inp, inp, mean, rows, channels, variance, variance, 1);
    },
    batchNormBackwardSums: ({ sumDout, sumDoutNormalized, dout, normalized, rows, channels }) => columnSums(2, dout, normalized, dout, rows, channels, sumDout, sumDoutNormalized, 2),

    // The batch's rows of bytes gathered here, uploaded with the call, scaled there.
    gatherPixels({ out, pixels, indices, start, count, rowLength }) {
      const bytes = new Uint8Array(count * rowLength);
      for (let b = 0; b < count; b++) {
        const row = indices[start + b] * rowLength;
        bytes.set(pixels.subarray(row, row + rowLength), b * rowLength);
      }
      engine.dispatch(RAW.scalePixels, { out, table: pixelTable, pixels: bytes, n: count * rowLength });
    },

    adamStep: ({ param, grad, m, v, n, learningRate, beta1, beta2, epsilon, weightDecay, step }) =>
      engine.dispatch(RAW.adamUpdate, { param, grad, m, v, n, stepSize: learningRate / (1 - beta1 ** step), beta1, beta2, epsilon, weightDecay, correction2: 1 - beta2 ** step }),
  };
}
