/**
 * Every kernel, declared once: its name, its arguments (by name, in order, with their types),
 * its result, and how the WebAssembly backend splits it over threads. From this table come the
 * `Kernels` interface that layers call (./types.ts), the exports that the WebAssembly module
 * must have and the functions the native addon must implement: scripts/generate-kernels.ts
 * writes the AssemblyScript export list, the C prototypes (kernels.h) and the Node-API
 * bindings from it at build time, so a kernel whose implementation does not match its
 * declaration fails to compile.
 *
 * Adding a kernel: one entry here, then its implementation in src/kernels/js.ts (the
 * reference), in src/kernels/wasm/assembly/ and in native/ (named fm_<snake_case name>), or
 * `reference` for those two where the work is per channel or per row and the reference is fast
 * enough (the CPU backends' arrays are the reference's).
 *
 * Arrays are row-major typed arrays from the backend's `allocate` (or any typed array of the
 * type, which the WebAssembly backend copies in and out). A kernel writes only the arrays typed
 * `out`; parameter gradients accumulate (`+=`), everything else is overwritten.
 */

/**
 * An argument's type. `floats` a Float32Array the kernel reads, `floats out` one it writes (and
 * may read); `bytes` a Uint8Array; `ints` an Int32Array (`ints counted`: the native addon also
 * gets its length); `int` a 32-bit integer, `uint` an unsigned one, `float` a number the fast
 * backends round to float32, `bool` a boolean; `ptr` (the module's own functions) a byte offset
 * into the WebAssembly memory.
 */
export type ArgType = 'floats' | 'floats out' | 'bytes' | 'ints' | 'ints counted' | 'int' | 'uint' | 'float' | 'bool' | 'ptr';

/** A stride term: a number, an integer argument, or half of one (rounded down). */
export type StrideTerm = number | string | { half: string };

/**
 * How the WebAssembly backend splits a kernel over its threads: the integer argument `over`
 * counts items; thread t takes items [start, end), with `over` set to end - start and each
 * array in `stride` advanced by start times its stride (a product of terms, in elements).
 * Arrays not in `stride` are shared whole. With `reduce`, the named array is summed into: the
 * calling thread sums into it, each other thread into a zeroed buffer of its own of
 * `reduceSize` elements, added in thread order after (so a run repeats exactly). A split
 * kernel computes each item from that item's data alone: `over` is a count, not a value the
 * formula may use (a kernel that needs the whole count takes it as a factor computed outside).
 */
export interface Split {
  over: string;
  stride: Record<string, StrideTerm[]>;
  /** Range boundaries are multiples of this many items (4: whole SIMD vectors). */
  align?: number;
  reduce?: string;
  reduceSize?: StrideTerm[];
}

export interface KernelSpec {
  /** `name: type, ...` in call order (see ArgType). */
  args: string;
  /** `status`: the native function returns 0 when out of memory. Kernels return nothing else: a GPU could not return it without waiting. */
  result?: 'status';
  /**
   * WebAssembly: the module exports the kernel under its name with these arguments, run on the
   * calling thread, or split over the threads as given; `custom`: backend.ts implements it over
   * the module's raw functions (WASM_RAW); `reference`: the reference (js.ts) runs on the
   * backend's arrays.
   */
  wasm: 'direct' | Split | 'custom' | 'reference';
  /** Native: the addon exports it and native/ implements fm_<name>; `custom`: node.ts implements it over NATIVE_RAW; `reference`: js.ts's. */
  native: 'direct' | 'custom' | 'reference';
  /**
   * WebGPU: `direct`, one compute shader over the declared arguments (webgpu/programs.ts, its
   * bindings generated from the declaration); `custom`, several dispatches or work on the host
   * first (webgpu/custom.ts, over the programs of webgpu/raw.ts).
   */
  webgpu: 'direct' | 'custom';
}

/** Channels in and out from which a 3x3 convolution is worth doing by Winograd's transform (the native and WebAssembly backends do it from there). */
export const WINOGRAD_MIN_CHANNELS = 8;

/** Whether conv2dPrepare writes the Winograd filter transform after the weight. */
export const hasWinogradFilters = (inChannels: number, outChannels: number, kernelSize: number): boolean =>
  kernelSize === 3 && inChannels >= WINOGRAD_MIN_CHANNELS && outChannels >= WINOGRAD_MIN_CHANNELS;

