/** Names of the kernel backends: `js`, the plain TypeScript reference; `wasm`, WebAssembly SIMD; `native`, C over OpenBLAS. */
export type BackendName = 'js' | 'wasm' | 'native';

/** Hyperparameters of one SGD step (PyTorch's convention for momentum and Nesterov). */
export interface SgdHyper {
  learningRate: number;
  /** 0 turns momentum off. */
  momentum: number;
  nesterov: boolean;
  /** L2 penalty coefficient: `weightDecay * param` is added to the gradient. */
  weightDecay: number;
}

/** Hyperparameters of one Adam step. */
export interface AdamHyper {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** L2 penalty coefficient: `weightDecay * param` is added to the gradient. */
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
}

/**
 * Geometry of a convolution over NHWC tensors (channels last): input [batch, height, width,
 * inChannels], weight [kernelSize, kernelSize, inChannels, outChannels], output [batch, height,
 * width, outChannels]. Stride 1 and "same" zero padding of (kernelSize - 1) / 2 on each side.
 */
export interface ConvShape {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  /** Odd: 3 for 3x3. */
  kernelSize: number;
}

/**
 * The numeric kernels every layer, loss and optimiser runs on. Buffers are row-major
 * Float32Arrays obtained from `allocate`, so a backend with memory of its own (WebAssembly)
 * can place them there. Each kernel writes its first argument; sizes are passed explicitly
 * and a buffer may be longer than the kernel uses.
 *
 * Parameter gradients accumulate (`+=`, so one `zero` per step clears them); everything
 * else overwrites its output unless a flag says otherwise.
 */
export interface Kernels {
  readonly name: BackendName;
  /** What runs, for messages: e.g. `wasm (relaxed SIMD, 2 threads)`. */
  readonly description: string;

  /** A zero-filled buffer of `length` floats that every kernel of this backend accepts. */
  allocate(length: number): Float32Array;

  /** c[m,n] = a[m,k] · b[k,n]; adds to c when `accumulate`. Forward pass of a dense layer. */
  matmul(c: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number, accumulate: boolean): void;

  /** c[m,n] = a[k,m]ᵀ · b[k,n]; adds to c when `accumulate`. Weight gradient: dW = xᵀ · dy. */
  matmulTransA(c: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number, accumulate: boolean): void;

  /** c[m,n] = a[m,k] · b[n,k]ᵀ; adds to c when `accumulate`. Input gradient: dx = dy · Wᵀ. */
  matmulTransB(c: Float32Array, a: Float32Array, b: Float32Array, m: number, k: number, n: number, accumulate: boolean): void;

  /** out[r,c] += bias[c] for r < rows, c < cols. */
  addBias(out: Float32Array, bias: Float32Array, rows: number, cols: number): void;

  /** dbias[c] += Σ_r dout[r,c]: the bias gradient. */
  sumRows(dbias: Float32Array, dout: Float32Array, rows: number, cols: number): void;

  /** out[i] = max(inp[i], 0) for i < n. */
  relu(out: Float32Array, inp: Float32Array, n: number): void;

  /** dinp[i] = out[i] > 0 ? dout[i] : 0, where out is the ReLU's output. */
  reluBackward(dinp: Float32Array, dout: Float32Array, out: Float32Array, n: number): void;

  /**
   * out[b, j] = pixels[indices[start + b] · rowLength + j] / 255 (float division: the float
   * nearest to each pixel's fraction) for b < count, j < rowLength: a batch of images assembled
   * from a dataset's bytes (`pixels` need not come from the backend).
   */
  gatherPixels(out: Float32Array, pixels: Uint8Array, indices: Int32Array, start: number, count: number, rowLength: number): void;

  /**
   * Dropout's mask, drawn inside the kernel: mask[i] = scale when draw(i) < threshold, else 0, for
   * i < n. The 16-bit draws come from a counter-based generator keyed by (key0, key1): word j =
   * dropoutWord(j, key0, key1) (see js.ts); each block of 8 elements takes the low halves of 4
   * words, then their high halves: draw(8b + r) = low half of word 4b + r for r < 4, the high
   * half of word 4b + r - 4 for r >= 4. Every backend gives the same mask for the same keys.
   */
  dropoutMask(mask: Float32Array, n: number, threshold: number, scale: number, key0: number, key1: number): void;

  /** out[i] = 0 for i < n: clears the parameter gradients before each step. */
  zero(out: Float32Array, n: number): void;

  /** out[i] = a[i] * b[i] for i < n (dropout's mask, forward and backward). */
  multiply(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;

  /**
   * probs[r,:] = softmax(logits[r,:]) (max-subtracted for stability); returns the mean over
   * the rows of -log probs[r, labels[r]].
   */
  softmaxCrossEntropy(probs: Float32Array, logits: Float32Array, labels: Uint8Array, rows: number, cols: number): number;

  /** dlogits[r,c] = (probs[r,c] - [c == labels[r]]) / rows: the gradient of the mean loss. */
  softmaxCrossEntropyBackward(dlogits: Float32Array, probs: Float32Array, labels: Uint8Array, rows: number, cols: number): void;

  /** out = conv(inp, weight), no bias: out[b,y,x,o] = Σ_{dy,dx,c} inp[b, y+dy-p, x+dx-p, c] · weight[dy,dx,c,o]. */
  conv2d(out: Float32Array, inp: Float32Array, weight: Float32Array, shape: ConvShape): void;

  /** dinp = the input gradient of conv2d for output gradient dout (overwrites dinp). */
  conv2dBackwardInput(dinp: Float32Array, dout: Float32Array, weight: Float32Array, shape: ConvShape): void;

  /** dweight += the weight gradient of conv2d for input inp and output gradient dout. */
  conv2dBackwardWeight(dweight: Float32Array, inp: Float32Array, dout: Float32Array, shape: ConvShape): void;

  /**
   * 2x2 max pooling, stride 2, NHWC: out[b, y, x, c] = max of inp[b, 2y..2y+1, 2x..2x+1, c];
   * an odd last row or column is dropped (output height = floor(height / 2)).
   */
  maxPool2x2(out: Float32Array, inp: Float32Array, batch: number, height: number, width: number, channels: number): void;

  /**
   * Routes each output gradient to the first element of its window equal to the output (the
   * forward pass's maximum); every other element of dinp is zero (overwrites dinp).
   */
  maxPool2x2Backward(
    dinp: Float32Array, dout: Float32Array, inp: Float32Array, out: Float32Array,
    batch: number, height: number, width: number, channels: number,
  ): void;

  /** One SGD step on n parameters; `velocity` holds the momentum buffer. */
  sgdStep(param: Float32Array, grad: Float32Array, velocity: Float32Array, n: number, hyper: SgdHyper): void;

  /** One Adam step on n parameters; `m` and `v` hold the moment estimates. */
  adamStep(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number, hyper: AdamHyper): void;
}
