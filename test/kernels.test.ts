import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsKernels, type Kernels } from '../src/kernels/index.ts';
import { loadNativeKernels, nativeBuildPresent } from '../src/kernels/native/node.ts';
import { loadWasmKernels } from '../src/kernels/wasm/node.ts';
import { maxRelativeError, randomArray, Rng } from './helpers/random.ts';

// Independent float64 definitions, written from the formulas, not from the kernels.
function matmulDefinition(a: Float32Array, b: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = sum;
    }
  }
  return c;
}

const SHAPES: [number, number, number][] = [
  [130, 257, 67],
  [9, 520, 600],
  [1, 1, 1],
  [3, 7, 5],
  [7, 1, 65],
  [65, 3, 7],
  [17, 33, 9],
  [64, 784, 10],
  // Thin and deep: the native backend splits it by k.
  [33, 701, 130],
  // Wider than the native product's column block (1,024).
  [3, 9, 1100],
];

// Every backend, and for wasm both builds (relaxed SIMD and plain SIMD) and both thread paths.
// The native backend where it was built (CI installs a C compiler, so it is there).
const backends: Kernels[] = [
  jsKernels,
  await loadWasmKernels({ threads: 1 }),
  await loadWasmKernels({ threads: 2 }),
  await loadWasmKernels({ threads: 2, relaxed: false }),
  ...(nativeBuildPresent() ? [loadNativeKernels({ threads: 2 })] : []),
];