/** The length of conv2dPrepare's `prepared`: the weight, and the Winograd filter transform where there is one. */
export const preparedConv2dFloats = (inChannels: number, outChannels: number, kernelSize: number): number =>
  (kernelSize * kernelSize + (hasWinogradFilters(inChannels, outChannels, kernelSize) ? 36 : 0)) * inChannels * outChannels;

const elementwise = (over: string, arrays: string[]): Split => ({ over, stride: Object.fromEntries(arrays.map((name) => [name, [1]])), align: 4 });
/** A convolution's geometry: NHWC images [batch, height, width, channels], square kernels. */
const CONV = 'batch: int, height: int, width: int, inChannels: int, outChannels: int, kernelSize: int';

export const KERNELS = {
  /** c[m,n] = a[m,k] · b[k,n]; adds to c when `accumulate`. Forward pass of a dense layer. */
  matmul: { args: 'c: floats out, a: floats, b: floats, m: int, k: int, n: int, accumulate: bool', wasm: 'custom', native: 'direct', webgpu: 'custom' },
  /** c[m,n] = a[k,m]ᵀ · b[k,n]; adds to c when `accumulate`. Weight gradient: dW = xᵀ · dy. */
  matmulTransA: { args: 'c: floats out, a: floats, b: floats, m: int, k: int, n: int, accumulate: bool', wasm: 'custom', native: 'direct', webgpu: 'custom' },
  /** c[m,n] = a[m,k] · b[n,k]ᵀ; adds to c when `accumulate`. Input gradient: dx = dy · Wᵀ. */
  matmulTransB: { args: 'c: floats out, a: floats, b: floats, m: int, k: int, n: int, accumulate: bool', wasm: 'custom', native: 'direct', webgpu: 'custom' },

  /** out[r,c] += bias[c] for r < rows, c < cols. */
  addBias: { args: 'out: floats out, bias: floats, rows: int, cols: int', wasm: { over: 'rows', stride: { out: ['cols'] } }, native: 'direct', webgpu: 'direct' },
  /** dbias[c] += Σ_r dout[r,c]: the bias gradient. */
  sumRows: {
    args: 'dbias: floats out, dout: floats, rows: int, cols: int',
    wasm: { over: 'rows', stride: { dout: ['cols'] }, reduce: 'dbias', reduceSize: ['cols'] },
    native: 'direct',
    webgpu: 'custom',
  },
  /** out[i] = max(inp[i], 0) for i < n. */
  relu: { args: 'out: floats out, inp: floats, n: int', wasm: elementwise('n', ['out', 'inp']), native: 'direct', webgpu: 'direct' },
  /** dinp[i] = out[i] > 0 ? dout[i] : 0, where out is the ReLU's output. */
  reluBackward: { args: 'dinp: floats out, dout: floats, out: floats, n: int', wasm: elementwise('n', ['dinp', 'dout', 'out']), native: 'direct', webgpu: 'direct' },
  /** out[i] = a[i] * b[i] for i < n (dropout's mask, forward and backward). */
  multiply: { args: 'out: floats out, a: floats, b: floats, n: int', wasm: elementwise('n', ['out', 'a', 'b']), native: 'direct', webgpu: 'direct' },
  /** average[i] = decay · average[i] + (1 - decay) · values[i] for i < n: an exponential moving average of the weights. */
  emaUpdate: { args: 'average: floats out, values: floats, n: int, decay: float', wasm: elementwise('n', ['average', 'values']), native: 'direct', webgpu: 'direct' },
  /** out[i] = 0 for i < n: clears the parameter gradients before each step. */
  zero: { args: 'out: floats out, n: int', wasm: 'direct', native: 'direct', webgpu: 'direct' },
  /** out[i] = inp[i] for i < n (out and inp do not overlap): flattening, dropout in evaluation, copies of the weights. */
  copy: { args: 'out: floats out, inp: floats, n: int', wasm: 'reference', native: 'reference', webgpu: 'direct' },
  /** out[i] = (a[i] + b[i]) / 2 for i < n: the mean of an image's and its mirror image's probabilities or features. */
  average: { args: 'out: floats out, a: floats, b: floats, n: int', wasm: 'reference', native: 'reference', webgpu: 'direct' },
  /** out[r] = the index of the first maximum of inp[r, 0..cols), as a float, for r < rows: the predicted classes. */
  argmaxRows: { args: 'out: floats out, inp: floats, rows: int, cols: int', wasm: 'reference', native: 'reference', webgpu: 'direct' },
  /** out[b, y, x, c] = inp[b, y, width - 1 - x, c] (NHWC; out and inp do not overlap): each image mirrored left to right. */
  mirrorImages: { args: 'out: floats out, inp: floats, batch: int, height: int, width: int, channels: int', wasm: 'reference', native: 'reference', webgpu: 'direct' },

  /**
   * out[b, j] = pixels[indices[start + b] · rowLength + j] / 255 (float division: the float
   * nearest to each pixel's fraction) for b < count, j < rowLength: a batch of images assembled
   * from a dataset's bytes (`pixels` need not come from the backend).
   */
  gatherPixels: {
    args: 'out: floats out, pixels: bytes, indices: ints counted, start: int, count: int, rowLength: int',
    wasm: 'custom',
    native: 'direct',
    webgpu: 'custom',
  },
  /**
   * Dropout's mask, drawn inside the kernel: mask[i] = scale when draw(i) < threshold, else 0, for
   * i < n. The 16-bit draws come from a counter-based generator keyed by (key0, key1): word j =
   * dropoutWord(j, key0, key1) (see js.ts); each block of 8 elements takes the low halves of 4
   * words, then their high halves: draw(8b + r) = low half of word 4b + r for r < 4, the high
   * half of word 4b + r - 4 for r >= 4. Every backend gives the same mask for the same keys.
   */
  dropoutMask: { args: 'mask: floats out, n: int, threshold: int, scale: float, key0: uint, key1: uint', wasm: 'direct', native: 'direct', webgpu: 'direct' },

  /**
   * probs[r,:] = softmax(logits[r,:]) (max-subtracted for stability) and losses[r] = the
   * cross-entropy of row r against its label (a class index, 0 <= labels[r] < cols) smoothed by
   * `smoothing` (ε): -(1 - ε) log probs[r, labels[r]] - ε / cols Σ_c log probs[r, c] (ε = 0:
   * -log probs[r, labels[r]]). The CPU backends compute each row's loss in float64 from the
   * logits (exact where a probability underflows) and round it once.
   */
  softmaxCrossEntropy: {
    args: 'probs: floats out, losses: floats out, logits: floats, labels: ints, rows: int, cols: int, smoothing: float',
    wasm: 'direct',
    native: 'direct',
    webgpu: 'direct',
  },
  /** dlogits[r,c] = (probs[r,c] - q[r,c]) / rows, q = (1 - ε)·onehot(labels[r]) + ε / cols: the gradient of the mean loss. */
  softmaxCrossEntropyBackward: { args: 'dlogits: floats out, probs: floats, labels: ints, rows: int, cols: int, smoothing: float', wasm: 'direct', native: 'direct', webgpu: 'direct' },

  /**
   * out = conv(inp, weight), no bias, over NHWC images (channels last): inp [batch, height, width,
   * inChannels], weight [kernelSize, kernelSize, inChannels, outChannels], out [batch, height,
   * width, outChannels]; stride 1, "same" zero padding of (kernelSize - 1) / 2 (kernelSize odd):
   * out[b,y,x,o] = Σ_{dy,dx,c} inp[b, y+dy-p, x+dx-p, c] · weight[dy,dx,c,o].
   */
  conv2d: { args: `out: floats out, inp: floats, weight: floats, ${CONV}`, result: 'status', wasm: 'custom', native: 'direct', webgpu: 'custom' },
  /**
   * prepared = the weight of a conv2d whose weights will not change (a model loaded to classify)
   * in the form conv2dPrepared reads: the weight [kernelSize, kernelSize, inChannels,
   * outChannels] as it is, then, where `hasWinogradFilters`, its Winograd F(4x4, 3x3) filter
   * transform U[36, inChannels, outChannels], U[6i + j, c, o] = (G g Gᵀ)[i, j] for the 3x3 filter
   * g = weight[·, ·, c, o], G = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1].
   * `preparedConv2dFloats` floats. The fast backends then skip the transform on every call.
   */
  conv2dPrepare: { args: 'prepared: floats out, weight: floats, inChannels: int, outChannels: int, kernelSize: int', wasm: 'reference', native: 'direct', webgpu: 'direct' },
  /**
   * out = conv2d(inp, weight) + bias (per output channel), then max(·, 0) where `relu` is 1: the
   * inference forward pass of a convolution and its ReLU in one kernel (the fast backends add
   * and clamp each output as they write it), for the weight that conv2dPrepare prepared into
   * `prepared`. The same operations in the same order as conv2d, addBias and relu.
   */
  conv2dPrepared: { args: `out: floats out, inp: floats, prepared: floats, bias: floats, ${CONV}, relu: int`, result: 'status', wasm: 'custom', native: 'direct', webgpu: 'custom' },
  /** dinp = the input gradient of conv2d for output gradient dout (overwrites dinp). */
  conv2dBackwardInput: { args: `dinp: floats out, dout: floats, weight: floats, ${CONV}`, result: 'status', wasm: 'custom', native: 'direct', webgpu: 'custom' },
  /** dweight += the weight gradient of conv2d for input inp and output gradient dout. */
  conv2dBackwardWeight: { args: `dweight: floats out, inp: floats, dout: floats, ${CONV}`, result: 'status', wasm: 'custom', native: 'direct', webgpu: 'custom' },

  /**
   * 2x2 max pooling, stride 2, NHWC: out[b, y, x, c] = max of inp[b, 2y..2y+1, 2x..2x+1, c];
   * an odd last row or column is dropped (output height = floor(height / 2)).
   */
  maxPool2x2: {
    args: 'out: floats out, inp: floats, batch: int, height: int, width: int, channels: int',
    wasm: { over: 'batch', stride: { out: [{ half: 'height' }, { half: 'width' }, 'channels'], inp: ['height', 'width', 'channels'] } },
    native: 'direct',
    webgpu: 'direct',
  },
  /**
   * Routes each output gradient to the first element of its window equal to the output (the
   * forward pass's maximum); every other element of dinp is zero (overwrites dinp).
   */
  maxPool2x2Backward: {
    args: 'dinp: floats out, dout: floats, inp: floats, out: floats, batch: int, height: int, width: int, channels: int',
    wasm: {
      over: 'batch',
      stride: { dinp: ['height', 'width', 'channels'], dout: [{ half: 'height' }, { half: 'width' }, 'channels'], inp: ['height', 'width', 'channels'], out: [{ half: 'height' }, { half: 'width' }, 'channels'] },
    },
    native: 'direct',
    webgpu: 'direct',
  },

  /**
   * Batch normalisation's statistics over the rows of inp [rows, channels] (every position of a
   * batch of images is a row): mean[c] and the biased variance[c], summed in float64.
   */
  batchNormStatistics: { args: 'mean: floats out, variance: floats out, inp: floats, rows: int, channels: int', wasm: 'custom', native: 'direct', webgpu: 'custom' },
  /** normalized[r,c] = (inp[r,c] - mean[c]) · invStd[c]; out[r,c] = gamma[c] · normalized[r,c] + beta[c]. */
  batchNormForward: {
    args: 'out: floats out, normalized: floats out, inp: floats, mean: floats, invStd: floats, gamma: floats, beta: floats, rows: int, channels: int',
    wasm: { over: 'rows', stride: { out: ['channels'], normalized: ['channels'], inp: ['channels'] } },
    native: 'direct',
    webgpu: 'direct',
  },
  /** sumDout[c] = Σ_r dout[r,c] and sumDoutNormalized[c] = Σ_r dout[r,c] · normalized[r,c], in float64 (overwritten). */
  batchNormBackwardSums: {
    args: 'sumDout: floats out, sumDoutNormalized: floats out, dout: floats, normalized: floats, rows: int, channels: int',
    wasm: 'custom',
    native: 'direct',
    webgpu: 'custom',
  },
  /**
   * The input gradient of batch normalisation in training mode, with per-channel factors the
   * layer computes from the sums: dinp[r,c] = doutScale[c] · dout[r,c] - offset[c] -
   * normalized[r,c] · normalizedScale[c] (doutScale = gamma · invStd, offset = doutScale ·
   * sumDout / rows, normalizedScale = doutScale · sumDoutNormalized / rows).
   */
  batchNormBackward: {
    args: 'dinp: floats out, dout: floats, normalized: floats, doutScale: floats, offset: floats, normalizedScale: floats, rows: int, channels: int',
    wasm: { over: 'rows', stride: { dinp: ['channels'], dout: ['channels'], normalized: ['channels'] } },
    native: 'direct',
    webgpu: 'direct',
  },
  /**
   * Batch normalisation and the ReLU after it in one pass (training): batchNormForward's
   * normalized, and out[r,c] = max(gamma[c] · normalized[r,c] + beta[c], 0), the bits of
   * batchNormForward then relu, without writing or reading the normalisation's own output.
   */
  batchNormReluForward: {
    args: 'out: floats out, normalized: floats out, inp: floats, mean: floats, invStd: floats, gamma: floats, beta: floats, rows: int, channels: int',
    wasm: { over: 'rows', stride: { out: ['channels'], normalized: ['channels'], inp: ['channels'] } },
    native: 'direct',
    webgpu: 'direct',
  },
  /**
   * Training, after batchNormStatistics: invStd[c] = 1 / sqrt(variance[c] + epsilon), and the
   * running averages move by `momentum` towards the batch's mean and its unbiased variance
   * (variance · rows / (rows - 1), as PyTorch keeps it).
   */
  batchNormUpdate: {
    args: 'invStd: floats out, runningMean: floats out, runningVar: floats out, mean: floats, variance: floats, rows: int, channels: int, momentum: float, epsilon: float',
    wasm: 'reference',
    native: 'reference',
    webgpu: 'direct',
  },
  /** Evaluation: scale[c] = gamma[c] / sqrt(runningVar[c] + epsilon), shift[c] = beta[c] - runningMean[c] · scale[c] (scale as stored). */
  batchNormScaleShift: {
    args: 'scale: floats out, shift: floats out, gamma: floats, beta: floats, runningMean: floats, runningVar: floats, channels: int, epsilon: float',
    wasm: 'reference',
    native: 'reference',
    webgpu: 'direct',
  },
  /**
   * The backward pass's per-channel factors from its sums (see batchNormBackward): with s =
   * gamma[c] · invStd[c] (unrounded on the CPU backends), doutScale[c] = s, offset[c] = s ·
   * sumDout[c] / rows, normalizedScale[c] = s · sumDoutNormalized[c] / rows.
   */
  batchNormBackwardFactors: {
    args: 'doutScale: floats out, offset: floats out, normalizedScale: floats out, sumDout: floats, sumDoutNormalized: floats, gamma: floats, invStd: floats, rows: int, channels: int',
    wasm: 'reference',
    native: 'reference',
    webgpu: 'direct',
  },
  /** out[r,c] = inp[r,c] · scale[c] + shift[c]: batch normalisation with fixed statistics (evaluation). */
  channelAffine: {
    args: 'out: floats out, inp: floats, scale: floats, shift: floats, rows: int, channels: int',
    wasm: { over: 'rows', stride: { out: ['channels'], inp: ['channels'] } },
    native: 'direct',
    webgpu: 'direct',
  },

  /** One SGD step on n parameters (PyTorch's momentum convention): g = grad + weightDecay · param; v = momentum · v + g; param -= learningRate · (nesterov ? g + momentum · v : v). */
  sgdStep: {
    args: 'param: floats out, grad: floats, velocity: floats out, n: int, learningRate: float, momentum: float, nesterov: bool, weightDecay: float',
    wasm: 'direct',
    native: 'direct',
    webgpu: 'direct',
  },
  /**
   * One Adam step on n parameters with bias-corrected moments; `step` is 1-based. The L2 penalty
   * weightDecay · param is added to the gradient.
   */
  adamStep: {
    args: 'param: floats out, grad: floats, m: floats out, v: floats out, n: int, learningRate: float, beta1: float, beta2: float, epsilon: float, weightDecay: float, step: int',
    wasm: 'custom',
    native: 'custom',
    webgpu: 'custom',
  },
} as const satisfies Record<string, KernelSpec>;