for (const kernels of backends) {
  describe(`${kernels.description} kernels`, () => {
    test('the three matrix products match their definition, with and without accumulation', () => {
      const rng = Rng.fromSeed(1);
      for (const [m, k, n] of SHAPES) {
        for (const [transA, transB] of [[false, false], [true, false], [false, true]] as const) {
          const a = randomArray(rng, m * k);
          const b = randomArray(rng, k * n);
          // Some exact zeros, as ReLU outputs and background pixels have. The tolerance allows for
          // float32 rounding in sums of up to 784 terms.
          for (let i = 0; i < a.length; i += 3) a[i] = 0;
          const start = randomArray(rng, m * n);
          const c = kernels.allocate(m * n);
          const product = transA ? kernels.matmulTransA : transB ? kernels.matmulTransB : kernels.matmul;
          const expected = matmulDefinition(a, b, m, k, n, transA, transB);
          c.fill(123);
          product({ c, a, b, m, k, n, accumulate: false });
          assert.ok(maxRelativeError(c, expected) < 1e-4, `${m}x${k}x${n} transA=${transA} transB=${transB}`);
          c.set(start);
          product({ c, a, b, m, k, n, accumulate: true });
          assert.ok(maxRelativeError(c, expected.map((value, i) => value + start[i])) < 1e-4, `accumulate ${m}x${k}x${n}`);
        }
      }
    });

    test('bias, row sums, ReLU and elementwise product match their definition', () => {
      const rng = Rng.fromSeed(2);
      for (const [rows, cols] of [[1, 1], [3, 7], [65, 10]]) {
        const x = randomArray(rng, rows * cols);
        const bias = randomArray(rng, cols);
        const out = Float32Array.from(x);
        kernels.addBias({ out, bias, rows, cols });
        assert.deepEqual([...out], [...x].map((v, i) => Math.fround(v + bias[i % cols])));

        const dbias = Float32Array.from(bias);
        kernels.sumRows({ dbias, dout: x, rows, cols });
        const sums = [...bias].map((v, c) => v + x.filter((_, i) => i % cols === c).reduce((s, e) => s + e, 0));
        assert.ok(maxRelativeError(dbias, sums) < 1e-6);

        const relu = kernels.allocate(rows * cols);
        kernels.relu({ out: relu, inp: x, n: rows * cols });
        assert.deepEqual([...relu], [...x].map((v) => Math.max(v, 0)));
        const dout = randomArray(rng, rows * cols);
        const dinp = kernels.allocate(rows * cols);
        kernels.reluBackward({ dinp, dout, out: relu, n: rows * cols });
        assert.deepEqual([...dinp], [...dout].map((g, i) => (x[i] > 0 ? g : 0)));

        const product = kernels.allocate(rows * cols);
        kernels.multiply({ out: product, a: x, b: dout, n: rows * cols });
        assert.deepEqual([...product], [...x].map((v, i) => Math.fround(v * dout[i])));

        const zeroed = Float32Array.from(x);
        kernels.zero({ out: zeroed, n: rows * cols - 1 });
        assert.deepEqual([...zeroed], [...x].map((v, i) => (i < rows * cols - 1 ? 0 : v)));
      }
    });

    test("dropout masks are the reference's, draw for draw", () => {
      const rng = Rng.fromSeed(14);
      for (const n of [1, 5, 8, 13, 8192, 8203]) {
        for (const threshold of [1, 52429, 65536]) {
          const [key0, key1] = [rng.bits(), rng.bits()];
          const mask = kernels.allocate(n + 1).fill(7);
          const expected = new Float32Array(n + 1).fill(7);
          kernels.dropoutMask({ mask, n, threshold, scale: 65536 / threshold, key0, key1 });
          jsKernels.dropoutMask({ mask: expected, n, threshold, scale: 65536 / threshold, key0, key1 });
          assert.deepEqual(mask, expected, `n ${n}, threshold ${threshold}`);
        }
      }
    });

    test('gathering pixels scales the chosen rows of any byte array, in order', () => {
      const rng = Rng.fromSeed(13);
      for (const [rows, rowLength, count] of [[5, 3, 2], [300, 785, 64]]) {
        // Row 0 of the large case holds every byte value once.
        const pixels = Uint8Array.from({ length: rows * rowLength }, (_, i) => (i < 256 ? i : rng.int(256)));
        const indices = Int32Array.from({ length: count + 7 }, (_, i) => (i === 7 ? 0 : rng.int(rows)));
        const out = kernels.allocate(count * rowLength);
        kernels.gatherPixels({ out, pixels, indices, start: 7, count, rowLength });
        for (let b = 0; b < count; b++) {
          const row = indices[7 + b] * rowLength;
          const expected = Float32Array.from(pixels.subarray(row, row + rowLength), (p) => p / 255);
          assert.deepEqual(out.subarray(b * rowLength, (b + 1) * rowLength), expected, `row ${b}`);
        }
      }
    });

    test('batch normalisation kernels match the reference on odd shapes, large ones split between threads', () => {
      const rng = Rng.fromSeed(16);
      // [rows, channels]: a single element, odd sizes, more channels than the wasm kernels sum at a time, and enough rows to split.
      for (const [rows, channels] of [[1, 1], [7, 3], [33, 5], [5, 2051], [4099, 36]]) {
        const n = rows * channels;
        const inp = randomArray(rng, n);
        for (let i = 0; i < n; i++) inp[i] = 3 + 2 * inp[i];
        const [gamma, beta, invStd, scale, shift, givenMean, sums, sumsNormalized] = Array.from({ length: 8 }, () => randomArray(rng, channels));
        const [dout, x] = [randomArray(rng, n), randomArray(rng, n)];
        // Each kernel gets the same inputs on every backend (not another kernel's float32 rounding).
        const run = (k: Kernels) => {
          const [mean, variance, sumDout, sumDoutNormalized] = Array.from({ length: 4 }, () => k.allocate(channels));
          k.batchNormStatistics({ mean, variance, inp, rows, channels });
          const [out, normalized, dinp, affine] = Array.from({ length: 4 }, () => k.allocate(n));
          k.batchNormForward({ out, normalized, inp, mean: givenMean, invStd, gamma, beta, rows, channels });
          k.batchNormBackwardSums({ sumDout, sumDoutNormalized, dout, normalized: x, rows, channels });
          k.batchNormBackward({ dinp, dout, normalized: x, doutScale: scale, offset: sums, normalizedScale: sumsNormalized, rows, channels });
          k.channelAffine({ out: affine, inp, scale, shift, rows, channels });
          return { mean, variance, out, normalized, sumDout, sumDoutNormalized, dinp, affine };
        };
        const got = run(kernels);
        const expected = run(jsKernels);
        for (const [name, values] of Object.entries(got)) {
          assert.ok(maxRelativeError(values, expected[name as keyof typeof expected]) < 1e-5, `${name} of [${rows}, ${channels}]`);
        }
        // The statistics against float64 definitions.
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let r = 0; r < rows; r++) sum += inp[r * channels + c];
          const mean = sum / rows;
          let squares = 0;
          for (let r = 0; r < rows; r++) squares += (inp[r * channels + c] - mean) ** 2;
          assert.ok(Math.abs(got.mean[c] - mean) <= 1e-6 * Math.abs(mean) + 1e-7, `mean ${c} of [${rows}, ${channels}]`);
          assert.ok(Math.abs(got.variance[c] - squares / rows) <= 1e-6 * (squares / rows) + 1e-7, `variance ${c} of [${rows}, ${channels}]`);
        }
      }
    });

    test('batch normalisation fused with the ReLU after it gives the bits of the two run apart', () => {
      const rng = Rng.fromSeed(17);
      for (const [rows, channels] of [[1, 1], [7, 3], [33, 5], [5, 2051], [4099, 36]]) {
        const n = rows * channels;
        const inp = randomArray(rng, n);
        const [gamma, beta, invStd, mean] = Array.from({ length: 4 }, () => randomArray(rng, channels));
        // An exact zero and a NaN among the values the ReLU sees.
        beta[0] = 0;
        inp[0] = mean[0];
        if (n > 2) inp[1] = Number.NaN;
        const [normalized, bn, reluOut, normalizedFused, fusedOut] = Array.from({ length: 5 }, () => kernels.allocate(n));
        const args = { inp, mean, invStd, gamma, beta, rows, channels };
        kernels.batchNormForward({ ...args, out: bn, normalized });
        kernels.relu({ out: reluOut, inp: bn, n });
        kernels.batchNormReluForward({ ...args, out: fusedOut, normalized: normalizedFused });
        assert.deepEqual(fusedOut, reluOut, `output of [${rows}, ${channels}]`);
        assert.deepEqual(normalizedFused, normalized, `normalized of [${rows}, ${channels}]`);
        if (n > 10) assert.ok(reluOut.some((v) => v === 0) && reluOut.some((v) => v > 0), 'the ReLU passes some values and stops others');
      }
    });

    test('large arrays, which the threaded backends split between threads, give the reference results', () => {
      const rng = Rng.fromSeed(12);
      const [rows, cols] = [4099, 67];
      const n = rows * cols;
      const x = randomArray(rng, n);
      const dout = randomArray(rng, n);
      const bias = randomArray(rng, cols);
      const run = (k: Kernels) => {
        const biased = Float32Array.from(x);
        k.addBias({ out: biased, bias, rows, cols });
        const relu = k.allocate(n);
        k.relu({ out: relu, inp: x, n });
        const dinp = k.allocate(n);
        k.reluBackward({ dinp, dout, out: relu, n });
        const product = k.allocate(n);
        k.multiply({ out: product, a: x, b: dout, n });
        const zeroed = Float32Array.from(x);
        k.zero({ out: zeroed, n: n - 5 });
        const average = Float32Array.from(dout);
        k.emaUpdate({ average, values: x, n, decay: 0.99 });
        const [param, m, v] = [Float32Array.from(x), new Float32Array(n), new Float32Array(n)];
        k.adamStep({ param, grad: dout, m, v, n, learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.001, step: 1 });
        // 6 images of 28x28x32: pooling is split by image.
        const [B, H, W, C] = [6, 28, 28, 32];
        const images = x.subarray(0, B * H * W * C);
        const pooled = k.allocate(B * 14 * 14 * C);
        k.maxPool2x2({ out: pooled, inp: images, batch: B, height: H, width: W, channels: C });
        const dimages = k.allocate(B * H * W * C);
        k.maxPool2x2Backward({ dinp: dimages, dout: dout.subarray(0, pooled.length), inp: images, out: pooled, batch: B, height: H, width: W, channels: C });
        return { biased, relu, dinp, product, zeroed, average, param, m, v, pooled, dimages };
      };
      const got = run(kernels);
      const expected = run(jsKernels);
      for (const [name, values] of Object.entries(got)) {
        assert.ok(maxRelativeError(values, expected[name as keyof typeof expected]) < 1e-5, name);
      }
      // Column sums of 4,099 rows, against float64 sums: float32 sums in any order stay within 1e-4.
      const sums = Float32Array.from(bias);
      kernels.sumRows({ dbias: sums, dout: x, rows, cols });
      const exact = [...bias].map((b, c) => {
        let sum = b;
        for (let r = 0; r < rows; r++) sum += x[r * cols + c];
        return sum;
      });
      assert.ok(maxRelativeError(sums, exact) < 1e-4, 'sums');
      if (kernels.name === 'native') {
        // Each column summed over the rows in order, on one thread: the reference's bits.
        const reference = Float32Array.from(bias);
        jsKernels.sumRows({ dbias: reference, dout: x, rows, cols });
        assert.deepEqual(sums, reference, 'native column sums');
      }
    });

    test('softmax cross-entropy and its gradient, plain and with label smoothing, match their definition, and survive huge logits', () => {
      const rng = Rng.fromSeed(3);
      for (const smoothing of [0, 0.1]) {
        for (const [rows, cols] of [[1, 1], [3, 10], [65, 7]]) {
          const logits = randomArray(rng, rows * cols, 5);
          const labels = Uint8Array.from({ length: rows }, () => rng.int(cols));
          const probs = kernels.allocate(rows * cols);
          const loss = kernels.softmaxCrossEntropy({ probs, logits, labels, rows, cols, smoothing });
          // The smoothed target q = (1 - ε)·onehot + ε / cols; the loss is -Σ q log p.
          const target = (r: number, c: number) => (1 - smoothing) * (c === labels[r] ? 1 : 0) + smoothing / cols;
          let expectedLoss = 0;
          const expectedProbs: number[] = [];
          for (let r = 0; r < rows; r++) {
            const row = [...logits.subarray(r * cols, (r + 1) * cols)].map(Math.exp);
            const sum = row.reduce((a, b) => a + b, 0);
            expectedProbs.push(...row.map((e) => e / sum));
            for (let c = 0; c < cols; c++) expectedLoss -= (target(r, c) * Math.log(row[c] / sum)) / rows;
          }
          assert.ok(Math.abs(loss - expectedLoss) < 1e-5 * Math.max(1, expectedLoss), `loss, smoothing ${smoothing}`);
          assert.ok(maxRelativeError(probs, expectedProbs) < 1e-6);
          const dlogits = kernels.allocate(rows * cols);
          kernels.softmaxCrossEntropyBackward({ dlogits, probs, labels, rows, cols, smoothing });
          const expectedGrad = expectedProbs.map((p, i) => (p - target(Math.floor(i / cols), i % cols)) / rows);
          assert.ok(maxRelativeError(dlogits, expectedGrad) < 1e-5, `gradient, smoothing ${smoothing}`);
        }
      }
      const huge = Float32Array.from([1000, -1000, 0, 3e38]);
      const probs = kernels.allocate(4);
      const loss = kernels.softmaxCrossEntropy({ probs, logits: huge, labels: Uint8Array.from([1]), rows: 1, cols: 4, smoothing: 0 });
      assert.ok(Number.isFinite(loss) && loss > 1e38, `loss ${loss}`);
      assert.deepEqual([...probs], [0, 0, 0, 1]);
    });

    test('SGD (plain, momentum, Nesterov, weight decay) matches its definition over several steps', () => {
      const rng = Rng.fromSeed(4);
      for (const hyper of [
        { learningRate: 0.1, momentum: 0, nesterov: false, weightDecay: 0 },
        { learningRate: 0.05, momentum: 0.9, nesterov: false, weightDecay: 0.01 },
        { learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0 },
      ]) {
        const n = 7;
        const param = randomArray(rng, n);
        const velocity = kernels.allocate(n);
        const p = Float64Array.from(param);
        const v = new Float64Array(n);
        for (let step = 0; step < 3; step++) {
          const grad = randomArray(rng, n);
          kernels.sgdStep({ param, grad, velocity, n, ...hyper });
          for (let i = 0; i < n; i++) {
            const g = grad[i] + hyper.weightDecay * p[i];
            v[i] = hyper.momentum * v[i] + g;
            const update = hyper.momentum === 0 ? g : hyper.nesterov ? g + hyper.momentum * v[i] : v[i];
            p[i] -= hyper.learningRate * update;
          }
        }
        assert.ok(maxRelativeError(param, p) < 1e-5, JSON.stringify(hyper));
      }
    });

    test('Adam matches its definition over several steps', () => {
      const rng = Rng.fromSeed(5);
      const n = 9;
      const param = randomArray(rng, n);
      const m = kernels.allocate(n);
      const v = kernels.allocate(n);
      const p = Float64Array.from(param);
      const m64 = new Float64Array(n);
      const v64 = new Float64Array(n);
      const [lr, b1, b2, eps, wd] = [0.01, 0.9, 0.999, 1e-8, 0.001];
      for (let step = 1; step <= 4; step++) {
        const grad = randomArray(rng, n);
        kernels.adamStep({ param, grad, m, v, n, learningRate: lr, beta1: b1, beta2: b2, epsilon: eps, weightDecay: wd, step });
        for (let i = 0; i < n; i++) {
          const g = grad[i] + wd * p[i];
          m64[i] = b1 * m64[i] + (1 - b1) * g;
          v64[i] = b2 * v64[i] + (1 - b2) * g * g;
          p[i] -= (lr * (m64[i] / (1 - b1 ** step))) / (Math.sqrt(v64[i] / (1 - b2 ** step)) + eps);
        }
      }
      assert.ok(maxRelativeError(param, p) < 1e-5);
    });
  });
}

// Convolution by its definition, over a zero-padded input, in float64.
function convDefinition(inp: Float32Array, weight: Float32Array, B: number, H: number, W: number, C: number, O: number, K: number): Float64Array {
  const pad = (K - 1) / 2;
  const out = new Float64Array(B * H * W * O);
  const pixel = (b: number, y: number, x: number, c: number) => (y < 0 || y >= H || x < 0 || x >= W ? 0 : inp[((b * H + y) * W + x) * C + c]);
  for (let b = 0; b < B; b++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        for (let o = 0; o < O; o++) {
          let sum = 0;
          for (let dy = 0; dy < K; dy++)
            for (let dx = 0; dx < K; dx++)
              for (let c = 0; c < C; c++) sum += pixel(b, y + dy - pad, x + dx - pad, c) * weight[((dy * K + dx) * C + c) * O + o];
          out[((b * H + y) * W + x) * O + o] = sum;
        }
  return out;
}

const CONV_SHAPES = [
  { batch: 1, height: 1, width: 1, inChannels: 1, outChannels: 1, kernelSize: 3 },
  { batch: 3, height: 5, width: 7, inChannels: 3, outChannels: 5, kernelSize: 3 },
  { batch: 2, height: 6, width: 4, inChannels: 8, outChannels: 9, kernelSize: 1 },
  { batch: 5, height: 7, width: 7, inChannels: 4, outChannels: 12, kernelSize: 5 },
  { batch: 4, height: 28, width: 28, inChannels: 1, outChannels: 8, kernelSize: 3 },
  // One input channel, 3x3: the native backend's direct loop (filters in vectors of 16, then one by one).
  { batch: 3, height: 9, width: 6, inChannels: 1, outChannels: 21, kernelSize: 3 },
  // Shapes the fast backends compute by Winograd (at least 8 channels each way; wasm: multiples
  // of 4 too): odd heights and widths (partial tiles), a single pixel, more tiles than one chunk.
  { batch: 3, height: 7, width: 5, inChannels: 8, outChannels: 13, kernelSize: 3 },
  { batch: 3, height: 9, width: 11, inChannels: 12, outChannels: 8, kernelSize: 3 },
  { batch: 2, height: 1, width: 1, inChannels: 16, outChannels: 8, kernelSize: 3 },
  { batch: 2, height: 1, width: 1, inChannels: 17, outChannels: 8, kernelSize: 3 },
  { batch: 5, height: 14, width: 14, inChannels: 32, outChannels: 64, kernelSize: 3 },
  { batch: 3, height: 28, width: 27, inChannels: 9, outChannels: 33, kernelSize: 3 },
];
// Sums of up to 9 x 64 products of values in [-1, 1]. Winograd's transforms add and subtract
// before multiplying, which rounds more than a direct sum: F(4x4, 3x3) scales by up to 8 and
// divides by up to 24 (errors measured: up to 9.2e-5 with 32 channels in; F(2x2, 3x3) 9e-6).
const CONV_TOLERANCE = 3e-4;

for (const kernels of backends) {
  describe(`${kernels.description} convolution and pooling`, () => {
    test('conv2d matches its definition', () => {
      const rng = Rng.fromSeed(6);
      for (const shape of CONV_SHAPES) {
        const { batch: B, height: H, width: W, inChannels: C, outChannels: O, kernelSize: K } = shape;
        const inp = randomArray(rng, B * H * W * C);
        const weight = randomArray(rng, K * K * C * O);
        const out = kernels.allocate(B * H * W * O);
        out.fill(7);
        kernels.conv2d({ out, inp, weight, ...shape });
        assert.ok(maxRelativeError(out, convDefinition(inp, weight, B, H, W, C, O, K)) < CONV_TOLERANCE, JSON.stringify(shape));
      }
    });

    test('conv2d gradients match the reference backend', () => {
      const rng = Rng.fromSeed(7);
      for (const shape of CONV_SHAPES) {
        const { batch: B, height: H, width: W, inChannels: C, outChannels: O, kernelSize: K } = shape;
        const inp = randomArray(rng, B * H * W * C);
        const weight = randomArray(rng, K * K * C * O);
        const dout = randomArray(rng, B * H * W * O);
        const start = randomArray(rng, K * K * C * O);
        const dinp = kernels.allocate(B * H * W * C);
        dinp.fill(3);
        kernels.conv2dBackwardInput({ dinp, dout, weight, ...shape });
        const expectedDinp = new Float32Array(B * H * W * C);
        jsKernels.conv2dBackwardInput({ dinp: expectedDinp, dout, weight, ...shape });
        assert.ok(maxRelativeError(dinp, expectedDinp) < CONV_TOLERANCE, `input gradient ${JSON.stringify(shape)}`);
        const dweight = kernels.allocate(K * K * C * O);
        dweight.set(start);
        kernels.conv2dBackwardWeight({ dweight, inp, dout, ...shape });
        const expectedDweight = Float32Array.from(start);
        jsKernels.conv2dBackwardWeight({ dweight: expectedDweight, inp, dout, ...shape });
        // Sums over every pixel of the batch: up to 2,268 here (errors measured: up to 1.5e-4 by F(4x4, 3x3)).
        assert.ok(maxRelativeError(dweight, expectedDweight) < 5e-4, `weight gradient (accumulated) ${JSON.stringify(shape)}`);
      }
    });

    test('2x2 max pooling and its gradient match their definition, odd sizes included', () => {
      const rng = Rng.fromSeed(8);
      for (const [B, H, W, C] of [[1, 2, 2, 1], [2, 5, 7, 3], [3, 7, 7, 8], [2, 28, 28, 5]]) {
        const inp = randomArray(rng, B * H * W * C);
        // Like ReLU outputs, most negatives become zeros: windows with ties, where the first
        // element equal to the maximum takes the gradient.
        for (let i = 0; i < inp.length; i++) if (inp[i] < 0 && i % 5 !== 0) inp[i] = 0;
        const oh = Math.floor(H / 2);
        const ow = Math.floor(W / 2);
        const out = kernels.allocate(B * oh * ow * C);
        kernels.maxPool2x2({ out, inp, batch: B, height: H, width: W, channels: C });
        const dout = randomArray(rng, B * oh * ow * C);
        const dinp = kernels.allocate(B * H * W * C);
        dinp.fill(9);
        kernels.maxPool2x2Backward({ dinp, dout, inp, out, batch: B, height: H, width: W, channels: C });
        const expectedDinp = new Float64Array(B * H * W * C);
        for (let b = 0; b < B; b++)
          for (let y = 0; y < oh; y++)
            for (let x = 0; x < ow; x++)
              for (let c = 0; c < C; c++) {
                const window = [[2 * y, 2 * x], [2 * y, 2 * x + 1], [2 * y + 1, 2 * x], [2 * y + 1, 2 * x + 1]].map(([yy, xx]) => ((b * H + yy) * W + xx) * C + c);
                const values = window.map((i) => inp[i]);
                const best = values.indexOf(Math.max(...values));
                const o = ((b * oh + y) * ow + x) * C + c;
                assert.equal(out[o], values[best]);
                expectedDinp[window[best]] = dout[o];
              }
        assert.deepEqual([...dinp], [...expectedDinp]);
      }
    });
  });
}

test("dropout's generator keeps each element with the asked probability, independently of its neighbours and of other keys", () => {
  const n = 1 << 20;
  const rng = Rng.fromSeed(15);
  const masks = [0, 1].map(() => {
    const mask = new Float32Array(n);
    jsKernels.dropoutMask({ mask, n, threshold: 52429, scale: 1, key0: rng.bits(), key1: rng.bits() });
    return mask;
  });
  const keep = 52429 / 65536;
  // Each count of kept elements, as a z-score of a binomial(n, keep) or, for pairs, of the
  // product of two independent draws (keep²); 5 standard deviations leave false alarms at 1e-6.
  const z = (count: number, trials: number, p: number) => (count - trials * p) / Math.sqrt(trials * p * (1 - p));
  const [first, second] = masks;
  let kept = 0;
  let adjacent = 0;
  let halves = 0;
  let acrossKeys = 0;
  for (let i = 0; i < n; i++) {
    kept += first[i];
    if (i + 1 < n) adjacent += first[i] * first[i + 1];
    if (i % 8 < 4) halves += first[i] * first[i + 4];
    acrossKeys += first[i] * second[i];
  }
  assert.ok(Math.abs(z(kept, n, keep)) < 5, `kept ${kept} of ${n}`);
  assert.ok(Math.abs(z(adjacent, n - 1, keep * keep)) < 5, `adjacent pairs kept: ${adjacent}`);
  assert.ok(Math.abs(z(halves, n / 2, keep * keep)) < 5, `pairs from one word kept: ${halves}`);
  assert.ok(Math.abs(z(acrossKeys, n, keep * keep)) < 5, `same element under two keys kept: ${acrossKeys}`);
});