/**
 * The WebAssembly module's functions that backend.ts's custom kernels call: the packed matrix
 * product over a row range, the convolutions over an image range, Winograd's transforms, Adam
 * with its bias corrections folded in (computed once in JavaScript), and batch normalisation's
 * float64 sums over a range of rows.
 */
export const WASM_RAW = {
  heapBase: { args: '', result: 'ptr' },
  gemmScratchFloats: { args: '', result: 'int' },
  gemm: {
    args: 'n: int, k: int, a: ptr, rsA: int, csA: int, b: ptr, rsB: int, csB: int, c: ptr, ldc: int, accumulate: bool, rowStart: int, rowEnd: int, scratch: ptr',
  },
  scalePixels: { args: 'out: ptr, bytes: ptr, n: int' },
  conv2dForward: { args: 'out: ptr, inp: ptr, weight: ptr, b0: int, b1: int, height: int, width: int, channels: int, filters: int, kernel: int, col: ptr, scratch: ptr' },
  conv2dBackwardInput: { args: 'dinp: ptr, dout: ptr, weight: ptr, b0: int, b1: int, height: int, width: int, channels: int, filters: int, kernel: int, col: ptr, scratch: ptr' },
  conv2dBackwardWeight: { args: 'dweightT: ptr, inp: ptr, dout: ptr, b0: int, b1: int, height: int, width: int, channels: int, filters: int, kernel: int, col: ptr, scratch: ptr' },
  addTransposed: { args: 'dst: ptr, src: ptr, rows: int, cols: int' },
  winogradBufferFloats: { args: 'height: int, width: int, inC: int, outC: int', result: 'int' },
  winogradFilters: { args: 'u: ptr, weight: ptr, inC: int, outC: int, flip: bool' },
  winogradFiltersFloats: { args: 'inC: int, outC: int', result: 'int' },
  winogradForward: { args: 'dst: ptr, src: ptr, u: ptr, b0: int, b1: int, height: int, width: int, inC: int, outC: int, buffer: ptr, scratch: ptr, zeros: ptr' },
  winogradWeight: { args: 'du: ptr, src: ptr, dout: ptr, b0: int, b1: int, height: int, width: int, inC: int, outC: int, buffer: ptr, scratch: ptr, zeros: ptr' },
  winogradFilterGradient: { args: 'dweight: ptr, du: ptr, partBytes: int, parts: int, inC: int, outC: int' },
  adamUpdate: {
    args: 'param: ptr, grad: ptr, m: ptr, v: ptr, n: int, stepSize: float, beta1: float, beta2: float, epsilon: float, weightDecay: float, correction2: float',
  },
  batchNormPartialSums: { args: 'sums: ptr, a: ptr, b: ptr, mean: ptr, rowStart: int, rowEnd: int, channels: int' },
} as const satisfies Record<string, RawSpec>;

/** The native addon's function behind its custom kernels: Adam with its bias corrections folded in. */
export const NATIVE_RAW = {
  adamUpdate: {
    args: 'param: floats out, grad: floats, m: floats out, v: floats out, n: int, stepSize: float, beta1: float, beta2: float, epsilon: float, weightDecay: float, correction2: float',
  },
} as const satisfies Record<string, RawSpec>;

/** A backend's own function: arguments as for kernels (pointers into the wasm memory are `int`). */
export interface RawSpec {
  /** `name: type, ...` in call order. */
  args: string;
  result?: 'int' | 'ptr' | 'number';
}

export type KernelName = keyof typeof KERNELS;

/** One argument of a declaration. */
export interface Arg {
  name: string;
  type: ArgType;
}

const ARG_TYPES: readonly ArgType[] = ['floats', 'floats out', 'bytes', 'ints', 'ints counted', 'int', 'uint', 'float', 'bool', 'ptr'];

/** The arguments of a declaration, in call order. */
export function parseArgs(args: string): Arg[] {
  if (args === '') return [];
  return args.split(', ').map((pair) => {
    const [name, type] = pair.split(': ');
    if (!ARG_TYPES.includes(type as ArgType)) throw new Error(`kernel argument "${pair}" has no known type`);
    return { name, type: type as ArgType };
  });
}
